"""The generation stage as the service layer sees it: what a chunk still needs, and
storing what the model produced for it.

A generation task asks ``chunk_work`` once for its slice, hands each model's work to
the runtime (``workers.runtime.chunk``), and stores every batch's candidates through
``store_candidates`` as soon as they are decoded. The model-run verdicts (the
self-evaluation score, the model judge) are stored here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from strategies import registry
from strategies.recipe import PoolRecipe
from strategies.types import Candidate
from strategies.types import Problem as ProblemView
from strategies.verify.math import extract_answer
from strategies.verify.result import VerifierResult
from webapp.datasets.models import Problem
from webapp.experiments import pools, verification
from webapp.experiments.guard import unless_cancelled
from webapp.experiments.models import Experiment, SamplePool


def problem_seed(pool_seed: int, problem_index: int) -> int:
    """A per-problem seed: the same problem gets the same samples in any chunk layout."""
    return (pool_seed * 1_000_003 + problem_index) % (2**63 - 1)


def problem_names(problem_ids: Sequence[int]) -> str:
    """The problems of a slice as a message names them: "problems 0, 1, 2"."""
    indices = sorted(Problem.objects.filter(pk__in=problem_ids).values_list("index", flat=True))
    label = "problem" if len(indices) == 1 else "problems"
    return f"{label} {', '.join(str(i) for i in indices)}"


@dataclass(frozen=True)
class PoolWork:
    """One (pool, problem) of a chunk, or a window of its sample indices: what to generate
    (``recipe``, ``problem``, ``n``, ``seed``, ``first``, ``last``: what the runtime reads)
    and where it is stored, for which experiment. ``n`` is the pool's N for the
    experiment.

    ``[first, last)`` are the sample indices to decode. A sample of a batchable pool
    depends on its seed and index only, so its indices are decoded a window at a time:
    a pool grown from 16 to 64 holds samples 0..15 already and decodes 16..63 only, and
    a pool of 2,000 decodes ``STRATLAB_MAX_BATCH_ROWS`` indices per window, each stored
    as soon as it is decoded. Other pools decode ``[0, n)`` in one run. A follow-up
    (scores, the model judge) reads the stored samples of ``[first, last)``.
    """

    pool_id: int
    problem_id: int
    problem_index: int
    recipe: PoolRecipe
    problem: ProblemView
    n: int
    seed: int
    experiment_id: int
    first: int
    last: int

    @property
    def is_windowed(self) -> bool:
        """Whether its samples are exactly the indices 0..n-1, decoded a window at a time
        (a batchable sampled pool); a greedy pool's one sample stands for its N."""
        return self.recipe.batchable and not self.recipe.is_greedy


@dataclass(frozen=True)
class Judge:
    """The model judge an experiment asks for: its verifier key, config and seed."""

    key: str
    config: Any
    seed: int

    def seed_for(self, problem_index: int) -> int:
        return problem_seed(self.seed, problem_index)


@dataclass(frozen=True)
class ModelWork:
    """A chunk's work for the pools of one model: the (pool, problem)s lacking samples,
    and those whose samples need the model's scores or verdicts afterwards."""

    model_name: str
    lacking: tuple[PoolWork, ...]
    followups: tuple[PoolWork, ...]
    self_eval: bool
    judge: Judge | None


def _work(experiment_id: int, pool: SamplePool, problem: Any, n: int,
          window: tuple[int, int] | None = None) -> PoolWork:
    """The (pool, problem)'s work over ``window`` (its sample indices ``[first, last)``;
    all of ``[0, n)`` when None, and always for a pool that is not windowed)."""
    work = PoolWork(
        pool_id=pool.pk,
        problem_id=problem.pk,
        problem_index=problem.index,
        recipe=pool.recipe,
        problem=ProblemView(prompt=problem.prompt, answer=problem.answer or None,
                            metadata=problem.metadata),
        # One candidate stands for a greedy pool's N (they would be identical).
        n=n,
        seed=problem_seed(pool.seed, problem.index),
        experiment_id=experiment_id,
        first=0,
        last=n,
    )
    if window is None or not work.is_windowed:
        return work
    return dataclasses.replace(work, first=window[0], last=window[1])


