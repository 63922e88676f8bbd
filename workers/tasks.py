"""Celery tasks: thin adapters that claim work, run it, and record through services.

Concurrency contract (written once, here):

* Tasks take ids, never objects, and work in chunks: one generation task covers
  a slice of problems for the sample pools of one model (their samples share the
  engine's batches), and stores each batch's samples as soon as it is decoded, so
  a killed worker loses at most the batch in flight. Messages are acknowledged
  late with prefetch 1; a redelivered task simply runs again.
* Every write is keyed: samples by (pool, problem, index), verdicts by (sample,
  verifier), results by (strategy, problem), completion markers by (pool,
  problem). A second delivery finds the rows there and adds none; generation
  skips problems whose marker says they were generated for this N (a scheme such
  as sequential revision may produce fewer samples than N, so the marker, written
  with the samples, is what says "done", not a count).
* The model judge (verifier ``judge``) needs the model, so it runs in the
  generation task on the gpu queue; the verification task leaves its verdicts
  alone.
* Stage transitions are conditional UPDATEs (``claim_experiment``,
  ``claim_metrics_if_verified``, ``finish_experiment``): whichever task wins one
  acts on it, the others see it already done. No task waits on another (no
  ``.get()``, no chords): after each unit of work a task asks the service layer
  whether the next stage can start.
* The database is the truth; Celery keeps no result a user sees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from strategies import registry
from strategies.sampling import DecodingConfig
from strategies.verify.code import CODE_COMPLETION_STOPS, TEST_COMPLETION_STOPS
from strategies.verify.math import extract_answer
from webapp.datasets.models import Problem
from webapp.experiments import code_verification, pools, results, services, verification
from webapp.experiments.models import Experiment, Sample, SamplePool
from workers import code_runs
from workers.runtime import schemes
from workers.runtime.embeddings import embed_texts
from workers.runtime.models import LoadedModel, ModelLoadError, get_model
from workers.runtime.speculative import check_draft

logger = logging.getLogger(__name__)


def problem_seed(pool_seed: int, problem_index: int) -> int:
    """A per-problem seed: the same problem gets the same samples in any chunk layout."""
    return (pool_seed * 1_000_003 + problem_index) % (2**63 - 1)


def stop_strings_for(loaded: LoadedModel, scheme: str, problem: Problem) -> tuple[str, ...]:
    """A completion model continuing code stops where the function (or its tests) ends;
    chat models end their turn themselves."""
    if "entry_point" not in problem.metadata or loaded.spec.uses_chat_template:
        return ()
    if scheme == "direct":
        return CODE_COMPLETION_STOPS
    if scheme == schemes.TEST_SCHEME:
        return TEST_COMPLETION_STOPS
    return ()


def _store_candidates(
    pool: SamplePool, problem: Problem, n: int, candidates: Sequence[schemes.PoolCandidate]
) -> None:
    """Store the candidates of indices not stored yet and mark the problem generated
    for ``n``; refinement's self-evaluation scores are kept as verdicts."""
    # The whole batch of n is drawn again so that a pool grown later (8 -> 16)
    # keeps its first samples; indices already stored are not written again.
    have = pools.existing_sample_indices(pool.pk, problem.pk)
    pools.record_samples(
        pool.pk,
        problem.pk,
        {i: c for i, c in enumerate(candidates) if i not in have},
        requested=n,
    )
    given = {i: c.score for i, c in enumerate(candidates) if c.score is not None}
    if pool.scheme_name == "refine" and given:
        ids = dict(Sample.objects.filter(pool=pool, problem=problem).values_list("index", "pk"))
        verification.record_scores([(ids[i], v) for i, v in given.items() if i in ids])


