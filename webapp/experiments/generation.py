"""The generation stage as the service layer sees it: what a chunk still needs, and
storing what the model produced for it.

A generation task asks ``chunk_work`` once for its slice, hands each model's work to
the runtime (``workers.runtime.chunk``), and stores every batch's candidates through
``store_candidates`` as soon as they are decoded. The model-run verdicts (the
self-evaluation score, the model judge) are stored here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    """One (pool, problem) of a chunk: what to generate (``recipe``, ``problem``, ``n``,
    ``seed``, ``first``: what the runtime reads) and where it is stored, for which
    experiment.

    ``first`` is the first sample index to decode: a batchable pool grown from 16 to 64
    holds samples 0..15 already, and a sample depends on its seed and index only, so
    only 16..63 are decoded. Other pools decode from 0 (``first`` is 0).
    """

    pool_id: int
    problem_id: int
    problem_index: int
    recipe: PoolRecipe
    problem: ProblemView
    n: int
    seed: int
    experiment_id: int
    first: int = 0


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


def _work(experiment_id: int, pool: SamplePool, problem: Any, n: int, first: int = 0,
          ) -> PoolWork:
    return PoolWork(
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
        first=first if pool.recipe.batchable and not pool.recipe.is_greedy else 0,
    )


def _first_missing(pool_id: int, problem_id: int, n: int) -> int:
    """The lowest sample index below ``n`` not stored for the (pool, problem); ``n - 1``
    when all are (only the completion marker is missing: one sample is decoded again)."""
    have = pools.existing_sample_indices(pool_id, problem_id)
    return next((i for i in range(n) if i not in have), max(0, n - 1))


def chunk_work(
    experiment_id: int, demands: Sequence[Sequence[int]], problem_ids: Sequence[int]
) -> list[ModelWork]:
    """What the slice still needs, per model: ``demands`` holds ``[pool id, n]`` pairs.

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
            needing = pools.problems_needing_work(pool.pk, problem_ids, n, verifiers=verifiers)
            missing = {p.pk for p in pools.problems_missing_samples(
                pool.pk, [p.pk for p in needing], n)}
            lacking += [_work(experiment_id, pool, p, n, _first_missing(pool.pk, p.pk, n))
                        for p in needing if p.pk in missing]
            followups += [_work(experiment_id, pool, p, n) for p in needing]
        lacking.sort(key=lambda w: w.problem_index)
        out.append(ModelWork(model_name, tuple(lacking), tuple(followups),
                             experiment.self_eval, judge))
    return out


def store_candidates(work: PoolWork, candidates: Sequence[Candidate]) -> bool:
    """Store the candidates (of indices ``work.first``, ``work.first + 1``, ...) not
    stored yet and mark the problem generated for ``work.n``; a scheme's self-evaluation
    scores (refinement's) are kept as verdicts. Nothing is stored once the experiment is
    cancelled (``guard``); True when it was."""
    # A pool that is not batchable is drawn whole again (the same seed gives the same
    # samples), so a pool grown later keeps its first samples; indices already stored
    # are not written again.
    indexed = {work.first + i: c for i, c in enumerate(candidates)}
    with unless_cancelled(work.experiment_id) as is_open:
        if not is_open:
            return False
        have = pools.existing_sample_indices(work.pool_id, work.problem_id)
        ids = pools.record_samples(
            work.pool_id, work.problem_id,
            {i: c for i, c in indexed.items() if i not in have},
            requested=work.n,
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
        work.pool_id, work.problem_id, work.n, verification.SELF_EVAL_VERIFIER
    )


def unjudged(work: PoolWork, judge: Judge) -> list[tuple[int, str]]:
    """(sample id, text) of the work's samples without the model judge's verdict."""
    return pools.samples_without_verdict(work.pool_id, work.problem_id, work.n, judge.key)


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
    "record_scores", "store_candidates", "unjudged", "unscored",
]
