"""Pairwise similarities for MBR: sentence-level chrF and token-level ROUGE-L (ALGORITHMS §11)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from strategies.select.numeric import shared_counts

__all__ = ["chrf", "chrf_matrix", "lcs_length", "rouge_l", "rouge_l_matrix"]

CHRF_ORDER = 6
CHRF_BETA = 2.0
_WHITESPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+")


def _ngram_rows(texts: Sequence[str], n: int, ids: dict[tuple[str, int], int]) -> list[np.ndarray]:
    """Map each text's n-grams to ids; the k-th repeat of an n-gram gets its own id."""
    rows = []
    for text in texts:
        seen: dict[str, int] = {}
        row = []
        for start in range(len(text) - n + 1):
            gram = text[start : start + n]
            seen[gram] = seen.get(gram, 0) + 1
            row.append(ids.setdefault((gram, seen[gram]), len(ids)))
        rows.append(np.asarray(row, dtype=np.int64))
    return rows


def chrf_matrix(
    texts: Sequence[str], *, order: int = CHRF_ORDER, beta: float = CHRF_BETA
) -> np.ndarray:
    """Return ``M[i, j]`` = sentence chrF of hypothesis ``texts[i]`` against reference ``texts[j]``.

    As sacreBLEU: whitespace removed, character n-grams ``n = 1..order``, precision and
    recall averaged over the orders both strings have, then F-beta (``beta=2``). Two
    empty strings score 1. Matching counts come from one sparse product per order.

    >>> np.round(chrf_matrix(["abc", "abc", "xyz"]), 3).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    cleaned = [_WHITESPACE.sub("", text) for text in texts]
    size = len(cleaned)
    lengths = np.array([len(text) for text in cleaned], dtype=np.float64)
    precision = np.zeros((size, size))
    recall = np.zeros((size, size))
    effective = np.zeros((size, size))
    for n in range(1, order + 1):
        ids: dict[tuple[str, int], int] = {}
        matches = shared_counts(_ngram_rows(cleaned, n, ids), len(ids)).astype(np.float64)
        totals = np.maximum(lengths - n + 1, 0.0)
        both = (totals[:, None] > 0) & (totals[None, :] > 0)
        safe = np.maximum(totals, 1.0)
        precision += np.where(both, matches / safe[:, None], 0.0)
        recall += np.where(both, matches / safe[None, :], 0.0)
        effective += both
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(effective > 0, precision / effective, 0.0)
        recall = np.where(effective > 0, recall / effective, 0.0)
        b2 = beta**2
        score = (1 + b2) * precision * recall / (b2 * precision + recall)
    score = np.where(precision + recall > 0, score, 0.0)
    empty = lengths == 0
    return np.asarray(np.where(empty[:, None] & empty[None, :], 1.0, score), dtype=np.float64)


def chrf(hypothesis: str, reference: str) -> float:
    """Return the sentence-level chrF (``n = 1..6``, ``beta = 2``) in [0, 1].

    >>> chrf("the cat sat", "the cat sat"), chrf("abc", "xyz")
    (1.0, 0.0)
    """
    return float(chrf_matrix([hypothesis, reference])[0, 1])


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Return the length of the longest common subsequence (bit-parallel, Hyyrö 2004).

    >>> lcs_length("ABCBDAB", "BDCABA")
    4
    """
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def _tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens, as the ``rouge_score`` tokenizer without stemming."""
    return _TOKEN.findall(text.lower())


def _rouge_l_tokens(a: list[str], b: list[str]) -> float:
    if not a and not b:
        return 1.0
    common = lcs_length(a, b)
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def rouge_l(hypothesis: str, reference: str) -> float:
    """Return the token-level ROUGE-L F1 (longest common subsequence) in [0, 1].

    >>> rouge_l("the cat sat on the mat", "the cat on the mat")
    0.9090909090909091
    """
    return _rouge_l_tokens(_tokens(hypothesis), _tokens(reference))


def rouge_l_matrix(texts: Sequence[str], columns: Sequence[int] | None = None) -> np.ndarray:
    """Return ``M[i, c]`` = ROUGE-L F1 of ``texts[i]`` against ``texts[columns[c]]``.

    >>> rouge_l_matrix(["a b", "a c"]).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    tokens = [_tokens(text) for text in texts]
    cols = list(range(len(texts))) if columns is None else list(columns)
    matrix = np.zeros((len(texts), len(cols)))
    done: dict[tuple[int, int], float] = {}  # F1 is symmetric: each pair once
    for c, j in enumerate(cols):
        for i in range(len(texts)):
            pair = (min(i, j), max(i, j))
            if pair not in done:
                done[pair] = _rouge_l_tokens(tokens[i], tokens[j])
            matrix[i, c] = done[pair]
    return matrix