@dataclass(frozen=True)
class _Work:
    """One (pool, problem) of a chunk that lacks samples."""

    pool: SamplePool
    problem: Problem
    n: int

    def inputs(self, loaded: LoadedModel) -> dict[str, Any]:
        """The generation inputs ``schemes.sample_job`` and ``pool_candidates`` share:
        the pool's scheme and decoding, the problem and its seed; one candidate for a
        greedy pool (the N would be identical)."""
        pool, problem = self.pool, self.problem
        decoding = {k: tuple(v) if isinstance(v, list) else v for k, v in pool.decoding.items()}
        return {
            "scheme": pool.scheme_name,
            "scheme_config": pool.prompt_config,
            "decoding": DecodingConfig(**decoding),
            "problem_prompt": problem.prompt,
            "n": 1 if pool.is_greedy else self.n,
            "seed": problem_seed(pool.seed, problem.index),
            "problem_metadata": problem.metadata,
            "stop_strings": stop_strings_for(loaded, pool.scheme_name, problem),
        }


def _problem_names(items: Sequence[_Work]) -> str:
    indices = sorted({w.problem.index for w in items})
    label = "problem" if len(indices) == 1 else "problems"
    return f"{label} {', '.join(str(i) for i in indices)}"


def _batched_groups(
    loaded: LoadedModel, items: Sequence[_Work], max_rows: int
) -> list[list[tuple[_Work, schemes.SampleJob]]]:
    """Sample jobs of single-call pools packed in order into groups of at most
    ``max_rows`` batch rows (a job larger than that is a group of its own, which the
    engine splits)."""
    groups: list[list[tuple[_Work, schemes.SampleJob]]] = []
    rows = 0
    for work in items:
        job = schemes.sample_job(**work.inputs(loaded))
        if not groups or rows + job.rows() > max_rows:
            groups.append([])
            rows = 0
        groups[-1].append((work, job))
        rows += job.rows()
    return groups


def _draft_model(loaded: LoadedModel) -> LoadedModel | None:
    """The draft model ``STRATLAB_DRAFT_MODELS`` names for ``loaded``, checked, or None."""
    name = settings.STRATLAB_DRAFT_MODELS.get(loaded.spec.name)
    if not name or not settings.STRATLAB_SPECULATIVE_TOKENS:
        return None
    draft = get_model(
        name, cache_dir=settings.STRATLAB_MODEL_CACHE, extra=settings.STRATLAB_EXTRA_MODELS
    )
    check_draft(loaded, draft)
    return draft


def _generate(
    experiment_id: int, loaded: LoadedModel, items: Sequence[_Work], draft: LoadedModel | None
) -> bool:
    """Generate and store the samples of every (pool, problem); False when the
    experiment stopped or failed on the way.

    Single-call pools (most strategies) decode together: the jobs of several problems
    and pools, with their own samplers and seeds, share the engine's batches; each
    job's samples are those it gets decoded alone. Multi-call schemes and beam decoders
    run problem by problem.
    """
    max_rows = settings.STRATLAB_MAX_BATCH_ROWS
    speculative = settings.STRATLAB_SPECULATIVE_TOKENS
    together: list[_Work] = []
    alone: list[_Work] = []
    for work in items:
        batched = schemes.decodes_in_one_batch(work.pool.scheme_name, work.pool.decoder)
        (together if batched else alone).append(work)
    try:
        groups = _batched_groups(loaded, together, max_rows)
    except (ValueError, TypeError) as exc:
        services.fail_experiment(
            experiment_id, f"Generation failed on {_problem_names(together)}: {exc}"
        )
        return False
    for group in groups:
        if not services.is_active(experiment_id):
            return False
        try:
            pools = schemes.sample_many(
                loaded,
                [job for _, job in group],
                max_batch_rows=max_rows,
                speculative_tokens=speculative,
                draft=draft,
            )
        except (ValueError, RuntimeError) as exc:
            services.fail_experiment(
                experiment_id,
                f"Generation failed on {_problem_names([w for w, _ in group])}: {exc}",
            )
            return False
        for (work, _), candidates in zip(group, pools, strict=True):
            _store_candidates(work.pool, work.problem, work.n, candidates)
    for work in alone:
        if not services.is_active(experiment_id):
            return False
        try:
            candidates = schemes.pool_candidates(
                loaded,
                **work.inputs(loaded),
                decoder=work.pool.decoder,
                max_batch_rows=max_rows,
                speculative_tokens=speculative,
                draft=draft,
            )
        except (ValueError, RuntimeError) as exc:
            services.fail_experiment(
                experiment_id, f"Generation failed on {_problem_names([work])}: {exc}"
            )
            return False
        _store_candidates(work.pool, work.problem, work.n, candidates)
    return True


