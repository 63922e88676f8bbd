"""Running a strategy's selector over its problems: the choice per problem and sel@k.

Where ``strategies.select.batch`` implements the selector with the strategy's config
(``batch_route``), every problem, and every random k-subset that sel@k averages over, goes
through the vectorised form at once; otherwise (CodeT, B4, random, MBR on text similarity,
...) the registered per-problem selector runs one problem or subset at a time
(``select_in``). Both give the same selections, ties and credit (tests/strategies/select/
test_batch.py, tests/webapp/experiments/test_results_batch.py), and sel@k draws the same
random subsets from the same generators either way. A selector with a formula for sel@k
(first, random, the oracle, majority, best-of-N) gets it from the formula, computed for
all problems of a size at once; maj@k falls back to the resampled estimate on a problem
whose exact count would cost more than ``MAJORITY_DP_CELLS``.

Both paths read a pool's columns (``pool_samples.PoolSamples``); only the per-problem
one builds candidates, with their text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from strategies.metrics.majk import majority_at_k_counts
from strategies.metrics.passk import pass_at_k
from strategies.metrics.selk import best_of_n_curve, sel_at_k
from strategies.select import batch
from strategies.select.base import Selection, selection_credit
from strategies.types import Candidate
from strategies.verify.equivalence import is_equivalent
from webapp.experiments.models import Strategy
from webapp.experiments.pool_samples import Arrays, PoolSamples, ProblemPool

# Random k-subsets per problem and k for selectors without a closed-form sel@k.
SEL_AT_K_RESAMPLES = 24
# Bound on rows x k^2 per vectorised call: adaptive consistency's working memory grows
# with k^2 per row (its vote counts after every draw), the others' with k.
BATCH_CELLS = 1 << 22
# Bound on the work of one problem's exact maj@k at one k (``majority_at_k_counts``):
# about 25 ms; the contested problems of 500 samples with a few distinct answers stay
# well below it at every k, while hundreds of near-equal answers at k in the hundreds
# exceed it and are resampled instead.
MAJORITY_DP_CELLS = 1 << 23


BatchSelector = Callable[[Arrays], batch.BatchSelection]


def batch_route(selector: str, config: Any, size: int) -> BatchSelector | None:
    """The vectorised form of ``selector`` with ``config`` for pools of at most ``size``
    candidates, where ``strategies.select.batch`` implements exactly that; else ``None``."""
    if selector in ("first", "lowest_perplexity", "best_of_n") and config.require_answer:
        return None
    if selector == "first":
        return lambda a: batch.batch_select_first(a.correct)
    if selector == "oracle":
        return lambda a: batch.batch_select_oracle(a.correct)
    if selector == "majority":
        return lambda a: batch.batch_select_majority(a.answers, a.correct)
    if selector == "weighted_majority" and config.weight == "mean_logprob":
        return lambda a: batch.batch_select_weighted_majority(a.answers, a.correct,
                                                              a.mean_logprobs)
    if selector == "lowest_perplexity":
        return lambda a: batch.batch_select_lowest_perplexity(a.answers, a.correct,
                                                              a.mean_logprobs)
    if selector == "best_of_n":
        return lambda a: batch.batch_select_best_of_n(a.answers, a.correct, a.scores,
                                                      a.mean_logprobs)
    if selector == "best_of_majority" and config.aggregation == "max":
        return lambda a: batch.batch_select_best_of_majority(
            a.answers, a.correct, a.scores, a.mean_logprobs, alpha=config.alpha)
    if selector == "adaptive_consistency":
        return lambda a: batch.batch_select_adaptive_consistency(
            a.answers, a.correct, threshold=config.threshold, max_samples=config.max_samples)
    if (selector == "mbr" and config.similarity == "answer" and config.weights == "uniform"
            and (config.max_references is None or size <= config.max_references)):
        return lambda a: batch.batch_select_mbr(a.answers, a.correct)
    if selector == "rpc":
        return lambda a: batch.batch_select_rpc(a.answers, a.correct, a.mean_logprobs,
                                                text_ids=a.texts, prune=config.prune)
    return None


def route_reads_texts(selector: str) -> bool:
    """Whether ``batch_route``'s form of the selector reads text ids (RPC counts each
    distinct completion once)."""
    return selector == "rpc"


def select_in(pool: ProblemPool, indices: Sequence[int], select: Callable[..., Selection],
              config: Any, rng: np.random.Generator) -> tuple[Selection, list[Candidate]]:
    """The selector's choice among the pool's candidates ``indices`` (in order), and those
    candidates. CodeT and B4 choose among the ones that executed, by their matrix rows;
    their selection's indices are mapped back to positions in the returned list."""
    subset = [pool.candidates[i] for i in indices]
    if pool.matrix is None:
        return select(subset, config, rng=rng), subset
    rows = [pool.executed.index(i) for i in indices if i in pool.executed]
    positions = [k for k, i in enumerate(indices) if i in pool.executed]
    if not rows:
        return Selection(index=None, answer=None, tied=()), subset
    chosen = select([subset[k] for k in positions], config, matrix=pool.matrix[rows], rng=rng)
    if chosen.index is None:
        return chosen, subset
    return Selection(
        index=positions[chosen.index], answer=chosen.answer,
        tied=tuple(positions[t] for t in chosen.tied),
    ), subset


