"""Diversity of one prompt's responses: distinct-n, embeddings and answers (ALGORITHMS §15).

Everything here is computed per prompt over its N responses; average over prompts
yourself. Texts are tokenised as lower-cased whitespace words unless a tokenizer is given;
empty responses are included (they add no n-grams). ``self_bleu`` lives in ``selfbleu.py``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from strategies.verify.structure import canonical_answer

__all__ = [
    "AnswerEntropyConfig",
    "DistinctNConfig",
    "EmbeddingDistanceConfig",
    "PromptNgrams",
    "UniqueAnswers",
    "UniqueAnswersConfig",
    "answer_entropy",
    "answer_entropy_array",
    "distinct_n",
    "distinct_n_per_prompt",
    "distinct_n_scores",
    "encode_tokens",
    "ngram_ids",
    "ngram_orders",
    "pairwise_embedding_distance",
    "prompt_ngrams",
    "unique_answers",
    "unique_answers_array",
    "word_tokens",
]

Tokenizer = Callable[[str], Sequence[str]]


@dataclass(frozen=True, kw_only=True)
class DistinctNConfig:
    """The n-gram orders to report distinct-n for."""

    ns: tuple[int, ...] = (1, 2, 3)

    def __post_init__(self) -> None:
        if not self.ns or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.ns
        ):
            raise ValueError(f"ns must be a non-empty tuple of integers >= 1, got {self.ns!r}")


@dataclass(frozen=True, kw_only=True)
class EmbeddingDistanceConfig:
    """No knobs: the caller embeds (any encoder) and passes the vectors in."""


@dataclass(frozen=True, kw_only=True)
class AnswerEntropyConfig:
    """Count ``None`` as its own class (else drop it); divide by log(min(N, #classes))."""

    include_none: bool = True
    normalize: bool = False

    def __post_init__(self) -> None:
        for name in ("include_none", "normalize"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")


@dataclass(frozen=True, kw_only=True)
class UniqueAnswersConfig:
    """Whether ``None`` counts as one distinct answer (the fraction always divides by N)."""

    include_none: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.include_none, bool):
            raise ValueError(f"include_none must be a bool, got {self.include_none!r}")


@dataclass(frozen=True)
class UniqueAnswers:
    """The number of distinct answers and that number over all N answers."""

    count: int
    fraction: float


def word_tokens(text: str) -> list[str]:
    """Return lower-cased whitespace tokens, the default tokenisation.

    >>> word_tokens("The  cat\\nSat")
    ['the', 'cat', 'sat']
    """
    return text.lower().split()


def encode_tokens(
    texts: Sequence[str], tokenizer: Tokenizer | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return every text's token ids, concatenated, and the index of the text of each token.

    Ids are dense, in order of first occurrence.

    >>> encode_tokens(["a b", "", "B c"])
    (array([0, 1, 1, 2]), array([0, 0, 2, 2]))
    """
    split = tokenizer or word_tokens
    token_lists = [split(t) for t in texts]
    lengths = np.fromiter(map(len, token_lists), np.int64, len(token_lists))
    total = int(lengths.sum())
    vocab: dict[str, int] = {}
    # Each token's first position in the stream (setdefault keeps the first count it got).
    first = np.fromiter(
        map(vocab.setdefault, itertools.chain.from_iterable(token_lists), itertools.count()),
        np.int64, total,
    )
    flat = (np.cumsum(first == np.arange(total)) - 1)[first]
    return flat.astype(np.int64), np.repeat(np.arange(len(texts), dtype=np.int64), lengths)


def ngram_ids(
    tokens: NDArray[np.int64], doc: NDArray[np.int64], n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return a dense id per n-gram (equal n-grams, equal ids) and its text, within texts.

    N-grams never cross from one text into the next. Ids are built one order at a time
    (an (n-1)-gram id and the next token), so they never overflow.

    >>> ngram_ids(np.array([0, 1, 0, 1, 0]), np.array([0, 0, 0, 1, 1]), 2)  # "a b a", "b a"
    (array([0, 1, 1]), array([0, 0, 1]))
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ids, owner = list(ngram_orders(tokens, doc, n))[-1]
    if ids.size == 0:
        return ids, owner
    return np.unique(ids, return_inverse=True)[1].astype(np.int64), owner


def ngram_orders(
    tokens: NDArray[np.int64], doc: NDArray[np.int64], max_n: int
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Yield, for n = 1..max_n, an id per n-gram within texts and its text: equal n-grams
    have equal ids, below the number of n-grams in all (not necessarily dense).

    >>> [ids.tolist() for ids, _ in ngram_orders(np.array([0, 1, 0, 1]), np.zeros(4, int), 2)]
    [[0, 1, 0, 1], [0, 1, 0]]
    """
    ids = tokens
    base = int(tokens.max(initial=0)) + 1
    for order in range(1, max_n + 1):
        if order > 1:
            ids = np.unique(ids[:-1] * base + tokens[order - 1 :], return_inverse=True)[1]
            ids = ids.astype(np.int64)
        same_text = doc[order - 1 :] == doc[: doc.size - order + 1]
        yield ids[same_text], doc[: doc.size - order + 1][same_text]


@dataclass(frozen=True)
class PromptNgrams:
    """Many prompts' responses, tokenised once, with their n-grams of orders 1..``len(orders)``
    (``ngram_orders``): what distinct-n and Self-BLEU per prompt both count.

    Texts are concatenated prompt by prompt; ``sizes`` counts each prompt's texts,
    ``lengths`` each text's tokens, and ``tokens``/``doc`` are ``encode_tokens``'s.
    """

    sizes: NDArray[np.int64]
    lengths: NDArray[np.int64]
    tokens: NDArray[np.int64]
    doc: NDArray[np.int64]
    orders: tuple[tuple[NDArray[np.int64], NDArray[np.int64]], ...]

    @property
    def prompt(self) -> NDArray[np.int64]:
        """Each text's prompt."""
        return np.repeat(np.arange(self.sizes.size, dtype=np.int64), self.sizes)


def prompt_ngrams(
    prompts: Sequence[Sequence[str]], max_n: int = 4, *, tokenizer: Tokenizer | None = None
) -> PromptNgrams:
    """Tokenise every prompt's texts and build their n-grams up to ``max_n``.

    >>> ngrams = prompt_ngrams([["a b", "b"], ["a"]], 2)
    >>> ngrams.sizes.tolist(), ngrams.lengths.tolist(), [len(ids) for ids, _ in ngrams.orders]
    ([2, 1], [2, 1, 1], [4, 1])
    """
    sizes = np.fromiter(map(len, prompts), np.int64, len(prompts))
    tokens, doc = encode_tokens([text for texts in prompts for text in texts], tokenizer)
    lengths = np.bincount(doc, minlength=int(sizes.sum())).astype(np.int64)
    return PromptNgrams(sizes, lengths, tokens, doc, tuple(ngram_orders(tokens, doc, max_n)))


def distinct_n(texts: Sequence[str], n: int = 1, *, tokenizer: Tokenizer | None = None) -> float:
    """Return unique n-grams / total n-grams over the pooled texts; NaN if there are none.

    >>> distinct_n(["a a b"]), distinct_n(["a b", "a b"], 2), distinct_n(["a"], 2)
    (0.6666666666666666, 0.5, nan)
    """
    tokens, doc = encode_tokens(texts, tokenizer)
    ids, _ = ngram_ids(tokens, doc, n)
    if ids.size == 0:
        return float("nan")
    return float(np.unique(ids).size / ids.size)


def distinct_n_scores(
    texts: Sequence[str], ns: Sequence[int] = (1, 2, 3), *, tokenizer: Tokenizer | None = None
) -> dict[int, float]:
    """Return ``{n: distinct-n}`` for each n, tokenising once.

    >>> distinct_n_scores(["the cat sat", "the cat ran"], (1, 2))
    {1: 0.6666666666666666, 2: 0.75}
    """
    config = DistinctNConfig(ns=tuple(ns))
    tokens, doc = encode_tokens(texts, tokenizer)
    scores = {}
    for n in config.ns:
        ids, _ = ngram_ids(tokens, doc, n)
        scores[n] = float(np.unique(ids).size / ids.size) if ids.size else float("nan")
    return scores


def distinct_n_per_prompt(
    prompts: Sequence[Sequence[str]] | PromptNgrams, ns: Sequence[int] = (1, 2, 3), *,
    tokenizer: Tokenizer | None = None,
) -> dict[int, NDArray[np.float64]]:
    """Return ``{n: each prompt's distinct-n}``, exactly ``distinct_n_scores`` per prompt,
    over all prompts at once (``prompts`` may be their ``prompt_ngrams``).

    >>> scores = distinct_n_per_prompt([["a a b"], ["a b", "a b"]], (1, 2))
    >>> {n: values.tolist() for n, values in scores.items()}
    {1: [0.6666666666666666, 0.5], 2: [1.0, 0.5]}
    """
    config = DistinctNConfig(ns=tuple(ns))
    ngrams = prompts if isinstance(prompts, PromptNgrams) else prompt_ngrams(
        prompts, max(config.ns), tokenizer=tokenizer)
    if max(config.ns) > len(ngrams.orders):
        raise ValueError(f"the n-grams go up to {len(ngrams.orders)}, not {max(config.ns)}")
    prompt, count = ngrams.prompt, ngrams.sizes.size
    out = {}
    for n in config.ns:
        ids, owner = ngrams.orders[n - 1]
        width = int(ids.max(initial=0)) + 1
        keys = np.sort(prompt[owner] * width + ids)
        first = np.append(True, keys[1:] != keys[:-1]) if keys.size else keys.astype(bool)
        distinct = np.bincount(keys[first] // width, minlength=count)
        total = np.bincount(prompt[owner], minlength=count)
        out[n] = np.where(total > 0, distinct / np.maximum(total, 1), np.nan)
    return out


def pairwise_embedding_distance(embeddings: ArrayLike) -> float | NDArray[np.float64]:
    """Return the mean over i < j of ``1 - clip(cos(e_i, e_j), 0, 1)``; NaN for N < 2.

    A (N, D) array gives a float; a (P, N, D) batch gives one value per prompt.

    >>> pairwise_embedding_distance(np.eye(3))
    1.0
    >>> round(pairwise_embedding_distance([[1, 2], [2, 4], [-2, 1]]), 6)  # 0, 1, 1
    0.666667
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim not in (2, 3):
        raise ValueError(f"embeddings must be (N, D) or (P, N, D), got shape {emb.shape}")
    batch = emb if emb.ndim == 3 else emb[None]
    n = batch.shape[1]
    if n < 2:
        result = np.full(batch.shape[0], np.nan)
    else:
        norms = np.linalg.norm(batch, axis=2, keepdims=True)
        if np.any(norms == 0) or not np.all(np.isfinite(norms)):
            raise ValueError("embeddings must be finite and non-zero to have a cosine")
        unit = batch / norms
        cosine = np.clip(unit @ unit.transpose(0, 2, 1), 0.0, 1.0)
        upper = np.triu_indices(n, 1)
        result = (1.0 - cosine[:, upper[0], upper[1]]).mean(axis=1)
    return float(result[0]) if emb.ndim == 2 else result


def _answer_key(answer: Hashable | None) -> Hashable | None:
    """Group string answers by ``canonical_answer``; other hashables are their own key."""
    return canonical_answer(answer) if isinstance(answer, str) else answer


def _entropy_from_counts(counts: NDArray[np.int64], *, normalize: bool) -> NDArray[np.float64]:
    """Entropy (nats) of each row of class counts; NaN for an empty row."""
    total = counts.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = counts / total
        entropy = -np.where(counts > 0, share * np.log(np.where(counts > 0, share, 1.0)), 0.0)
    value = entropy.sum(axis=1) + 0.0
    value[total[:, 0] == 0] = np.nan
    if normalize:
        scale = np.log(np.minimum(total[:, 0], (counts > 0).sum(axis=1)))
        value = np.where(scale > 0, value / np.where(scale > 0, scale, 1.0), value)
    return np.asarray(value, dtype=np.float64)


def answer_entropy(
    answers: Sequence[Hashable | None], *, include_none: bool = True, normalize: bool = False
) -> float:
    """Return the entropy (nats) of the answer distribution; NaN if nothing is counted.

    Strings are grouped by ``canonical_answer`` ("18" and "18.0" are one class).

    >>> round(answer_entropy(["1", "2", "3", "4"]), 6), round(float(np.log(4)), 6)
    (1.386294, 1.386294)
    >>> answer_entropy(["1", "1.0", None, None], include_none=False)
    0.0
    >>> round(answer_entropy(["1", "2", None, None], normalize=True), 6)  # over log 3
    0.946395
    """
    config = AnswerEntropyConfig(include_none=include_none, normalize=normalize)
    # Classes in order of first occurrence; each distinct answer canonicalised once.
    tally: Counter[Hashable | None] = Counter()
    for answer, count in Counter(answers).items():
        tally[_answer_key(answer)] += count
    if not config.include_none:
        tally.pop(None, None)
    counts = np.array([list(tally.values())], dtype=np.int64).reshape(1, -1)
    return float(_entropy_from_counts(counts, normalize=config.normalize)[0])


def _row_counts(ids: NDArray[np.int64], *, include_none: bool) -> NDArray[np.int64]:
    """Per-row class counts of (P, N) ids (-1 = None, counted last if included)."""
    n_rows = ids.shape[0]
    shifted = np.where(ids < 0, int(ids.max(initial=0)) + 1, ids)
    width = int(shifted.max(initial=0)) + 1
    keep = (ids >= 0) | include_none
    flat = (np.arange(n_rows)[:, None] * width + shifted)[keep]
    return np.bincount(flat, minlength=n_rows * width).reshape(n_rows, width)


def _check_id_matrix(answers: ArrayLike) -> NDArray[np.int64]:
    """Validate (P, N) integer class ids with -1 for None."""
    ids = np.asarray(answers)
    if ids.ndim != 2 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"answers must be a (P, N) integer array, got {ids.dtype} {ids.shape}")
    if np.any(ids < -1):
        raise ValueError("answers must hold class ids >= 0, or -1 for None")
    return ids.astype(np.int64)


def answer_entropy_array(
    answers: ArrayLike, *, include_none: bool = True, normalize: bool = False
) -> NDArray[np.float64]:
    """Vectorised ``answer_entropy`` over (P, N) class ids, -1 meaning None.

    >>> answer_entropy_array([[0, 1, 2, 3], [0, 0, -1, -1]], include_none=False).round(6)
    array([1.386294, 0.      ])
    """
    config = AnswerEntropyConfig(include_none=include_none, normalize=normalize)
    counts = _row_counts(_check_id_matrix(answers), include_none=config.include_none)
    return _entropy_from_counts(counts, normalize=config.normalize)


def unique_answers(
    answers: Sequence[Hashable | None], *, include_none: bool = False
) -> UniqueAnswers:
    """Return the number of distinct answers (canonical strings) and that over N.

    >>> unique_answers(["18", "18.0", "7", None])
    UniqueAnswers(count=2, fraction=0.5)
    """
    config = UniqueAnswersConfig(include_none=include_none)
    keys = {_answer_key(a) for a in set(answers)}
    if not config.include_none:
        keys.discard(None)
    return UniqueAnswers(len(keys), len(keys) / len(answers) if answers else float("nan"))


def unique_answers_array(
    answers: ArrayLike, *, include_none: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Vectorised ``unique_answers`` over (P, N) class ids: (counts, fractions).

    >>> unique_answers_array([[0, 0, 1, -1], [2, 2, 2, 2]])
    (array([2, 1]), array([0.5 , 0.25]))
    """
    config = UniqueAnswersConfig(include_none=include_none)
    ids = _check_id_matrix(answers)
    counts = (_row_counts(ids, include_none=config.include_none) > 0).sum(axis=1)
    return counts, counts / max(ids.shape[1], 1)