def _score_problem(loaded: LoadedModel, pool: SamplePool, problem: Problem, n: int) -> None:
    """Self-evaluation scores for the problem's samples 0..n-1 that lack one."""
    pending = pools.samples_without_verdict(
        pool.pk, problem.pk, n, verification.SELF_EVAL_VERIFIER
    )
    if pending:
        values = schemes.self_eval_scores(loaded, problem.prompt, [t for _, t in pending])
        verification.record_scores(
            [(sample_id, v) for (sample_id, _), v in zip(pending, values, strict=True)]
        )


def _judge_problem(
    loaded: LoadedModel,
    experiment: Experiment,
    pool: SamplePool,
    problem: Problem,
    n: int,
    draft: LoadedModel | None,
) -> None:
    """Judge the problem's samples 0..n-1 that have no verdict yet with the model judge."""
    key = verification.verifier_for(experiment)
    pending = pools.samples_without_verdict(pool.pk, problem.pk, n, key)
    if not pending:
        return
    config = registry.get("judge").config_class(**experiment.verifier_config)
    generator = schemes.EngineGenerator(
        loaded,
        DecodingConfig(temperature=0.0, max_new_tokens=config.max_new_tokens),
        max_batch_rows=settings.STRATLAB_MAX_BATCH_ROWS,
        speculative_tokens=settings.STRATLAB_SPECULATIVE_TOKENS,
        draft=draft,
    )
    texts = [text for _, text in pending]
    reference = problem.answer or None
    judged = registry.get("judge").function(
        generator, [problem.prompt] * len(texts), texts, [reference] * len(texts), config,
        seed=problem_seed(experiment.seed, problem.index),
    )
    verification.record_judged(
        key,
        [(sample_id, extract_answer(text), result)
         for (sample_id, text), result in zip(pending, judged, strict=True)],
    )


@shared_task(name="workers.tasks.generate_chunk")
def generate_chunk(
    experiment_id: int,
    demands: Sequence[Sequence[int]] | int,
    problem_ids: Sequence[int],
    n: int | None = None,
) -> None:
    """Sample each pool's candidates for the problems of the slice that lack them.

    ``demands`` holds ``[pool id, n]`` pairs, pools of one model (``enqueue_experiment``
    groups them), so that their samples decode in shared batches (a message of the
    one-pool form ``(experiment, pool id, problems, n)`` is read as one pair). Then
    score and judge where the experiment asks, and hand the slice to verification.
    """
    if isinstance(demands, int):
        demands = [[demands, int(n or 0)]]
    services.claim_experiment(experiment_id)
    if not services.is_active(experiment_id):
        return
    try:
        done = _generate_chunk(experiment_id, demands, problem_ids)
    except SoftTimeLimitExceeded:
        # What was decoded is stored; say why the rest is missing instead of hanging.
        services.fail_experiment(
            experiment_id,
            f"Generation of problems {list(problem_ids)} ran past the task time limit "
            f"({settings.CELERY_TASK_SOFT_TIME_LIMIT} s, STRATLAB_TASK_TIME_LIMIT); "
            "samples generated so far are kept: raise the limit or lower "
            "STRATLAB_CHUNK_SIZE and run the experiment again",
        )
        return
    if done:
        verify_chunk.delay(experiment_id, [pool_id for pool_id, _ in demands], list(problem_ids))


def _generate_chunk(
    experiment_id: int, demands: Sequence[Sequence[int]], problem_ids: Sequence[int]
) -> bool:
    experiment = Experiment.objects.get(pk=experiment_id)
    pools = SamplePool.objects.in_bulk([pool_id for pool_id, _ in demands])
    judge = (verification.verifier_for(experiment)
             if experiment.verifier in verification.MODEL_VERIFIERS else None)
    by_model: dict[str, list[tuple[SamplePool, int]]] = {}
    for pool_id, n in demands:
        by_model.setdefault(pools[pool_id].model_name, []).append((pools[pool_id], n))
    return all(
        _generate_for_model(experiment, model_name, demanded, problem_ids, judge)
        for model_name, demanded in by_model.items()
    )


