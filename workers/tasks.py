"""Celery tasks: thin adapters that claim work, run it, and record through services.

Concurrency contract (written once, here):

* Tasks take ids, never objects, and work in chunks: one generation task covers
  a slice of problems for the sample pools of one model (their samples share the
  engine's batches), or, for a pool whose N is above ``STRATLAB_CHUNK_SAMPLES``, a
  range of one problem's sample indices; it stores each batch's samples as soon as
  it is decoded, so a killed worker loses at most the batch in flight. Messages are
  acknowledged late with prefetch 1; a redelivered task simply runs again.
* Every write is keyed: samples by (pool, problem, index), verdicts by (sample,
  verifier), results by (strategy, problem), completion markers by (pool,
  problem). A second delivery finds the rows there and adds none; generation
  skips problems whose marker says they were generated for this N (a scheme such
  as sequential revision may produce fewer samples than N, so the marker, written
  with the samples, is what says "done", not a count). A pool decoded in windows
  and ranges gets its marker with the write that stores the last of its N, under
  a lock on the pool's row; a range skips the indices already stored.
* The model judge (verifier ``judge``) needs the model, so it runs in the
  generation task on the gpu queue; the verification task leaves its verdicts
  alone.
* Stage transitions are conditional UPDATEs (``claim_experiment``,
  ``claim_metrics_if_verified``, ``finish_experiment``): whichever task wins one
  acts on it, the others see it already done. No task waits on another (no
  ``.get()``, no chords): after each unit of work a task asks the service layer
  whether the next stage can start.
* Every delivery is counted in its chunk's ``ChunkAttempt`` row and beats there while
  it runs (``experiments.deliveries``); it stops between batches and programs once past
  the soft time limit (the solo pool enforces none). ``manage.py reconcile``
  (``experiments.recovery``) sends again the missing work of a chunk no task holds, and
  fails the experiment once one chunk's deliveries died or failed
  ``STRATLAB_MAX_ATTEMPTS`` times. Writes are retried while the database is locked.
* A cancel (``lifecycle.cancel_experiment``) is seen between units of work
  (``services.is_active``), and every write of samples, verdicts and figures happens in
  ``guard.unless_cancelled``, whose transaction locks the experiment's row: nothing is
  stored once a cancel is acknowledged.
* The database is the truth; Celery keeps no result a user sees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from webapp.experiments import (
    code_verification,
    deliveries,
    generation,
    manifest,
    recovery,
    results,
    services,
    verification,
)
from webapp.experiments.chunks import Chunk
from webapp.experiments.deliveries import Delivery
from webapp.experiments.models import Experiment
from workers import code_runs
from workers.runtime.chunk import ChunkRunner, GenerationError, load_models
from workers.runtime.embeddings import embed_texts
from workers.runtime.facts import runtime_facts

logger = logging.getLogger(__name__)


@shared_task(name="workers.tasks.generate_chunk")
def generate_chunk(
    experiment_id: int,
    demands: Sequence[Sequence[int]] | int,
    problem_ids: Sequence[int],
    n: int | None = None,
    samples: Sequence[int] | None = None,
) -> None:
    """Sample each pool's candidates for the problems of the slice that lack them.

    ``demands`` holds ``[pool id, n]`` pairs, pools of one model (``enqueue_experiment``
    groups them), so that their samples decode in shared batches (a message of the
    one-pool form ``(experiment, pool id, problems, n)`` is read as one pair);
    ``samples``, when given, is the range ``[first, last)`` of sample indices to cover.
    Then score and judge where the experiment asks, and hand the slice to verification.
    """
    if isinstance(demands, int):
        demands = [[demands, int(n or 0)]]
    delivery = deliveries.begin(experiment_id, Chunk.generate(demands, problem_ids, samples))
    if delivery is None:
        return
    with delivery:
        recovery.retry_on_lock(services.claim_experiment, experiment_id)
        _generate_chunk(delivery)


def _generate_chunk(delivery: Delivery) -> None:
    experiment_id, chunk = delivery.experiment_id, delivery.chunk
    problem_ids = chunk.problem_ids
    try:
        works = generation.chunk_work(experiment_id, chunk.demands, problem_ids,
                                      chunk.samples)
    except (ValueError, TypeError) as exc:  # a stored recipe or judge config that is invalid
        recovery.retry_on_lock(
            services.fail_experiment, experiment_id,
            f"Generation failed on {generation.problem_names(problem_ids)}: {exc}",
        )
        return
    try:
        for work in works:
            _generate(delivery, work)
    except GenerationError as exc:
        recovery.retry_on_lock(services.fail_experiment, experiment_id, str(exc))
        return
    except SoftTimeLimitExceeded:
        # A prefork pool's own limit: what was decoded is stored, the rest is resumed.
        delivery.time_out()
        return
    if delivery.keep_going() and services.is_active(experiment_id):
        recovery.send_followup(experiment_id, chunk.verification())


def _generate(delivery: Delivery, work: generation.ModelWork) -> None:
    """Generate, store, score and judge one model's part of the chunk; stops between
    batches once the experiment is no longer active or the time limit has passed."""
    if not work.followups:
        return
    experiment_id = delivery.experiment_id
    loaded, draft = load_models(
        work.model_name,
        cache_dir=settings.STRATLAB_MODEL_CACHE,
        extra=settings.STRATLAB_EXTRA_MODELS,
        draft_name=settings.STRATLAB_DRAFT_MODELS.get(work.model_name)
        if settings.STRATLAB_SPECULATIVE_TOKENS else None,
    )
    runner = ChunkRunner(loaded, draft, settings.STRATLAB_MAX_BATCH_ROWS,
                         settings.STRATLAB_SPECULATIVE_TOKENS)
    recovery.retry_on_lock(manifest.record_runtime, experiment_id, runtime_facts(loaded, draft))
    keep_going = delivery.still_active

    for job, candidates in runner.run(work.lacking, keep_going=keep_going):
        recovery.retry_on_lock(generation.store_candidates, job, candidates)
    for job in work.followups:
        if not keep_going():
            return
        if work.self_eval and (pending := generation.unscored(job)):
            scores = runner.self_eval(job, [t for _, t in pending])
            recovery.retry_on_lock(generation.record_scores, job, pending, scores)
        if work.judge and (pending := generation.unjudged(job, work.judge)):
            judged = runner.judge(job, [t for _, t in pending], work.judge.config,
                                  seed=work.judge.seed_for(job.problem_index))
            recovery.retry_on_lock(generation.record_judged, job, work.judge, pending, judged)


@shared_task(name="workers.tasks.verify_chunk")
def verify_chunk(
    experiment_id: int, pool_ids: Sequence[int] | int, problem_ids: Sequence[int],
    samples: Sequence[int] | None = None,
) -> None:
    """Judge the slice's samples of the pools (those of the range ``samples`` of sample
    indices, when given), then start the metrics stage if this was the last. A code
    slice's CodeT/B4 pass matrices are run once, after all its pools."""
    if isinstance(pool_ids, int):
        pool_ids = [pool_ids]
    delivery = deliveries.begin(
        experiment_id,
        Chunk.verify([[pool_id, 0] for pool_id in pool_ids], problem_ids, samples),
    )
    if delivery is None:
        return
    with delivery:
        _verify_chunk(delivery, pool_ids, problem_ids)


