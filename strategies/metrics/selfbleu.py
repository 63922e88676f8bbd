"""BLEU-4 and Self-BLEU, implemented here (ALGORITHMS §15).

BLEU follows NLTK's ``sentence_bleu`` with uniform weights and ``SmoothingFunction().method1``:
clipped n-gram precision ``p_n = clipped / max(1, total)``, a zero numerator replaced by
``epsilon`` (0.1), a score of 0 when no unigram matches, and the brevity penalty against the
reference length closest to the hypothesis (ties: the shorter). Self-BLEU scores each
response against the others (at most 50, drawn with a seeded rng) and averages; higher means
less diverse, so ``1 - SelfBLEU`` is reported as the diversity. ``self_bleu_per_prompt``
gives the same values for many prompts in one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from strategies.metrics.diversity import (
    PromptNgrams,
    Tokenizer,
    encode_tokens,
    ngram_ids,
    prompt_ngrams,
)

__all__ = ["SelfBleu", "SelfBleuConfig", "self_bleu", "self_bleu_per_prompt", "sentence_bleu"]

MAX_ORDER = 4


@dataclass(frozen=True, kw_only=True)
class SelfBleuConfig:
    """References per response (subsampled above this), their rng seed, method1's epsilon."""

    max_references: int = 50
    seed: int = 0
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        for name in ("max_references", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.max_references < 1:
            raise ValueError(f"max_references must be >= 1, got {self.max_references}")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon must lie in (0, 1), got {self.epsilon!r}")


@dataclass(frozen=True)
class SelfBleu:
    """Mean BLEU of each response against the others, and ``1 -`` that as diversity."""

    self_bleu: float
    diversity: float


#: Up to this many (text, n-gram) cells, reference counts are read from a dense table;
#: above it, found by binary search in the sorted keys (the same counts, less memory).
DENSE_CELLS = 1 << 22


def _reference_counts(
    keys: NDArray[np.int64],
    counts: NDArray[np.int64],
    width: int,
    n_texts: int,
    texts: NDArray[np.int64],
    gram: NDArray[np.int64],
    *,
    dense_cells: int = DENSE_CELLS,
) -> NDArray[np.integer[Any]]:
    """Return how often n-gram ``gram[h]`` occurs in text ``texts[h, r]``, for every h, r.

    ``keys`` (sorted, ``text * width + n-gram id``) and ``counts`` list the occurring ones.

    >>> keys, counts = np.array([1, 4, 7]), np.array([2, 1, 3])  # width 3, texts 0..2
    >>> texts, gram = np.array([[1, 0], [2, 1]]), np.array([1, 1])
    >>> _reference_counts(keys, counts, 3, 3, texts, gram).tolist()
    [[1, 2], [3, 1]]
    >>> _reference_counts(keys, counts, 3, 3, texts, gram, dense_cells=0).tolist()
    [[1, 2], [3, 1]]
    """
    if n_texts * width <= dense_cells:
        table = np.zeros((n_texts, width), dtype=np.int32)  # int32: a faster gather
        table.flat[keys] = counts
        return table[texts, gram[:, None]]
    query = texts * width + gram[:, None]
    if not keys.size:
        return np.zeros_like(query)
    where = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return np.where(keys[where] == query, counts[where], 0)


def _bleu(
    tokens: NDArray[np.int64],
    doc: NDArray[np.int64],
    lengths: NDArray[np.int64],
    refs: NDArray[np.int64],
    epsilon: float,
) -> NDArray[np.float64]:
    """BLEU-4 of text i (i < len(refs)) against the texts ``refs[i]``, for every i at once."""
    n_hyps = refs.shape[0]
    log_precision = np.zeros(n_hyps)
    unigram_matches = np.zeros(n_hyps)
    for n in range(1, MAX_ORDER + 1):
        ids, owner = ngram_ids(tokens, doc, n)
        width = int(ids.max(initial=0)) + 1
        keys, counts = np.unique(owner * width + ids, return_counts=True)
        hyp = keys // width < n_hyps  # (text, n-gram) pairs of a hypothesis
        row, gram, count = keys[hyp] // width, keys[hyp] % width, counts[hyp]
        found = _reference_counts(keys, counts, width, lengths.size, refs[row], gram)
        ref_count = found.max(axis=1, initial=0)
        clipped = np.bincount(row, np.minimum(count, ref_count), minlength=n_hyps).astype(float)
        total = np.maximum(1, lengths[:n_hyps] - n + 1)
        log_precision += np.log(np.where(clipped > 0, clipped, epsilon) / total) / MAX_ORDER
        if n == 1:
            unigram_matches = clipped
    hyp_len = lengths[:n_hyps]
    ref_len = lengths[refs]
    closest = np.argmin(np.abs(ref_len - hyp_len[:, None]) * (lengths.max() + 1) + ref_len, 1)
    r = ref_len[np.arange(n_hyps), closest]
    with np.errstate(divide="ignore"):
        penalty = np.where(hyp_len > r, 1.0, np.exp(1.0 - r / np.maximum(hyp_len, 1)))
    return np.where(unigram_matches > 0, penalty * np.exp(log_precision), 0.0)


def _encode(
    texts: Sequence[str], tokenizer: Tokenizer | None
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    tokens, doc = encode_tokens(texts, tokenizer)
    return tokens, doc, np.bincount(doc, minlength=len(texts)).astype(np.int64)


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    *,
    epsilon: float = 0.1,
    tokenizer: Tokenizer | None = None,
) -> float:
    """Return smoothed BLEU-4 of one hypothesis against its references (NLTK method1).

    >>> sentence_bleu("the cat sat on the mat", ["the cat sat on the mat"])
    1.0
    >>> # precisions 5/6, 3/5, 1/4 and 0.1/3 (no 4-gram matches), no brevity penalty
    >>> round(sentence_bleu("the cat sat on the mat", ["the cat is on the mat"]), 6)
    0.254066
    """
    if not references:
        raise ValueError("references must hold at least one text")
    config = SelfBleuConfig(epsilon=epsilon)
    tokens, doc, lengths = _encode([hypothesis, *references], tokenizer)
    refs = np.arange(1, len(references) + 1, dtype=np.int64)[None, :]
    return float(_bleu(tokens, doc, lengths, refs, config.epsilon)[0])


def _references(n: int, config: SelfBleuConfig) -> NDArray[np.int64]:
    """Each of n responses' references: all the others, or a seeded draw of them."""
    if n - 1 <= config.max_references:
        others = np.arange(n - 1)[None, :]
        return np.asarray(others + (others >= np.arange(n)[:, None]), dtype=np.int64)
    keys = np.random.default_rng(config.seed).random((n, n))
    np.fill_diagonal(keys, np.inf)
    refs = np.argpartition(keys, config.max_references, axis=1)[:, : config.max_references]
    return refs.astype(np.int64)


def self_bleu(
    texts: Sequence[str],
    *,
    max_references: int = 50,
    seed: int = 0,
    epsilon: float = 0.1,
    tokenizer: Tokenizer | None = None,
) -> SelfBleu:
    """Return Self-BLEU of one prompt's responses and ``1 - SelfBLEU``; NaN for N < 2.

    >>> self_bleu(["a b c d e"] * 3)
    SelfBleu(self_bleu=1.0, diversity=0.0)
    """
    config = SelfBleuConfig(max_references=max_references, seed=seed, epsilon=epsilon)
    n = len(texts)
    if n < 2:
        return SelfBleu(float("nan"), float("nan"))
    tokens, doc, lengths = _encode(texts, tokenizer)
    score = float(np.mean(_bleu(tokens, doc, lengths, _references(n, config), config.epsilon)))
    return SelfBleu(score, 1.0 - score)


def self_bleu_per_prompt(
    prompts: Sequence[Sequence[str]] | PromptNgrams,
    *,
    max_references: int = 50,
    seed: int = 0,
    epsilon: float = 0.1,
    tokenizer: Tokenizer | None = None,
) -> NDArray[np.float64]:
    """Return each prompt's Self-BLEU, exactly ``self_bleu(texts).self_bleu`` (NaN for N < 2),
    over all prompts at once (``prompts`` may be their ``prompt_ngrams``, up to 4-grams).

    Where every other response is a reference (N - 1 <= ``max_references``), a
    hypothesis's reference count of an n-gram is the largest count in the other
    responses: the prompt's top count unless the hypothesis alone holds it (then the
    second), so no (hypothesis, reference) pairs are built. Larger prompts, whose
    references are drawn, are scored one at a time.

    >>> self_bleu_per_prompt([["a b c d e"] * 3, ["x"], ["a b", "c d"]]).tolist()
    [1.0, nan, 0.0]
    """
    config = SelfBleuConfig(max_references=max_references, seed=seed, epsilon=epsilon)
    ngrams = prompts if isinstance(prompts, PromptNgrams) else prompt_ngrams(
        prompts, MAX_ORDER, tokenizer=tokenizer)
    if len(ngrams.orders) < MAX_ORDER:
        raise ValueError(f"Self-BLEU needs n-grams up to {MAX_ORDER}")
    sizes = ngrams.sizes
    out = np.full(sizes.size, np.nan)
    if not ngrams.lengths.size:
        return out
    scores = _leave_one_out_bleu(ngrams, config.epsilon)
    ends = np.cumsum(sizes)
    for i, (start, end) in enumerate(zip((ends - sizes).tolist(), ends.tolist(), strict=True)):
        n = end - start
        if 2 <= n <= config.max_references + 1:
            out[i] = float(np.mean(scores[start:end]))
        elif n > config.max_references + 1:
            out[i] = _drawn_self_bleu(ngrams, start, end, config)
    return out


def _drawn_self_bleu(ngrams: PromptNgrams, start: int, end: int,
                     config: SelfBleuConfig) -> float:
    """``self_bleu`` of the texts ``start..end-1``, whose references are drawn."""
    inside = (ngrams.doc >= start) & (ngrams.doc < end)
    scores = _bleu(ngrams.tokens[inside], ngrams.doc[inside] - start,
                   ngrams.lengths[start:end], _references(end - start, config),
                   config.epsilon)
    return float(np.mean(scores))


def _leave_one_out_bleu(ngrams: PromptNgrams, epsilon: float) -> NDArray[np.float64]:
    """BLEU-4 of every text against the other texts of its prompt, the same floats as
    ``_bleu`` with those references (meaningless for prompts of fewer than 2 texts)."""
    sizes, lengths, group = ngrams.sizes, ngrams.lengths, ngrams.prompt
    n_texts = lengths.size
    start = np.cumsum(sizes) - sizes
    local = np.arange(n_texts) - start[group]  # each text's place in its prompt
    slots = int(sizes.max())
    log_precision = np.zeros(n_texts)
    unigram_matches = np.zeros(n_texts)
    for n, (ids, owner) in enumerate(ngrams.orders[:MAX_ORDER], start=1):
        clipped = _clipped_matches(ids, owner, group, local, start, slots, n_texts)
        total = np.maximum(1, lengths - n + 1)
        log_precision += np.log(np.where(clipped > 0, clipped, epsilon) / total) / MAX_ORDER
        if n == 1:
            unigram_matches = clipped
    # The brevity penalty against the closest other length of the prompt (ties: shorter).
    place = np.arange(slots)
    members = start[group][:, None] + place[None, :]
    valid = (place[None, :] < sizes[group][:, None]) & (members != np.arange(n_texts)[:, None])
    ref_len = lengths[np.minimum(members, n_texts - 1)]
    distance = np.abs(ref_len - lengths[:, None]) * (lengths.max() + 1) + ref_len
    closest = np.argmin(np.where(valid, distance, np.iinfo(np.int64).max), axis=1)
    r = ref_len[np.arange(n_texts), closest]
    with np.errstate(divide="ignore"):
        penalty = np.where(lengths > r, 1.0, np.exp(1.0 - r / np.maximum(lengths, 1)))
    return np.asarray(np.where(unigram_matches > 0, penalty * np.exp(log_precision), 0.0),
                      dtype=np.float64)


def _clipped_matches(ids: NDArray[np.int64], owner: NDArray[np.int64],
                     group: NDArray[np.int64], local: NDArray[np.int64],
                     start: NDArray[np.int64], slots: int, n_texts: int) -> NDArray[np.float64]:
    """Per text, its n-grams' counts clipped by the largest count in another text of its
    group, summed (BLEU's clipped matches against every other text of the group)."""
    if not ids.size:
        return np.zeros(n_texts)
    width = int(ids.max()) + 1
    # One sort orders the occurrences by (group, n-gram, text): runs of equal keys count
    # an n-gram in a text; runs of (group, n-gram) hold its counts in the group.
    keys = np.sort((group[owner] * width + ids) * slots + local[owner])
    first = np.flatnonzero(np.append(True, keys[1:] != keys[:-1]))
    count = np.diff(np.append(first, keys.size))
    gram, text = keys[first] // slots, keys[first] % slots
    text = text + start[gram // width]
    new_gram = np.append(True, gram[1:] != gram[:-1])
    runs, run = np.flatnonzero(new_gram), np.cumsum(new_gram) - 1
    top = np.maximum.reduceat(count, runs)
    place = np.arange(count.size)
    holder = np.minimum.reduceat(np.where(count == top[run], place, count.size), runs)
    alone = place == holder[run]
    second = np.maximum.reduceat(np.where(alone, 0, count), runs)
    reference = np.where(alone, second[run], top[run])
    return np.asarray(np.bincount(text, np.minimum(count, reference), minlength=n_texts),
                      dtype=np.float64)
