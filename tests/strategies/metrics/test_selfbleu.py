"""BLEU-4 (NLTK method1 smoothing) and Self-BLEU: hand cases and NLTK's values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.metrics.diversity import prompt_ngrams
from strategies.metrics.selfbleu import (
    SelfBleuConfig,
    self_bleu,
    self_bleu_per_prompt,
    sentence_bleu,
)

# Values printed by nltk 3.10.4: sentence_bleu(refs, hyp, smoothing_function=method1).
NLTK_CASES = [
    ("the cat sat on the mat", ["the cat is on the mat"], 0.25406637407730737),
    ("a b c", ["a b c d e f", "a b"], 0.5623413251903491),
    (
        "one two three four five six",
        ["one two three four", "two three four five six seven eight"],
        0.846481724890614,
    ),
    ("x y", ["z w"], 0.0),
    (
        "the quick brown fox jumps over the lazy dog",
        ["the quick brown dog jumps over the lazy fox", "a quick brown fox leaps over a lazy dog"],
        0.537284965911771,
    ),
]
NLTK_SELF_BLEU = 0.17552454351095073
SELF_BLEU_TEXTS = [
    "the cat sat on the mat",
    "the cat is on the mat",
    "a dog ran in the park",
    "the dog sat on a log",
]


def test_it_computes_a_hand_case() -> None:
    # Clipped precisions 5/6, 3/5, 1/4 and 0/3 -> 0.1/3 (method1); equal lengths, BP = 1.
    precisions = [5 / 6, 3 / 5, 1 / 4, 0.1 / 3]
    expected = math.exp(sum(math.log(p) for p in precisions) / 4)
    assert sentence_bleu("the cat sat on the mat", ["the cat is on the mat"]) == pytest.approx(
        expected
    )


def test_it_applies_the_brevity_penalty_against_the_closest_reference() -> None:
    # Hypothesis 4 tokens, references of 6 and 9: r = 6, BP = exp(1 - 6/4); all n-grams match.
    got = sentence_bleu("a b c d", ["a b c d e f", "a b c d e f g h i"])
    assert got == pytest.approx(math.exp(1 - 6 / 4))
    # A tie in distance picks the shorter reference: lengths 3 and 5 around 4 give r = 3 and
    # BP = 1 (r = 5 would give exp(1 - 5/4)); "a b c d e" supplies every n-gram.
    assert sentence_bleu("a b c d", ["a b c", "a b c d e"]) == pytest.approx(1.0)


@pytest.mark.parametrize(("hypothesis", "references", "expected"), NLTK_CASES)
def test_it_matches_recorded_nltk_values(
    hypothesis: str, references: list[str], expected: float
) -> None:
    assert sentence_bleu(hypothesis, references) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_it_matches_nltk_when_installed() -> None:
    bleu_score = pytest.importorskip("nltk.translate.bleu_score")
    smoothing = bleu_score.SmoothingFunction().method1
    rng = np.random.default_rng(0)
    for _ in range(200):
        vocab = list("abcdef")[: int(rng.integers(2, 7))]

        def text(rng: np.random.Generator = rng, vocab: list[str] = vocab) -> str:
            return " ".join(rng.choice(vocab, size=int(rng.integers(0, 12))))

        hypothesis, references = text(), [text() for _ in range(int(rng.integers(1, 5)))]
        expected = bleu_score.sentence_bleu(
            [r.split() for r in references], hypothesis.split(), smoothing_function=smoothing
        )
        assert sentence_bleu(hypothesis, references) == pytest.approx(expected, abs=1e-12)


def test_self_bleu_of_identical_texts_is_one() -> None:
    result = self_bleu(["we walk to the river today"] * 5)
    assert result.self_bleu == pytest.approx(1.0)
    assert result.diversity == pytest.approx(0.0)


def test_self_bleu_matches_the_mean_of_leave_one_out_bleu() -> None:
    result = self_bleu(SELF_BLEU_TEXTS)
    by_hand = np.mean(
        [
            sentence_bleu(text, [t for j, t in enumerate(SELF_BLEU_TEXTS) if j != i])
            for i, text in enumerate(SELF_BLEU_TEXTS)
        ]
    )
    assert result.self_bleu == pytest.approx(by_hand)
    assert result.self_bleu == pytest.approx(NLTK_SELF_BLEU, rel=1e-12)
    assert result.diversity == pytest.approx(1 - NLTK_SELF_BLEU)


def test_self_bleu_subsamples_references_with_a_seed() -> None:
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(list("abcdefgh"), size=8)) for _ in range(80)]
    first = self_bleu(texts, max_references=10, seed=4)
    assert first == self_bleu(texts, max_references=10, seed=4)
    assert first != self_bleu(texts, max_references=10, seed=5)
    everyone = self_bleu(texts, max_references=79)
    assert first.self_bleu < everyone.self_bleu  # clipping against fewer references


def test_self_bleu_is_nan_below_two_texts_and_zero_without_overlap() -> None:
    assert math.isnan(self_bleu(["only one"]).self_bleu)
    assert self_bleu(["a b", "c d", ""]).self_bleu == 0.0


def test_it_uses_a_custom_tokenizer() -> None:
    assert sentence_bleu("abcd", ["abcd"], tokenizer=list) == pytest.approx(1.0)


def test_it_validates_the_config() -> None:
    for bad in ({"max_references": 0}, {"seed": -1}, {"epsilon": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SelfBleuConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sentence_bleu("a", [])


def _prompts(seed: int) -> list[list[str]]:
    """Prompts of 0 to 60 texts over small vocabularies: repeated and empty texts, one
    text alone, and prompts past 51 texts, whose references are drawn."""
    rng = np.random.default_rng(seed)
    prompts = []
    for size in [0, 1, 2, 3, 7, 32, 51, 52, 60, *rng.integers(2, 40, size=20).tolist()]:
        vocab = list("abcdefghij")[: int(rng.integers(2, 11))]
        prompts.append([" ".join(rng.choice(vocab, size=int(rng.integers(0, 14))))
                        for _ in range(size)])
    prompts.append(["same words here"] * 4)
    return prompts


def test_self_bleu_per_prompt_gives_self_bleu_of_each_prompt_exactly() -> None:
    prompts = _prompts(3)
    expected = [self_bleu(texts, max_references=50, seed=7).self_bleu for texts in prompts]
    got = self_bleu_per_prompt(prompts, max_references=50, seed=7)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[:2]).all() and not np.isnan(got[2:]).any()


def test_self_bleu_per_prompt_reads_n_grams_built_once() -> None:
    prompts = _prompts(4)
    ngrams = prompt_ngrams(prompts, 4)
    assert np.array_equal(self_bleu_per_prompt(ngrams, seed=1),
                          self_bleu_per_prompt(prompts, seed=1), equal_nan=True)
    with pytest.raises(ValueError, match="up to 4"):
        self_bleu_per_prompt(prompt_ngrams(prompts, 3))