def _verify_chunk(delivery: Delivery, pool_ids: Sequence[int],
                  problem_ids: Sequence[int]) -> None:
    experiment_id, samples = delivery.experiment_id, delivery.chunk.samples
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if code_verification.is_code(experiment):
        # Untrusted programs: run in the sandbox on this (cpu) queue, never in-process.
        plan = code_verification.plan_slice(experiment_id, pool_ids, problem_ids, samples)
        try:
            outcomes = code_runs.run_plan(plan, keep_going=delivery.still_active)
        except code_runs.SandboxUnavailable as exc:
            recovery.retry_on_lock(services.fail_experiment, experiment_id,
                                   f"Code cannot be run here: {exc}")
            return
        except code_runs.Stopped:
            # Cancelled, or past the time limit (the delivery then counts as failed):
            # the programs in flight were killed.
            return
        recovery.retry_on_lock(code_verification.record_slice, plan, outcomes)
    else:
        for pool_id in pool_ids:
            if not delivery.still_active():
                return
            recovery.retry_on_lock(verification.record_verdicts, experiment, pool_id,
                                   problem_ids, samples)
    if recovery.retry_on_lock(services.claim_metrics_if_verified, experiment_id):
        recovery.send_followup(experiment_id, Chunk.metrics())


@shared_task(name="workers.tasks.compute_metrics")
def compute_metrics(experiment_id: int) -> None:
    """Run every strategy's selector and metrics, then mark the experiment finished."""
    delivery = deliveries.begin(experiment_id, Chunk.metrics())
    if delivery is None:
        return
    with delivery:
        try:
            recovery.retry_on_lock(results.compute_results, experiment_id, embed=embed_texts)
        except (ValueError, ArithmeticError) as exc:
            recovery.retry_on_lock(services.fail_experiment, experiment_id,
                                   f"Metrics failed: {exc}")
            return
        if not recovery.retry_on_lock(services.finish_experiment, experiment_id):
            return  # cancelled meanwhile: its figures were not stored
    # Labels the team already put on these pools' samples (a reused pool) count at once;
    # after the finish, so that a label task arriving meanwhile finds it finished.
    _compute_labelled(experiment_id)


@shared_task(name="workers.tasks.compute_labelled_metrics")
def compute_labelled_metrics(experiment_id: int) -> None:
    """Recompute the figures with the team's human labels after a label changed
    (``review.services.on_labels_changed``). An experiment still running gets them from
    its metrics task."""
    if Experiment.objects.filter(pk=experiment_id, status=Experiment.Status.FINISHED).exists():
        _compute_labelled(experiment_id)


def _compute_labelled(experiment_id: int) -> None:
    try:
        results.compute_labelled_results(experiment_id)
    except (ValueError, ArithmeticError):
        # The automatic figures stand; the page keeps saying the labelled ones are updating.
        logger.exception("figures with labels failed for experiment %s", experiment_id)
