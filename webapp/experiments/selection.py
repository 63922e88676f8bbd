"""Running a strategy's selector over its problems: the choice per problem and sel@k.

Where ``strategies.select.batch`` implements the selector with the strategy's config
(``batch_route``), every problem, and every random k-subset that sel@k averages over, goes
through the vectorised form at once; otherwise (CodeT, B4, random, MBR on text similarity,
...) the registered per-problem selector runs one problem or subset at a time
(``select_in``). Both give the same selections, ties and credit (tests/strategies/select/
test_batch.py, tests/webapp/experiments/test_results_batch.py), and sel@k draws the same
random subsets from the same generators either way.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strategies.metrics.majk import answer_counts, majority_at_k
from strategies.metrics.passk import pass_at_k
from strategies.metrics.selk import best_of_n_curve, sel_at_k
from strategies.select import batch
from strategies.select.base import Selection, answer_groups, selection_credit
from strategies.types import Candidate
from webapp.experiments.models import Strategy

# Random k-subsets per problem and k for selectors without a closed-form sel@k.
SEL_AT_K_RESAMPLES = 24
# Bound on rows x k^2 per vectorised call: adaptive consistency's working memory grows
# with k^2 per row (its vote counts after every draw), the others' with k.
BATCH_CELLS = 1 << 22


@dataclass
class ProblemPool:
    """One problem's candidates for a strategy. A code problem (``code``) is judged by
    its unit tests rather than a gold answer; CodeT and B4 get the pass matrix of the
    candidates that executed (``matrix``) and those candidates' indices (``executed``).
    ``labelled``: a human label set a candidate's verdict or answer, so verdicts, not the
    gold answer, say which answers are right."""

    problem_id: int
    index: int
    gold: str
    candidates: list[Candidate]
    code: bool = False
    matrix: np.ndarray | None = None
    executed: list[int] = field(default_factory=list)
    labelled: bool = False

    @property
    def judged(self) -> bool:
        return (bool(self.gold) or self.code) and all(
            c.is_correct is not None for c in self.candidates
        )

    @property
    def correct(self) -> np.ndarray:
        return np.array([bool(c.is_correct) for c in self.candidates])


@dataclass(frozen=True)
class Arrays:
    """Candidates as ``[rows, width]`` arrays, the input of ``strategies.select.batch``:
    answer-group ids (-1: none), verdicts, mean logprobs, scores (NaN: none), text ids."""

    answers: np.ndarray
    correct: np.ndarray
    mean_logprobs: np.ndarray
    scores: np.ndarray
    texts: np.ndarray

    def take(self, rows: np.ndarray, columns: np.ndarray) -> Arrays:
        """Entry ``[r, c]`` of the result is entry ``[rows[r], columns[r, c]]`` of these."""
        return Arrays(*(a[rows[:, None], columns] for a in (
            self.answers, self.correct, self.mean_logprobs, self.scores, self.texts)))


def pool_arrays(pools: Sequence[ProblemPool], groups: Sequence[np.ndarray]) -> Arrays:
    """Every problem's candidates, padded to the largest pool, with their answer groups
    (``answer_groups``)."""
    width = max((len(p.candidates) for p in pools), default=0)
    shape = (len(pools), width)
    answers, texts = np.full(shape, -1, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    correct = np.zeros(shape, dtype=bool)
    logprobs, scores = np.zeros(shape), np.full(shape, np.nan)
    for row, pool in enumerate(pools):
        n = len(pool.candidates)
        answers[row, :n] = groups[row]
        correct[row, :n] = pool.correct
        logprobs[row, :n] = [c.mean_logprob for c in pool.candidates]
        scores[row, :n] = [np.nan if c.score is None else c.score for c in pool.candidates]
        ids: dict[str, int] = {}
        texts[row, :n] = [ids.setdefault(c.text, len(ids)) for c in pool.candidates]
    return Arrays(answers, correct, logprobs, scores, texts)


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


def _rng(strategy: Strategy, pool: ProblemPool) -> np.random.Generator:
    return np.random.default_rng([strategy.experiment.seed, pool.index, strategy.position])


def _run(route: BatchSelector, arrays: Arrays, rows: np.ndarray,
         columns: np.ndarray) -> batch.BatchSelection:
    """``route`` on the candidates ``columns[r]`` of problem ``rows[r]``, in slices of rows
    that keep memory bounded."""
    step = max(1, BATCH_CELLS // columns.shape[1] ** 2)
    parts = [route(arrays.take(rows[i:i + step], columns[i:i + step]))
             for i in range(0, len(rows), step)]
    return batch.BatchSelection(*(np.concatenate([getattr(part, name) for part in parts])
                                  for name in ("index", "credit", "tied")))


def select_pools(strategy: Strategy, pools: Sequence[ProblemPool],
                 select: Callable[..., Selection], config: Any,
                 route: BatchSelector | None, arrays: Callable[[], Arrays]) -> list[Selection]:
    """The selector's choice on each problem's whole pool."""
    if route is None:
        return [select_in(p, range(len(p.candidates)), select, config, _rng(strategy, p))[0]
                for p in pools]
    if strategy.selector == "oracle" and any(
            c.is_correct is None for p in pools for c in p.candidates):
        raise ValueError("the oracle needs is_correct set on every candidate")  # as select_oracle
    by_size: dict[int, list[int]] = defaultdict(list)
    for row, pool in enumerate(pools):
        by_size[len(pool.candidates)].append(row)
    selections: list[Selection] = [Selection(index=None, answer=None, tied=())] * len(pools)
    for n, rows in by_size.items():
        chosen = _run(route, arrays(), np.array(rows), np.tile(np.arange(n), (len(rows), 1)))
        for position, row in enumerate(rows):
            index = int(chosen.index[position])
            if index >= 0:
                selections[row] = Selection(
                    index=index, answer=pools[row].candidates[index].answer,
                    tied=tuple(int(i) for i in np.flatnonzero(chosen.tied[position])))
    return selections


def closed_form_sel_at_k(strategy: Strategy, pool: ProblemPool,
                         ks: Sequence[int]) -> dict[int, float] | None:
    """sel@k by formula, for the selectors that have one (``None`` for the others)."""
    n, correct = len(pool.candidates), pool.correct
    ks = [k for k in ks if k <= n]
    if strategy.selector in ("first", "random"):
        return {k: float(correct.mean()) for k in ks}
    if strategy.selector == "oracle":
        return {k: pass_at_k(n, int(correct.sum()), k) for k in ks}
    if strategy.selector == "majority" and not pool.code and pool.labelled:
        return majority_at_k_by_verdicts(pool, ks)
    if strategy.selector == "majority" and not pool.code:
        counts = answer_counts([c.answer for c in pool.candidates], pool.gold)
        return {k: majority_at_k(counts.c_star, counts.others, counts.n_none, n, k) for k in ks}
    if strategy.selector == "best_of_n":
        scores = [c.score if c.score is not None else -math.inf for c in pool.candidates]
        if not ks:
            return {}
        curve = best_of_n_curve(np.array([scores]), correct[None, :], ks)
        return {k: float(curve[k][0]) for k in ks}
    return None


def majority_at_k_by_verdicts(pool: ProblemPool, ks: Sequence[int]) -> dict[int, float] | None:
    """maj@k where the verdicts, not the gold answer, say which answers are right (a
    human label passed a candidate whose answer differs from the reference, or failed
    one that matches it): the chance that each right answer group wins a random k-subset,
    ties split, summed over the right groups. Exact while each group's candidates agree;
    ``None`` (resample) when they do not, since then the vote's credit depends on which
    member of the winning group comes first in the subset.
    """
    n = len(pool.candidates)
    groups = answer_groups(pool.candidates)[0]
    counts = np.bincount(groups[groups >= 0], minlength=int(groups.max(initial=-1)) + 1)
    correct = pool.correct
    right = []
    for g in range(len(counts)):
        members = correct[groups == g]
        if members.any() != members.all():
            return None
        if members.all():
            right.append(g)
    n_none = int((groups < 0).sum())
    out = {}
    for k in (k for k in ks if k <= n):
        out[k] = float(sum(
            majority_at_k(int(counts[g]), [int(c) for h, c in enumerate(counts) if h != g],
                          n_none, n, k)
            for g in right
        ))
    return out


def _subsets(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """The k-subsets (sorted) that ``sel_at_k`` draws with this generator."""
    resamples = 1 if k == n else SEL_AT_K_RESAMPLES
    return np.sort(np.argsort(rng.random((resamples, n)), axis=1)[:, :k], axis=1)


def sel_at_k_pools(strategy: Strategy, pools: Sequence[ProblemPool], ks: Sequence[int],
                   select: Callable[..., Selection], config: Any,
                   route: BatchSelector | None,
                   arrays: Callable[[], Arrays]) -> list[dict[int, float]]:
    """sel@k of the strategy's selector on each problem, for each k <= its n ({} when the
    problem is not judged).

    Without a formula it is the mean credit over ``SEL_AT_K_RESAMPLES`` random k-subsets
    (the whole pool once when k = n), from the problem's own seeded generator.
    """
    values: list[dict[int, float]] = []
    draws: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
    for row, pool in enumerate(pools):
        exact = closed_form_sel_at_k(strategy, pool, ks) if pool.judged else {}
        values.append(exact if exact is not None else {})
        if exact is not None:
            continue
        n, rng = len(pool.candidates), _rng(strategy, pool)
        if route is not None:
            for k in (k for k in ks if k <= n):
                draws[k].append((row, _subsets(rng, n, k)))
            continue
        for k in (k for k in ks if k <= n):
            def credit(indices: np.ndarray, pool: ProblemPool = pool,
                       rng: np.random.Generator = rng) -> float:
                chosen, subset = select_in(pool, sorted(int(i) for i in indices), select,
                                           config, rng)
                return selection_credit(chosen, subset) or 0.0

            values[row][k] = sel_at_k(n, k, credit, rng=rng, n_resamples=1 if k == n else
                                      SEL_AT_K_RESAMPLES)
    if route is not None:
        for k, subsets in draws.items():
            rows = np.concatenate([np.full(len(s), row) for row, s in subsets])
            credit = _run(route, arrays(), rows, np.concatenate([s for _, s in subsets])).credit
            start = 0
            for row, s in subsets:
                values[row][k] = float(np.mean(credit[start:start + len(s)]))
                start += len(s)
    return values
