"""MBR selection and its similarities: chrF and ROUGE-L (ALGORITHMS §11)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from strategies.select.majority import select_majority
from strategies.select.mbr import MBRConfig, select_mbr
from strategies.select.similarity import chrf, chrf_matrix, lcs_length, rouge_l, rouge_l_matrix
from strategies.types import Candidate


def _naive_chrf(hypothesis: str, reference: str, order: int = 6, beta: float = 2.0) -> float:
    """sacreBLEU's sentence chrF, written plainly with Counters."""
    hyp, ref = re.sub(r"\s+", "", hypothesis), re.sub(r"\s+", "", reference)
    precision = recall = 0.0
    effective = 0
    for n in range(1, order + 1):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        if sum(h.values()) and sum(r.values()):
            common = sum((h & r).values())
            precision += common / sum(h.values())
            recall += common / sum(r.values())
            effective += 1
    if effective == 0:
        return 0.0
    precision, recall = precision / effective, recall / effective
    if precision + recall == 0:
        return 0.0
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def _naive_lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


def test_it_scores_identical_strings_one_and_disjoint_zero() -> None:
    assert chrf("The answer is 42.", "The answer is 42.") == 1.0
    assert chrf("abc", "xyz") == 0.0
    assert chrf("", "") == 1.0
    assert chrf("", "abc") == 0.0
    assert chrf("a b c", "abc") == 1.0  # whitespace is ignored, as in sacreBLEU


def test_it_matches_sacrebleu_chrf() -> None:
    # sacreBLEU's documented example (HF metric card): chrF = 61.576379378113785
    hypothesis = "The relationship between Obama and Netanyahu is not exactly friendly."
    reference = "The ties between Obama and Netanyahu are not particularly friendly."
    assert chrf(hypothesis, reference) == pytest.approx(0.61576379378113785, abs=1e-12)


def test_it_vectorises_chrf_like_the_plain_loop() -> None:
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abcab c"), size=rng.integers(0, 30))) for _ in range(12)]
    texts += ["aaaa", "aa", "a"]
    matrix = chrf_matrix(texts)
    for i, hypothesis in enumerate(texts):
        for j, reference in enumerate(texts):
            if re.sub(r"\s+", "", hypothesis) or re.sub(r"\s+", "", reference):
                assert matrix[i, j] == pytest.approx(_naive_chrf(hypothesis, reference))


def test_it_weights_chrf_recall_over_precision() -> None:
    # beta = 2: a hypothesis covering the reference (full recall) beats a fragment of it
    assert chrf("abcdef extra words", "abcdef") > chrf("abc", "abcdef")


def test_it_computes_lcs_and_rouge_l() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = list(rng.choice(list("abcd"), size=rng.integers(0, 15)))
        b = list(rng.choice(list("abcd"), size=rng.integers(0, 15)))
        assert lcs_length(a, b) == _naive_lcs(a, b)
    # LCS("the cat sat on the mat", "the cat on the mat") = 5: P = 5/6, R = 1, F1 = 10/11
    assert rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(10 / 11)
    assert rouge_l("The Cat!", "the cat") == 1.0
    assert rouge_l("a b", "c d") == 0.0
    assert rouge_l_matrix(["a b", "a c", "z"], [0]).tolist() == [[1.0], [0.5], [0.0]]


def _answers(answers: list[str | None]) -> list[Candidate]:
    return [Candidate(text=f"sample {i}", answer=a) for i, a in enumerate(answers)]


def test_it_reduces_to_majority_with_answer_equality() -> None:
    config = MBRConfig(similarity="answer")
    rng = np.random.default_rng(2)
    for _ in range(50):
        pool = _answers(list(rng.choice(["1", "2", "3.0", "3"], size=rng.integers(1, 12))))
        mbr, vote = select_mbr(pool, config), select_majority(pool)
        assert (mbr.index, mbr.tied, mbr.answer) == (vote.index, vote.tied, vote.answer)
        assert mbr.ranking == vote.ranking


def test_it_computes_expected_utility_by_hand() -> None:
    # answers 1, 1, 2, 1: utility of a "1" is 2/3 (two of the three others agree)
    selection = select_mbr(_answers(["2", "1", "1", "1"]), MBRConfig(similarity="answer"))
    assert selection.index == 1
    assert selection.scores == pytest.approx([0.0, 2 / 3, 2 / 3, 2 / 3])


def test_it_picks_the_most_central_text() -> None:
    pool = [
        Candidate(text="x = 3 so the answer is 6", answer="6"),
        Candidate(text="the answer is 6", answer="6"),
        Candidate(text="qwerty zzz", answer="1"),
        Candidate(text="x = 3 so the answer is 6!", answer="6"),
    ]
    for similarity in ("chrf", "rouge_l"):
        selection = select_mbr(pool, MBRConfig(similarity=similarity))
        assert selection.answer == "6"
        assert selection.index in (0, 3)
        assert selection.scores is not None and selection.scores[2] < 0.2


def test_it_breaks_ties_by_index() -> None:
    pool = [Candidate(text="abc"), Candidate(text="xyz")]
    selection = select_mbr(pool)
    assert (selection.index, selection.tied) == (0, (0,))  # no answers: one group
    assert select_mbr([Candidate(text="only")]).index == 0


def test_it_weights_references_by_probability() -> None:
    pool = [
        Candidate(text="", answer="1", logprob_sum=-5.0, generated_tokens=1),
        Candidate(text="", answer="2", logprob_sum=0.0, generated_tokens=1),
        Candidate(text="", answer="2", logprob_sum=-9.0, generated_tokens=1),
        Candidate(text="", answer="1", logprob_sum=-5.0, generated_tokens=1),
    ]
    uniform = select_mbr(pool, MBRConfig(similarity="answer"))
    assert uniform.tied == (0, 1)
    weighted = select_mbr(pool, MBRConfig(similarity="answer", weights="mean_logprob"))
    assert weighted.answer == "2"  # the likely "2" vouches for the other "2"


def test_it_subsamples_references_reproducibly() -> None:
    pool = _answers([str(i % 3) for i in range(40)])
    config = MBRConfig(similarity="answer", max_references=8)
    first = select_mbr(pool, config, rng=np.random.default_rng(0))
    assert first == select_mbr(pool, config, rng=np.random.default_rng(0))
    assert select_mbr(pool, config) == select_mbr(pool, config)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"similarity": "bleu"}, "similarity"),
        ({"weights": "softmax"}, "weights"),
        ({"max_references": 1}, "max_references"),
        ({"seed": -3}, "seed"),
    ],
)
def test_it_rejects_bad_configs(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MBRConfig(**kwargs)  # type: ignore[arg-type]