def windows(missing: Sequence[int], last: int, size: int) -> list[tuple[int, int]]:
    """Windows ``[first, last)`` of at most ``size`` indices, each from a missing index,
    that cover the ``missing`` indices (sorted, below ``last``).

    >>> windows([0, 1, 2, 3, 4], 5, 2)
    [(0, 2), (2, 4), (4, 5)]
    >>> windows([3, 40, 41], 64, 16)
    [(3, 19), (40, 56)]
    """
    out: list[tuple[int, int]] = []
    for index in missing:
        if out and index < out[-1][1]:
            continue
        out.append((index, min(index + size, last)))
    return out


def _missing(pool_id: int, problem_id: int, first: int, last: int) -> list[int]:
    """The sample indices of ``[first, last)`` not stored for the (pool, problem)."""
    have = pools.existing_sample_indices(pool_id, problem_id, first=first, last=last)
    return [i for i in range(first, last) if i not in have]


def _lacking(experiment_id: int, pool: SamplePool, problem: Any, n: int,
             samples: tuple[int, int] | None) -> list[PoolWork]:
    """The windows a (pool, problem) lacks (of its range ``samples``, if given): a
    windowed pool's missing indices, ``STRATLAB_MAX_BATCH_ROWS`` at most per window; a
    whole problem otherwise. A whole problem with every sample but no completion marker
    (or, ranged, its last range) decodes its last sample again, which writes the marker."""
    whole = _work(experiment_id, pool, problem, n)
    if not whole.is_windowed:
        return [whole]
    first, last = samples if samples is not None else (0, n)
    missing = _missing(pool.pk, problem.pk, first, last)
    # Asked for, yet nothing missing: every sample stored but no marker for this N (for
    # a range, ``_range_needs`` asks only of the last one, once all ranges are stored).
    if not missing:
        missing = [n - 1]
    return [_work(experiment_id, pool, problem, n, window)
            for window in windows(missing, last, settings.STRATLAB_MAX_BATCH_ROWS)]


def chunk_work(
    experiment_id: int, demands: Sequence[Sequence[int]], problem_ids: Sequence[int],
    samples: Sequence[int] | None = None,
) -> list[ModelWork]:
    """What the slice still needs, per model: ``demands`` holds ``[pool id, n]`` pairs;
    ``samples``, when given, limits it to the sample indices ``[first, last)`` (a chunk of
    a pool generated in ranges).

    Problem by problem, each problem's pools side by side (e.g. top-H and min-p rows),
    so that a batch holds whole problems.
    """
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    judge = None
    if experiment.verifier in verification.MODEL_VERIFIERS:
        config = registry.get(experiment.verifier).config_class(**experiment.verifier_config)
        judge = Judge(verification.verifier_for(experiment), config, experiment.seed)
    verifiers = [
        *([verification.SELF_EVAL_VERIFIER] if experiment.self_eval else []),
        *([judge.key] if judge else []),
    ]
    by_id = SamplePool.objects.in_bulk([pool_id for pool_id, _ in demands])
    by_model: dict[str, list[tuple[SamplePool, int]]] = {}
    for pool_id, n in demands:
        by_model.setdefault(by_id[pool_id].model_name, []).append((by_id[pool_id], n))
    out = []
    for model_name, demanded in by_model.items():
        lacking: list[PoolWork] = []
        followups: list[PoolWork] = []
        for pool, n in demanded:
            if samples is None:
                needing = pools.problems_needing_work(pool.pk, problem_ids, n,
                                                      verifiers=verifiers)
                missing = {p.pk for p in pools.problems_missing_samples(
                    pool.pk, [p.pk for p in needing], n)}
                window = None
            else:
                window = (int(samples[0]), min(int(samples[1]), n))
                needing, missing = _range_needs(pool.pk, problem_ids, window, verifiers, n)
            for problem in needing:
                if problem.pk in missing:
                    lacking += _lacking(experiment_id, pool, problem, n, window)
                followups.append(_work(experiment_id, pool, problem, n, window))
        lacking.sort(key=lambda w: w.problem_index)
        out.append(ModelWork(model_name, tuple(lacking), tuple(followups),
                             experiment.self_eval, judge))
    return out


