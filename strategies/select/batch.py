"""Vectorised forms of the selectors over many problems at once (ALGORITHMS §7-§12).

The metrics stage (``webapp.experiments.selection``) runs a strategy's selector through
these wherever its config is one they implement, both for the choice per problem and for
every random k-subset of sel@k; the per-problem ``select_<name>`` stay the readable
reference, and the tests hold the two equal.

Inputs are ``[P, N]`` arrays: ``answers`` int class ids (``-1``: no answer; equal ids are
equal answers), ``correct`` bool verdicts, ``mean_logprobs`` float and ``scores`` float
(NaN: missing, which ranks as ``-inf``). ``batch_select_<name>`` returns, per problem, the
index, the tied candidates and the credit that ``select_<name>`` (default config unless a
keyword says otherwise) plus ``selection_credit`` give: scores within the ``rank_options``
tolerance tie and earn ``1/|tied|`` credit. Configs they cover: ``first``,
``lowest_perplexity`` and ``best_of_n`` without ``require_answer``; ``weighted_majority``
with ``weight="mean_logprob"``; ``best_of_majority`` with ``aggregation="max"`` (any
``alpha``; ``k`` and ``pad`` only change the ranking); ``adaptive_consistency`` and
``rpc`` with any config; ``mbr`` with ``similarity="answer"``, uniform weights and every
candidate a reference. The random baseline and the code selectors (CodeT, B4) have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.adaptive import beta_stop_probability
from strategies.select.base import TIE_ABS_TOL, TIE_REL_TOL
from strategies.select.rpc import reasoning_pruning_mask

__all__ = [
    "BatchSelection",
    "batch_select_adaptive_consistency",
    "batch_select_best_of_majority",
    "batch_select_best_of_n",
    "batch_select_first",
    "batch_select_lowest_perplexity",
    "batch_select_majority",
    "batch_select_mbr",
    "batch_select_oracle",
    "batch_select_rpc",
    "batch_select_weighted_majority",
    "first_occurrence",
]


@dataclass(frozen=True)
class BatchSelection:
    """Per problem: the chosen candidate (``-1``: abstain), its expected correctness, and
    which candidates are ``Selection.tied`` (one per option tied for first; none when
    abstaining)."""

    index: np.ndarray
    credit: np.ndarray
    tied: np.ndarray


def _abstain(p: int, n: int) -> BatchSelection:
    return BatchSelection(index=np.full(p, -1), credit=np.zeros(p),
                          tied=np.zeros((p, n), dtype=bool))


def _single(index: np.ndarray, correct: np.ndarray) -> BatchSelection:
    """One chosen candidate per problem, tied with nothing."""
    p, n = correct.shape
    rows = np.arange(p)
    tied = np.zeros((p, n), dtype=bool)
    tied[rows, index] = True
    return BatchSelection(index=index, credit=correct[rows, index].astype(float), tied=tied)


def first_occurrence(answers: np.ndarray) -> np.ndarray:
    """Return, per entry, the position of its answer's first occurrence in its row (``-1``: none).

    That position is the answer group's id: groups in order of first occurrence.

    >>> first_occurrence(np.array([[7, -1, 8, 7, 8]])).tolist()
    [[0, -1, 2, 0, 2]]
    """
    ids = np.asarray(answers, dtype=np.int64)
    p, n = ids.shape
    order = np.argsort(ids, axis=1, kind="stable")
    ordered = np.take_along_axis(ids, order, axis=1)
    starts = np.ones((p, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run = np.maximum.accumulate(np.where(starts, np.arange(n), 0), axis=1)
    first = np.empty_like(ids)
    np.put_along_axis(first, order, np.take_along_axis(order, run, axis=1), axis=1)
    return np.where(ids >= 0, first, -1)


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``math.isclose`` elementwise with the tie tolerances of ``rank_options``."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
        bound = np.maximum(TIE_REL_TOL * np.maximum(np.abs(a), np.abs(b)), TIE_ABS_TOL)
        return np.asarray((a == b) | (np.isfinite(diff) & (diff <= bound)), dtype=bool)


def _group_sum(first: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sum ``values`` over ``mask`` per group, in index order; stored at each group's id."""
    p, n = first.shape
    flat = (np.arange(p)[:, None] * n + first)[mask]
    totals = np.bincount(flat, weights=values[mask], minlength=p * n)
    return np.asarray(totals.reshape(p, n), dtype=np.float64)