def _rng(strategy: Strategy, index: int) -> np.random.Generator:
    """The seeded generator of one problem (by its index) for this strategy."""
    return np.random.default_rng([strategy.experiment.seed, index, strategy.position])


def _run(route: BatchSelector, arrays: Arrays, rows: np.ndarray,
         columns: np.ndarray) -> batch.BatchSelection:
    """``route`` on the candidates ``columns[r]`` of problem ``rows[r]``, in slices of rows
    that keep memory bounded."""
    step = max(1, BATCH_CELLS // columns.shape[1] ** 2)
    parts = [route(arrays.take(rows[i:i + step], columns[i:i + step]))
             for i in range(0, len(rows), step)]
    return batch.BatchSelection(*(np.concatenate([getattr(part, name) for part in parts])
                                  for name in ("index", "credit", "tied")))


def _by_size(data: PoolSamples) -> dict[int, np.ndarray]:
    """The problems (rows) of each sample count."""
    return {int(n): np.flatnonzero(data.sizes == n) for n in np.unique(data.sizes)}


def select_pools(strategy: Strategy, data: PoolSamples,
                 pools: Callable[[], list[ProblemPool]], select: Callable[..., Selection],
                 config: Any, route: BatchSelector | None,
                 arrays: Callable[[], Arrays]) -> list[Selection]:
    """The selector's choice on each problem's whole pool (``pools``: the candidates, for
    the per-problem path)."""
    if route is None:
        return [select_in(p, range(len(p.candidates)), select, config,
                          _rng(strategy, p.index))[0] for p in pools()]
    if strategy.selector == "oracle" and (data.verdicts[data.present] < 0).any():
        raise ValueError("the oracle needs is_correct set on every candidate")  # as select_oracle
    selections: list[Selection] = [Selection(index=None, answer=None, tied=())] * len(data.sizes)
    for n, rows in _by_size(data).items():
        chosen = _run(route, arrays(), rows, np.tile(np.arange(n), (len(rows), 1)))
        for position, row in enumerate(rows.tolist()):
            index = int(chosen.index[position])
            if index >= 0:
                selections[row] = Selection(
                    index=index, answer=data.answers[row, index],
                    tied=tuple(int(i) for i in np.flatnonzero(chosen.tied[position])))
    return selections


def closed_form_sel_at_k(strategy: Strategy, data: PoolSamples,
                         ks: Sequence[int]) -> list[dict[int, float] | None]:
    """sel@k by formula on each judged problem, for the selectors that have one (``None``
    for the others); a k missing from a problem's dict is left to resampling."""
    rows = np.flatnonzero(data.judged)
    out: list[dict[int, float] | None] = [None] * len(data.sizes)
    correct = data.correct
    selector = strategy.selector
    if selector == "majority" and not data.code:
        return _majority_sel_at_k(data, rows, ks)
    # With require_answer, first and best-of-N skip unanswered candidates: no formula.
    if selector not in ("first", "random", "oracle", "best_of_n") or \
            strategy.selector_config.get("require_answer"):
        return out
    for row in rows.tolist():
        n, right = int(data.sizes[row]), correct[row, : data.sizes[row]]
        if selector in ("first", "random"):
            out[row] = {k: float(right.mean()) for k in ks if k <= n}
        elif selector == "oracle":
            out[row] = {k: pass_at_k(n, int(right.sum()), k) for k in ks if k <= n}
    if selector == "best_of_n":
        scores = np.where(np.isnan(data.scores), -np.inf, data.scores)
        for n, sized in _by_size(data).items():
            chosen = sized[data.judged[sized]]
            wanted = [k for k in ks if k <= n]
            curve = best_of_n_curve(scores[chosen, :n], correct[chosen, :n], wanted) \
                if wanted and len(chosen) else {}
            for position, row in enumerate(chosen.tolist()):
                out[row] = {k: float(curve[k][position]) for k in wanted}
    return out


def _majority_sel_at_k(data: PoolSamples, rows: np.ndarray,
                       ks: Sequence[int]) -> list[dict[int, float] | None]:
    """maj@k of the judged problems: by the gold answer (the groups equivalent to it win),
    or, on a problem with human labels, by the verdicts (``majority_at_k_by_verdicts``)."""
    out: list[dict[int, float] | None] = [None] * len(data.sizes)
    groups, correct = data.groups(), data.correct
    by_gold: dict[int, list[tuple[int, int, list[int], int]]] = defaultdict(list)
    for row in rows.tolist():
        n = int(data.sizes[row])
        if data.labelled[row]:
            out[row] = majority_at_k_by_verdicts(groups[row, :n], correct[row, :n], ks)
            continue
        counts = np.bincount(groups[row, :n][groups[row, :n] >= 0],
                             minlength=len(data.firsts_[row]))
        gold = data.golds[row]
        is_gold = [bool(gold) and is_equivalent(first, gold) for first in data.firsts_[row]]
        c_star = int(counts[is_gold].sum()) if counts.size else 0
        others = sorted((int(c) for c, hit in zip(counts, is_gold, strict=True) if not hit),
                        reverse=True)
        by_gold[n].append((row, c_star, others, int((groups[row, :n] < 0).sum())))
    for n, problems in by_gold.items():
        values = _majority_counts([p[1] for p in problems], [p[2] for p in problems],
                                  [p[3] for p in problems], [k for k in ks if k <= n])
        for position, (row, _, _, _) in enumerate(problems):
            out[row] = {k: float(v[position]) for k, v in values.items()
                        if not np.isnan(v[position])}
    return out


def _majority_counts(c_star: Sequence[int], others: Sequence[Sequence[int]],
                     n_none: Sequence[int], ks: Sequence[int]) -> dict[int, np.ndarray]:
    """maj@k of problems of one size from their counts, NaN where the exact count costs
    more than ``MAJORITY_DP_CELLS``."""
    width = max((len(o) for o in others), default=0)
    padded = np.zeros((len(others), width), dtype=np.int64)
    for position, counts in enumerate(others):
        padded[position, : len(counts)] = counts
    return {k: majority_at_k_counts(c_star, padded, n_none, k, max_cells=MAJORITY_DP_CELLS)
            for k in ks}


def majority_at_k_by_verdicts(groups: np.ndarray, correct: np.ndarray,
                              ks: Sequence[int]) -> dict[int, float] | None:
    """maj@k where the verdicts, not the gold answer, say which answers are right (a
    human label passed a candidate whose answer differs from the reference, or failed
    one that matches it): the chance that each right answer group wins a random k-subset,
    ties split, summed over the right groups. ``groups`` are the problem's answer-group
    ids (-1: none), ``correct`` its verdicts. Exact while each group's candidates agree;
    ``None`` (resample) when they do not, since then the vote's credit depends on which
    member of the winning group comes first in the subset. A k whose exact count costs
    too much is missing from the result (resampled).
    """
    n = len(groups)
    counts = np.bincount(groups[groups >= 0], minlength=int(groups.max(initial=-1)) + 1)
    right = []
    for g in range(len(counts)):
        members = correct[groups == g]
        if members.any() != members.all():
            return None
        if members.all():
            right.append(g)
    n_none = int((groups < 0).sum())
    wanted = [k for k in ks if k <= n]
    if not right:
        return dict.fromkeys(wanted, 0.0)
    # One row per right group, that group in the gold's place.
    values = _majority_counts([int(counts[g]) for g in right],
                              [sorted((int(c) for h, c in enumerate(counts) if h != g),
                                      reverse=True) for g in right],
                              [n_none] * len(right), wanted)
    return {k: float(v.sum()) for k, v in values.items() if not np.isnan(v).any()}


def _subsets(keys: np.ndarray, k: int) -> np.ndarray:
    """The k-subsets (sorted) that ``sel_at_k`` draws from these random keys (one row per
    subset): the positions of each row's k smallest keys, found by partition rather than
    by ``sel_at_k``'s full sort."""
    return np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)