def _range_needs(pool_id: int, problem_ids: Sequence[int], window: tuple[int, int],
                 verifiers: Sequence[str], n: int) -> tuple[list[Problem], set[int]]:
    """The problems whose samples ``[first, last)`` lack one or a model-run verdict, and
    those of them lacking samples (or, in the last range, only the completion marker of
    N samples all stored)."""
    first, last = window
    missing = {pid for pid in problem_ids if _missing(pool_id, pid, first, last)}
    if last >= n:
        missing |= {pid for pid in problem_ids if pid not in missing
                    and not pools.is_pool_problem_done(pool_id, pid, n)
                    and not _missing(pool_id, pid, 0, first)}
    unscored: set[int] = set()
    for verifier in verifiers:
        unscored |= pools.problems_lacking_verdicts(pool_id, problem_ids, last, verifier,
                                                    first=first)
    needing = list(Problem.objects.filter(pk__in=missing | unscored).order_by("index"))
    return needing, missing


def store_candidates(work: PoolWork, candidates: Sequence[Candidate]) -> bool:
    """Store the candidates (of indices ``work.first``, ``work.first + 1``, ...) not
    stored yet and mark the problem generated for ``work.n`` (a windowed pool's once all
    its N are stored); a scheme's self-evaluation scores (refinement's) are kept as
    verdicts. Nothing is stored once the experiment is cancelled (``guard``); True when
    it was."""
    # A pool that is not batchable is drawn whole again (the same seed gives the same
    # samples), so a pool grown later keeps its first samples; indices already stored
    # are not written again.
    indexed = {work.first + i: c for i, c in enumerate(candidates)}
    with unless_cancelled(work.experiment_id) as is_open:
        if not is_open:
            return False
        have = pools.existing_sample_indices(work.pool_id, work.problem_id, first=work.first,
                                             last=work.first + len(indexed))
        ids = pools.record_samples(
            work.pool_id, work.problem_id,
            {i: c for i, c in indexed.items() if i not in have},
            requested=work.n, every_index=work.is_windowed,
        )
        if work.recipe.scheme_object.self_eval_scores:
            verification.record_scores([
                (ids[i], c.score) for i, c in indexed.items()
                if c.score is not None and i in ids
            ])
    return True


def unscored(work: PoolWork) -> list[tuple[int, str]]:
    """(sample id, text) of the work's samples without a self-evaluation score."""
    return pools.samples_without_verdict(
        work.pool_id, work.problem_id, work.last, verification.SELF_EVAL_VERIFIER,
        first=work.first,
    )


def unjudged(work: PoolWork, judge: Judge) -> list[tuple[int, str]]:
    """(sample id, text) of the work's samples without the model judge's verdict."""
    return pools.samples_without_verdict(work.pool_id, work.problem_id, work.last, judge.key,
                                         first=work.first)


def record_scores(work: PoolWork, pending: Sequence[tuple[int, str]],
                  scores: Sequence[float]) -> None:
    """Store the self-evaluation scores of the work's samples (not once cancelled)."""
    with unless_cancelled(work.experiment_id) as is_open:
        if is_open:
            verification.record_scores(
                [(sample_id, v) for (sample_id, _), v in zip(pending, scores, strict=True)]
            )


def record_judged(work: PoolWork, judge: Judge, pending: Sequence[tuple[int, str]],
                  results: Sequence[VerifierResult]) -> None:
    """Store the model judge's verdicts on the work's samples (not once cancelled)."""
    with unless_cancelled(work.experiment_id) as is_open:
        if is_open:
            verification.record_judged(judge.key, [
                (sample_id, extract_answer(text), result)
                for (sample_id, text), result in zip(pending, results, strict=True)
            ])


__all__ = [
    "Judge", "ModelWork", "PoolWork", "chunk_work", "problem_names", "problem_seed",
    "record_judged",
    "record_scores", "store_candidates", "unjudged", "unscored", "windows",
]