def _generate_for_model(
    experiment: Experiment,
    model_name: str,
    demanded: Sequence[tuple[SamplePool, int]],
    problem_ids: Sequence[int],
    judge: str | None,
) -> bool:
    """Generate, score and judge the slice for pools of one model; False when the
    experiment stopped or failed."""
    needs = [
        (pool, n, pools.problems_needing_work(pool.pk, problem_ids, n, verifiers=[
            *([verification.SELF_EVAL_VERIFIER] if experiment.self_eval else []),
            *([judge] if judge else []),
        ]))
        for pool, n in demanded
    ]
    if not any(problems for _, _, problems in needs):
        return True
    try:
        loaded = get_model(
            model_name,
            cache_dir=settings.STRATLAB_MODEL_CACHE,
            extra=settings.STRATLAB_EXTRA_MODELS,
        )
    except ModelLoadError as exc:
        services.fail_experiment(experiment.pk, f"Model {model_name!r} failed to load: {exc}")
        return False
    try:
        draft = _draft_model(loaded)
    except (ModelLoadError, ValueError) as exc:
        services.fail_experiment(
            experiment.pk, f"Draft model for {model_name!r} (STRATLAB_DRAFT_MODELS): {exc}"
        )
        return False
    lacking = [
        _Work(pool, problem, n)
        for pool, n, problems in needs
        for problem in pools.problems_missing_samples(pool.pk, [p.pk for p in problems], n)
    ]
    # Problem by problem, each problem's pools side by side (e.g. top-H and min-p rows).
    lacking.sort(key=lambda w: w.problem.index)
    if not _generate(experiment.pk, loaded, lacking, draft):
        return False
    for pool, n, problems in needs:
        for problem in problems:
            if not services.is_active(experiment.pk):
                return False
            if experiment.self_eval:
                try:
                    _score_problem(loaded, pool, problem, n)
                except (ValueError, RuntimeError) as exc:
                    services.fail_experiment(
                        experiment.pk, f"Self-evaluation failed on problem {problem.index}: {exc}"
                    )
                    return False
            if judge is None:
                continue
            try:
                _judge_problem(loaded, experiment, pool, problem, n, draft)
            except (ValueError, RuntimeError) as exc:
                services.fail_experiment(
                    experiment.pk, f"Judging failed on problem {problem.index}: {exc}"
                )
                return False
    return True


@shared_task(name="workers.tasks.verify_chunk")
def verify_chunk(
    experiment_id: int, pool_ids: Sequence[int] | int, problem_ids: Sequence[int]
) -> None:
    """Judge the slice's samples of the pools, then start the metrics stage if this was
    the last. A code slice's CodeT/B4 pass matrices are run once, after all its pools."""
    if not services.is_active(experiment_id):
        return
    if isinstance(pool_ids, int):
        pool_ids = [pool_ids]
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if code_verification.is_code(experiment):
        # Untrusted programs: run in the sandbox on this (cpu) queue, never in-process.
        plan = code_verification.plan_slice(experiment_id, pool_ids, problem_ids)
        try:
            outcomes = code_runs.run_plan(plan)
        except code_runs.SandboxUnavailable as exc:
            services.fail_experiment(experiment_id, f"Code cannot be run here: {exc}")
            return
        code_verification.record_slice(plan, outcomes)
    else:
        for pool_id in pool_ids:
            verification.record_verdicts(experiment, pool_id, problem_ids)
    if services.claim_metrics_if_verified(experiment_id):
        compute_metrics.delay(experiment_id)


@shared_task(name="workers.tasks.compute_metrics")
def compute_metrics(experiment_id: int) -> None:
    """Run every strategy's selector and metrics, then mark the experiment finished."""
    if not services.is_active(experiment_id):
        return
    try:
        results.compute_results(experiment_id, embed=embed_texts)
    except (ValueError, ArithmeticError) as exc:
        services.fail_experiment(experiment_id, f"Metrics failed: {exc}")
        return
    services.finish_experiment(experiment_id)
