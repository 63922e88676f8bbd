"""Celery tasks: thin adapters that claim work, run it, and record through services.

Concurrency contract (written once, here):

* Tasks take ids, never objects, and work in chunks: one generation task covers
  one sample pool and a slice of problems, so a killed worker loses at most that
  chunk. Messages are acknowledged late with prefetch 1; a redelivered task simply
  runs again.
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

from celery import shared_task
from django.conf import settings

from strategies import registry
from strategies.sampling import DecodingConfig
from strategies.verify.code import CODE_COMPLETION_STOPS, TEST_COMPLETION_STOPS
from strategies.verify.math import extract_answer
from webapp.datasets.models import Problem
from webapp.experiments import code_verification, results, services, verification
from webapp.experiments.models import Experiment, Sample, SamplePool
from workers import code_runs
from workers.runtime import schemes
from workers.runtime.embeddings import embed_texts
from workers.runtime.models import LoadedModel, ModelLoadError, get_model

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


def _sample_problem(
    loaded: LoadedModel, pool: SamplePool, problem: Problem, n: int, *, score: bool
) -> None:
    """Generate the missing samples 0..n-1 of one problem and store them, with
    self-evaluation scores when the experiment asks for them."""
    decoding = DecodingConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in pool.decoding.items()}
    )
    scheme = pool.scheme_name
    if not services.is_pool_problem_done(pool.pk, problem.pk, n):
        have = services.existing_sample_indices(pool.pk, problem.pk)
        # The whole batch of n is drawn again so that a pool grown later (8 -> 16)
        # keeps its first samples; indices already stored are not written again.
        candidates = schemes.pool_candidates(
            loaded,
            scheme=scheme,
            scheme_config=pool.prompt_config,
            decoding=decoding,
            problem_prompt=problem.prompt,
            n=1 if decoding.is_greedy and not pool.decoder else n,
            seed=problem_seed(pool.seed, problem.index),
            decoder=pool.decoder,
            problem_metadata=problem.metadata,
            stop_strings=stop_strings_for(loaded, scheme, problem),
        )
        services.record_samples(
            pool.pk,
            problem.pk,
            [
                services.SampleRecord(
                    index=i,
                    text=c.text,
                    prompt_tokens=c.prompt_tokens,
                    generated_tokens=c.generated_tokens,
                    logprob_sum=c.logprob_sum,
                    finish_reason=c.finish_reason,
                    seconds=c.seconds,
                )
                for i, c in enumerate(candidates)
                if i not in have
            ],
            requested=n,
        )
        # Refinement scores its candidates by self-evaluation as it goes: keep them.
        given = {i: c.score for i, c in enumerate(candidates) if c.score is not None}
        if scheme == "refine" and given:
            ids = dict(Sample.objects.filter(pool=pool, problem=problem)
                       .values_list("index", "pk"))
            verification.record_scores([(ids[i], v) for i, v in given.items() if i in ids])
    if score:
        pending = services.samples_without_scores(pool.pk, problem.pk, n)
        if pending:
            values = schemes.self_eval_scores(loaded, problem.prompt, [t for _, t in pending])
            verification.record_scores(
                [(sample_id, v) for (sample_id, _), v in zip(pending, values, strict=True)]
            )


def _judge_problem(
    loaded: LoadedModel, experiment: Experiment, pool: SamplePool, problem: Problem, n: int
) -> None:
    """Judge the problem's samples 0..n-1 that have no verdict yet with the model judge."""
    key = verification.verifier_for(experiment)
    pending = services.samples_without_verdict(pool.pk, problem.pk, n, key)
    if not pending:
        return
    config = registry.get("judge").config_class(**experiment.verifier_config)
    generator = schemes.EngineGenerator(
        loaded, DecodingConfig(temperature=0.0, max_new_tokens=config.max_new_tokens)
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
def generate_chunk(experiment_id: int, pool_id: int, problem_ids: Sequence[int], n: int) -> None:
    """Sample ``n`` candidates for each problem of the slice that lacks them."""
    services.claim_experiment(experiment_id)
    if not services.is_active(experiment_id):
        return
    pool = SamplePool.objects.get(pk=pool_id)
    experiment = Experiment.objects.get(pk=experiment_id)
    judge = (verification.verifier_for(experiment)
             if experiment.verifier in verification.MODEL_VERIFIERS else None)
    missing = services.problems_needing_work(
        pool_id, problem_ids, n, scores=experiment.self_eval, judge=judge
    )
    if missing:
        try:
            loaded = get_model(
                pool.model_name,
                cache_dir=settings.STRATLAB_MODEL_CACHE,
                extra=settings.STRATLAB_EXTRA_MODELS,
            )
        except ModelLoadError as exc:
            reason = f"Model {pool.model_name!r} failed to load: {exc}"
            services.fail_experiment(experiment_id, reason)
            return
        for problem in missing:
            if not services.is_active(experiment_id):
                return
            try:
                _sample_problem(loaded, pool, problem, n, score=experiment.self_eval)
            except (ValueError, RuntimeError) as exc:
                services.fail_experiment(
                    experiment_id, f"Generation failed on problem {problem.index}: {exc}"
                )
                return
            if judge is None:
                continue
            try:
                _judge_problem(loaded, experiment, pool, problem, n)
            except (ValueError, RuntimeError) as exc:
                services.fail_experiment(
                    experiment_id, f"Judging failed on problem {problem.index}: {exc}"
                )
                return
    verify_chunk.delay(experiment_id, pool_id, list(problem_ids))


@shared_task(name="workers.tasks.verify_chunk")
def verify_chunk(experiment_id: int, pool_id: int, problem_ids: Sequence[int]) -> None:
    """Judge the slice's samples, then start the metrics stage if this was the last."""
    if not services.is_active(experiment_id):
        return
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if code_verification.is_code(experiment):
        # Untrusted programs: run in the sandbox on this (cpu) queue, never in-process.
        try:
            code_runs.verify_code_chunk(experiment, SamplePool.objects.get(pk=pool_id),
                                        problem_ids)
        except code_runs.SandboxUnavailable as exc:
            services.fail_experiment(experiment_id, f"Code cannot be run here: {exc}")
            return
    else:
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