def sel_at_k_pools(strategy: Strategy, data: PoolSamples,
                   pools: Callable[[], list[ProblemPool]], ks: Sequence[int],
                   select: Callable[..., Selection], config: Any,
                   route: BatchSelector | None,
                   arrays: Callable[[], Arrays]) -> list[dict[int, float]]:
    """sel@k of the strategy's selector on each problem, for each k <= its n ({} when the
    problem is not judged).

    Without a formula it is the mean credit over ``SEL_AT_K_RESAMPLES`` random k-subsets
    (the whole pool once when k = n), from the problem's own seeded generator, drawn for
    the k the formula leaves out, in increasing order.
    """
    exact = closed_form_sel_at_k(strategy, data, ks)
    values: list[dict[int, float]] = []
    missing: dict[int, list[int]] = {}
    judged = data.judged
    for row in range(len(data.sizes)):
        values.append(dict(exact[row] or {}) if judged[row] else {})
        n = int(data.sizes[row])
        wanted = [k for k in ks if k <= n and k not in values[row]] if judged[row] else []
        if wanted:
            missing[row] = wanted
    if route is None:
        for row, wanted in missing.items():
            values[row].update(_resampled_sel_at_k(strategy, pools()[row], wanted, select,
                                                   config))
        return values
    # Every problem's generator draws its k in increasing order, as on the per-problem
    # path; the k-subsets of one k and size go through the vectorised selector together.
    rngs = {row: _rng(strategy, int(data.indices[row])) for row in missing}
    for k in sorted({k for wanted in missing.values() for k in wanted}):
        for n, sized in _by_size(data).items():
            rows = [row for row in sized.tolist() if k in missing.get(row, ())]
            resamples = 1 if k == n else SEL_AT_K_RESAMPLES
            step = max(1, BATCH_CELLS // (resamples * n))
            for start in range(0, len(rows), step):
                chunk = rows[start:start + step]
                keys = np.concatenate([rngs[row].random((resamples, n)) for row in chunk])
                credit = _run(route, arrays(), np.repeat(chunk, resamples),
                              _subsets(keys, k)).credit
                for position, row in enumerate(chunk):
                    values[row][k] = float(np.mean(
                        credit[position * resamples:(position + 1) * resamples]))
    return values


def _resampled_sel_at_k(strategy: Strategy, pool: ProblemPool, ks: Sequence[int],
                        select: Callable[..., Selection], config: Any) -> dict[int, float]:
    """sel@k of the per-problem selector on one problem, by ``sel_at_k``'s subsets."""
    n, rng = len(pool.candidates), _rng(strategy, pool.index)
    out = {}
    for k in ks:
        def credit(indices: np.ndarray) -> float:
            chosen, subset = select_in(pool, sorted(int(i) for i in indices), select,
                                       config, rng)
            return selection_credit(chosen, subset) or 0.0

        out[k] = sel_at_k(n, k, credit, rng=rng,
                          n_resamples=1 if k == n else SEL_AT_K_RESAMPLES)
    return out
