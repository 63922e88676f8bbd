"""Diversity: distinct-n, pairwise embedding distance, answer entropy and unique answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.metrics.diversity import (
    AnswerEntropyConfig,
    DistinctNConfig,
    UniqueAnswersConfig,
    answer_entropy,
    answer_entropy_array,
    distinct_n,
    distinct_n_per_prompt,
    distinct_n_scores,
    encode_tokens,
    ngram_ids,
    pairwise_embedding_distance,
    prompt_ngrams,
    unique_answers,
    unique_answers_array,
)


def test_distinct_n_hand_cases() -> None:
    assert distinct_n(["a a b"]) == pytest.approx(2 / 3)
    assert distinct_n(["A a B"]) == pytest.approx(2 / 3)  # lower-cased words
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)
    # Bigrams never cross texts: "x y" + "z" has one bigram, not two.
    assert distinct_n(["x y", "z"], 2) == 1.0
    assert math.isnan(distinct_n(["a", ""], 2))
    assert distinct_n_scores(["the cat sat", "the cat ran"]) == pytest.approx(
        {1: 4 / 6, 2: 3 / 4, 3: 2 / 2}
    )


def test_distinct_n_matches_a_set_of_tuples() -> None:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(list("abcde"), size=int(rng.integers(0, 15)))) for _ in range(40)]
    for n in (1, 2, 3, 4):
        grams = [
            tuple(words[i : i + n])
            for words in (t.split() for t in texts)
            for i in range(len(words) - n + 1)
        ]
        assert distinct_n(texts, n) == pytest.approx(len(set(grams)) / len(grams))


def test_ngram_ids_are_equal_exactly_for_equal_ngrams() -> None:
    tokens, doc = encode_tokens(["a b c a b c", "b c a"])
    ids, owner = ngram_ids(tokens, doc, 3)
    assert owner.tolist() == [0, 0, 0, 0, 1]
    assert ids[0] == ids[3] and len(set(ids[:3].tolist())) == 3 and ids[4] == ids[1]


def test_distinct_n_per_prompt_gives_distinct_n_of_each_prompt_exactly() -> None:
    rng = np.random.default_rng(2)
    prompts = [[" ".join(rng.choice(list("abcdef"), size=int(rng.integers(0, 12))))
                for _ in range(size)] for size in [0, 1, 3, 9, 32, *rng.integers(1, 20, 15)]]
    prompts.append(["", ""])
    got = distinct_n_per_prompt(prompts, (1, 2, 3, 4))
    for n in (1, 2, 3, 4):
        expected = [distinct_n_scores(texts, (n,))[n] if texts else math.nan
                    for texts in prompts]
        assert np.array_equal(got[n], expected, equal_nan=True), n
    assert distinct_n_per_prompt(prompt_ngrams(prompts, 2), (1, 2))[2].tolist() == \
        pytest.approx(got[2].tolist(), nan_ok=True)
    with pytest.raises(ValueError, match="up to 2"):
        distinct_n_per_prompt(prompt_ngrams(prompts, 2), (3,))


def test_encode_tokens_numbers_tokens_by_first_occurrence() -> None:
    tokens, doc = encode_tokens(["b a", "A c b", ""])
    assert tokens.tolist() == [0, 1, 1, 2, 0]
    assert doc.tolist() == [0, 0, 1, 1, 1]


def test_embedding_distance_hand_cases() -> None:
    assert pairwise_embedding_distance(np.eye(4)) == pytest.approx(1.0)
    assert pairwise_embedding_distance(np.ones((3, 5))) == pytest.approx(0.0, abs=1e-12)
    # Opposite vectors clip to cosine 0: distance 1, not 2.
    assert pairwise_embedding_distance([[1.0, 0.0], [-1.0, 0.0]]) == pytest.approx(1.0)
    # Scale does not matter; 60 degrees apart gives 1 - cos = 0.5.
    angle = [[2.0, 0.0], [0.5, math.sqrt(3) / 2]]
    assert pairwise_embedding_distance(angle) == pytest.approx(0.5)
    assert math.isnan(pairwise_embedding_distance([[1.0, 2.0]]))


def test_embedding_distance_batches_prompts() -> None:
    rng = np.random.default_rng(1)
    batch = rng.normal(size=(5, 7, 16))
    got = pairwise_embedding_distance(batch)
    assert isinstance(got, np.ndarray)
    expected = [pairwise_embedding_distance(prompt) for prompt in batch]
    np.testing.assert_allclose(got, expected)


def test_embedding_distance_rejects_zero_vectors_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        pairwise_embedding_distance([[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="shape"):
        pairwise_embedding_distance([1.0, 2.0])


def test_answer_entropy_hand_cases() -> None:
    assert answer_entropy(["1", "2", "3", "4"]) == pytest.approx(math.log(4))
    assert answer_entropy(["7", "7.0", "7.00"]) == 0.0  # one canonical class
    # None as its own class, or dropped.
    assert answer_entropy(["1", None]) == pytest.approx(math.log(2))
    assert answer_entropy(["1", None], include_none=False) == 0.0
    assert math.isnan(answer_entropy([None, None], include_none=False))
    # Normalised by log(min(N, #classes)): uniform over 4 of 8 answers -> 1.
    assert answer_entropy(["1", "1", "2", "2", "3", "3", "4", "4"], normalize=True) == 1.0
    assert answer_entropy(["1", "1"], normalize=True) == 0.0


def test_answer_entropy_vectorises() -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(-1, 6, size=(30, 12))
    for include_none in (True, False):
        for normalize in (True, False):
            got = answer_entropy_array(ids, include_none=include_none, normalize=normalize)
            for row, value in zip(ids, got, strict=True):
                answers = [None if a < 0 else int(a) for a in row]
                expected = answer_entropy(answers, include_none=include_none, normalize=normalize)
                assert value == pytest.approx(expected, nan_ok=True)


def test_unique_answers_hand_cases() -> None:
    assert unique_answers(["18", "18.0", "7", None]).count == 2
    assert unique_answers(["18", "18.0", "7", None]).fraction == 0.5
    assert unique_answers(["1", None], include_none=True).count == 2
    counts, fractions = unique_answers_array([[0, 0, 1, -1], [-1, -1, -1, -1]])
    assert counts.tolist() == [2, 0] and fractions.tolist() == [0.5, 0.0]
    counts, _ = unique_answers_array([[0, 0, 1, -1]], include_none=True)
    assert counts.tolist() == [3]


def test_the_configs_validate() -> None:
    with pytest.raises(ValueError, match="ns"):
        DistinctNConfig(ns=(0,))
    with pytest.raises(ValueError, match="include_none"):
        AnswerEntropyConfig(include_none=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="include_none"):
        UniqueAnswersConfig(include_none="no")  # type: ignore[arg-type]