def _group_max(first: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Maximum of ``values`` over ``mask`` per group (``-inf`` when empty), at each group's id."""
    p, n = first.shape
    out = np.full(p * n, -np.inf)
    np.maximum.at(out, (np.arange(p)[:, None] * n + first)[mask], values[mask])
    return out.reshape(p, n)


def _lead(keys: Sequence[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Per row, the earliest masked entry whose keys are (lexicographically) best; ``-1``: none."""
    best = mask.copy()
    for key in keys:
        top = np.max(np.where(best, key, -np.inf), axis=1, keepdims=True)
        best &= _close(key, top)
    return np.where(best.any(axis=1), best.argmax(axis=1), -1)


def _tied(keys: Sequence[np.ndarray], mask: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Masked entries whose keys all equal (within tolerance) those of the row's ``lead``."""
    rows, at = np.arange(len(lead)), np.maximum(lead, 0)
    tied = mask & (lead >= 0)[:, None]
    for key in keys:
        tied &= _close(key, key[rows, at][:, None])
    return tied


def _mean(chosen: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Per row, the fraction of chosen entries that are correct (0.0 with none chosen)."""
    count = chosen.sum(axis=1)
    hits = (chosen & correct).sum(axis=1)
    return np.asarray(np.where(count > 0, hits / np.maximum(count, 1), 0.0), dtype=np.float64)


def _options(
    keys: Sequence[np.ndarray],
    options: np.ndarray,
    correct: np.ndarray,
    representative: np.ndarray | None = None,
) -> BatchSelection:
    """Rank options (entries flagged in ``options``, earlier first on ties) by ``keys``.

    The index and the tie credit come from each option's ``representative`` (itself when
    ``None``), like ``selection_from_options``.
    """
    lead = _lead(keys, options)
    tied = _tied(keys, options, lead)
    if representative is None:
        return BatchSelection(index=lead, credit=_mean(tied, correct), tied=tied)
    rep = np.clip(representative, 0, max(correct.shape[1] - 1, 0))
    index = np.where(lead >= 0, rep[np.arange(len(lead)), np.maximum(lead, 0)], -1)
    rows, cols = np.nonzero(tied)
    chosen = np.zeros_like(tied)
    chosen[rows, rep[rows, cols]] = True
    return BatchSelection(index=index, credit=_mean(tied, np.take_along_axis(correct, rep, 1)),
                          tied=chosen)


def _candidates(
    keys: Sequence[np.ndarray], first: np.ndarray, correct: np.ndarray
) -> BatchSelection:
    """Rank single candidates by ``keys``, like ``selection_from_candidates``.

    Tie credit counts one candidate (the earliest tied) per answer group; unanswered
    candidates share one group.
    """
    p, n = first.shape
    lead = _lead(keys, np.ones((p, n), dtype=bool))
    rows, cols = np.nonzero(_tied(keys, np.ones((p, n), dtype=bool), lead))
    group = np.where(first[rows, cols] < 0, n, first[rows, cols])
    _, earliest = np.unique(rows * (n + 1) + group, return_index=True)
    rows, cols = rows[earliest], cols[earliest]
    count = np.bincount(rows, minlength=p)
    hits = np.bincount(rows, weights=correct[rows, cols].astype(float), minlength=p)
    credit = np.where(count > 0, hits / np.maximum(count, 1), 0.0)
    tied = np.zeros((p, n), dtype=bool)
    tied[rows, cols] = True
    return BatchSelection(index=lead, credit=np.asarray(credit, dtype=np.float64), tied=tied)


def _reward(scores: np.ndarray) -> np.ndarray:
    """Verifier scores with missing (NaN) ones as ``-inf``, like ``best_of_n.reward``."""
    values = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(values), -np.inf, values)


def batch_select_first(correct: np.ndarray) -> BatchSelection:
    """``select_first_candidate``: always the first candidate.

    >>> batch_select_first(np.array([[False, True], [True, False]])).credit.tolist()
    [0.0, 1.0]
    """
    p, n = correct.shape
    if n == 0:
        return _abstain(p, n)
    return _single(np.zeros(p, dtype=np.int64), correct)


def batch_select_oracle(correct: np.ndarray) -> BatchSelection:
    """``select_oracle``: the first correct candidate, else the first one."""
    p, n = correct.shape
    if n == 0:
        return _abstain(p, n)
    return _single(np.where(correct.any(axis=1), correct.argmax(axis=1), 0), correct)


def batch_select_majority(answers: np.ndarray, correct: np.ndarray) -> BatchSelection:
    """``select_majority``: the most frequent answer; ties to the earliest, split credit.

    >>> selection = batch_select_majority(np.array([[7, -1, 8, 7, 8]]),
    ...                                   np.array([[False, False, True, False, True]]))
    >>> selection.index.tolist(), selection.credit.tolist()
    ([0], [0.5])
    """
    first = first_occurrence(answers)
    counts = _group_sum(first, np.ones(first.shape), first >= 0)
    return _options([counts], first == np.arange(first.shape[1]), correct)


def batch_select_weighted_majority(
    answers: np.ndarray, correct: np.ndarray, mean_logprobs: np.ndarray
) -> BatchSelection:
    """``select_weighted_majority`` (``mean_logprob``): groups weigh ``Σ exp(mean logprob)``."""
    first = first_occurrence(answers)
    totals = _group_sum(first, np.exp(mean_logprobs), first >= 0)
    return _options([totals], first == np.arange(first.shape[1]), correct)


def batch_select_lowest_perplexity(
    answers: np.ndarray, correct: np.ndarray, mean_logprobs: np.ndarray
) -> BatchSelection:
    """``select_lowest_perplexity``: the highest mean logprob; ties to the lower index."""
    first = first_occurrence(answers)
    return _candidates([np.asarray(mean_logprobs, dtype=np.float64)], first, correct)


def batch_select_best_of_n(
    answers: np.ndarray, correct: np.ndarray, scores: np.ndarray, mean_logprobs: np.ndarray
) -> BatchSelection:
    """``select_best_of_n``: the best score, then the higher mean logprob, then lower index."""
    first = first_occurrence(answers)
    keys = [_reward(scores), np.asarray(mean_logprobs, dtype=np.float64)]
    return _candidates(keys, first, correct)


def batch_select_best_of_majority(
    answers: np.ndarray,
    correct: np.ndarray,
    scores: np.ndarray,
    mean_logprobs: np.ndarray,
    *,
    alpha: float | None = None,
) -> BatchSelection:
    """``select_best_of_majority`` (max aggregation, k = 1): the best-rewarded frequent answer."""
    first = first_occurrence(answers)
    p, n = first.shape
    valid, positions = first >= 0, np.arange(n)
    options = first == positions
    counts = _group_sum(first, np.ones((p, n)), valid)
    threshold = alpha if alpha is not None else max(2 / n, 0.05) if n else 0.0
    survives = options & (counts / max(n, 1) >= threshold - 1e-12)
    mode = options & (counts == np.max(np.where(options, counts, -1.0), axis=1, keepdims=True))
    survives = np.where(survives.any(axis=1, keepdims=True), survives, mode)
    reward, logprob = _reward(scores), np.asarray(mean_logprobs, dtype=np.float64)
    at = np.maximum(first, 0)
    group_reward = _group_max(first, reward, valid)
    top = valid & _close(reward, np.take_along_axis(group_reward, at, 1))
    top &= _close(logprob, np.take_along_axis(_group_max(first, logprob, top), at, 1))
    best = np.full(p * n, n)
    np.minimum.at(best, (np.arange(p)[:, None] * n + first)[top], np.nonzero(top)[1])
    return _options([group_reward, counts], survives, correct, best.reshape(p, n))


def batch_select_adaptive_consistency(
    answers: np.ndarray, correct: np.ndarray, *, threshold: float = 0.95, max_samples: int = 40
) -> BatchSelection:
    """``select_adaptive_consistency``: majority vote over the prefix drawn before stopping.

    The Beta criterion is read from a table of ``beta_stop_probability`` over the
    cumulative top-two counts of every prefix.
    """
    p, n = answers.shape
    m = min(n, max_samples)
    if m == 0:
        return _abstain(p, n)
    first = first_occurrence(answers[:, :m])
    counts = np.cumsum(first[:, :, None] == np.arange(m), axis=1)  # [P, drawn, group]
    top_two = np.sort(np.pad(counts, ((0, 0), (0, 0), (1, 0))), axis=2)[:, :, -2:]  # (b, a)
    table = np.array([[beta_stop_probability(a, b) for b in range(m + 1)] for a in range(m + 1)])
    stop = table[top_two[:, :, 1], top_two[:, :, 0]] >= threshold
    stop |= np.arange(1, m + 1) >= max_samples
    used = np.where(stop.any(axis=1), stop.argmax(axis=1) + 1, n)
    votes = counts[np.arange(p), used - 1].astype(np.float64)
    prefix = _options([votes], votes > 0, correct[:, :m])
    tied = np.zeros((p, n), dtype=bool)
    tied[:, :m] = prefix.tied
    return BatchSelection(index=prefix.index, credit=prefix.credit, tied=tied)


def batch_select_mbr(answers: np.ndarray, correct: np.ndarray) -> BatchSelection:
    """``select_mbr`` with answer-equality similarity, uniform weights and every reference.

    A candidate's utility is ``(its group's size - 1) / (N - 1)``; unanswered ones score 0.
    """
    first = first_occurrence(answers)
    p, n = first.shape
    counts = _group_sum(first, np.ones((p, n)), first >= 0)
    size = np.take_along_axis(counts, np.maximum(first, 0), 1)
    utility = np.where(first >= 0, (size - 1) / max(n - 1, 1), 0.0)
    return _candidates([utility], first, correct)


def batch_select_rpc(
    answers: np.ndarray,
    correct: np.ndarray,
    mean_logprobs: np.ndarray,
    *,
    text_ids: np.ndarray | None = None,
    prune: bool = True,
) -> BatchSelection:
    """``select_rpc``: Weibull-mixture pruning (fitted per problem), then perplexity consistency.

    ``text_ids`` identify completion texts (equal id, equal text; ``None``: all distinct):
    a group counts each distinct text's ``p = exp(mean logprob)`` once.
    """
    ids = np.asarray(answers, dtype=np.int64)
    p, n = ids.shape
    prob = np.array([np.exp(row) for row in np.asarray(mean_logprobs, dtype=np.float64)])
    prob = prob.reshape(p, n)
    keep = np.ones((p, n), dtype=bool)
    if prune:
        for row in range(p):
            keep[row] = reasoning_pruning_mask(prob[row])
    valid = ids >= 0
    keep |= ~(keep & valid).any(axis=1, keepdims=True)  # never prune every answer away
    voters = keep & valid
    first = first_occurrence(np.where(voters, ids, -1))
    counted = voters
    if text_ids is not None:
        texts = np.asarray(text_ids, dtype=np.int64)
        pairs = ids * (int(texts.max(initial=0)) + 1) + texts
        counted = first_occurrence(np.where(voters, pairs, -1)) == np.arange(n)
    mass = _group_sum(first, prob, counted)
    return _options([mass], first == np.arange(n), correct)
