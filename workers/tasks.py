"""Celery tasks: thin adapters that claim work, run it, and record through services.

Concurrency contract (written once, here):

* Tasks take ids, never objects, and work in chunks: one generation task covers
  one sample pool and a slice of problems, so a killed worker loses at most that
  chunk. Messages are acknowledged late with prefetch 1; a redelivered task simply
  runs again.
* Every write is keyed: samples by (pool, problem, index), verdicts by (sample,
  verifier), results by (strategy, problem). A second delivery finds the rows
  there and adds none; generation skips problems whose samples are all stored.
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

from strategies.prompting.direct import render_direct
from strategies.sampling import DecodingConfig, build_processor
from strategies.types import Problem as ProblemData
from webapp.datasets.models import Problem
from webapp.experiments import results, services, verification
from webapp.experiments.models import Experiment, SamplePool
from workers.runtime.engine import generate
from workers.runtime.models import LoadedModel, ModelLoadError, get_model

logger = logging.getLogger(__name__)


def problem_seed(pool_seed: int, problem_index: int) -> int:
    """A per-problem seed: the same problem gets the same samples in any chunk layout."""
    return (pool_seed * 1_000_003 + problem_index) % (2**63 - 1)


def _sample_problem(loaded: LoadedModel, pool: SamplePool, problem: Problem, n: int) -> None:
    """Generate the missing samples 0..n-1 of one problem and store them."""
    decoding = DecodingConfig(**pool.decoding)
    have = services.existing_sample_indices(pool.pk, problem.pk)
    if all(i in have for i in range(n)):
        return
    prompt = loaded.render_prompt(
        render_direct(ProblemData(prompt=problem.prompt, answer=None, metadata={}))
    )
    # Samples are generated as one batch of n so a pool grown later (8 -> 16)
    # keeps its first samples; indices already stored are not written again.
    generated = generate(
        loaded,
        prompt,
        n=1 if decoding.is_greedy else n,
        processor=None if decoding.is_greedy else build_processor(decoding),
        greedy=decoding.is_greedy,
        max_new_tokens=decoding.max_new_tokens,
        seed=problem_seed(pool.seed, problem.index),
    )
    records = [
        services.SampleRecord(
            index=i,
            text=s.text,
            prompt_tokens=s.prompt_tokens,
            generated_tokens=s.generated_tokens,
            logprob_sum=s.logprob_sum,
            finish_reason=s.finish_reason,
            seconds=s.seconds,
        )
        for i, s in enumerate(generated)
        if i not in have
    ]
    services.record_samples(pool.pk, problem.pk, records)


@shared_task(name="workers.tasks.generate_chunk")
def generate_chunk(experiment_id: int, pool_id: int, problem_ids: Sequence[int], n: int) -> None:
    """Sample ``n`` candidates for each problem of the slice that lacks them."""
    services.claim_experiment(experiment_id)
    if not services.is_active(experiment_id):
        return
    pool = SamplePool.objects.get(pk=pool_id)
    missing = services.problems_missing_samples(pool_id, problem_ids, n)
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
                _sample_problem(loaded, pool, problem, n)
            except (ValueError, RuntimeError) as exc:
                services.fail_experiment(
                    experiment_id, f"Generation failed on problem {problem.index}: {exc}"
                )
                return
    verify_chunk.delay(experiment_id, pool_id, list(problem_ids))


@shared_task(name="workers.tasks.verify_chunk")
def verify_chunk(experiment_id: int, pool_id: int, problem_ids: Sequence[int]) -> None:
    """Judge the slice's samples, then start the metrics stage if this was the last."""
    if not services.is_active(experiment_id):
        return
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    verification.record_verdicts(experiment.dataset, pool_id, problem_ids)
    if services.claim_metrics_if_verified(experiment_id):
        compute_metrics.delay(experiment_id)


@shared_task(name="workers.tasks.compute_metrics")
def compute_metrics(experiment_id: int) -> None:
    """Run every strategy's selector and metrics, then mark the experiment finished."""
    if not services.is_active(experiment_id):
        return
    try:
        results.compute_results(experiment_id)
    except (ValueError, ArithmeticError) as exc:
        services.fail_experiment(experiment_id, f"Metrics failed: {exc}")
        return
    services.finish_experiment(experiment_id)
