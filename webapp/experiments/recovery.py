"""Recovery: the database, not the broker, says what work is missing and who holds it.

Celery only delivers messages. Each message's work is a chunk (``chunks``) with a
``ChunkAttempt`` row; a delivery (``deliveries``) counts itself there, beats while it
runs and records how it ended. The reconciler (``reconcile``, run every
``STRATLAB_RECONCILE_SECONDS`` by ``manage.py reconcile``) walks every queued or running
experiment, rebuilds its chunks as ``services.generation_chunks`` sends them, asks the
stored rows (pool markers and samples, verdicts, pass matrices, the metrics claim) which
ones still need work, and sends again each such chunk that no task holds: no delivery
beat within ``STRATLAB_STALE_SECONDS``, and no message sent since the last delivery
began may still be waiting in its queue. The tasks are idempotent (keyed writes), so a
chunk sent twice costs time, never a duplicate row.

Bounds: a chunk whose ``STRATLAB_MAX_ATTEMPTS`` deliveries died or failed fails its
experiment with a reason naming its problems and the last error; nothing else of the
experiment is retried (every task checks ``services.is_active``).

Storage: a delivery that cannot write ("database or disk is full", "no space left on
device") leaves the experiment *running*, with the reason in its ``error`` as a note,
and its attempt uncounted: failed is terminal everywhere else (the pages stop polling,
cancel and amend refuse it), while a full disk is the operator's to fix. The
reconciler's own writes fail while the disk is full, so it sends nothing until writes
succeed again; then the chunk is sent again and the first delivery that completes
clears the note.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from webapp import queue
from webapp.errors import is_database_busy
from webapp.experiments import chunks, services
from webapp.experiments.chunks import Chunk
from webapp.experiments.code_verification import is_code, problems_missing_matrices
from webapp.experiments.generation import problem_names
from webapp.experiments.models import ChunkAttempt, Experiment
from webapp.experiments.pools import (
    done_where,
    lacking_verdicts_where,
    pool_demands,
    range_counts,
)
from webapp.experiments.verification import MODEL_VERIFIERS, SELF_EVAL_VERIFIER, verifier_for

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

STORAGE_MESSAGES = ("database or disk is full", "disk full", "no space left", "disk quota")
STORAGE_NOTE = "Paused: the database could not be written"
STORAGE_ERROR = "storage: "  # how a delivery stopped by a storage error records it
LOCK_RETRIES = 4
DIED = ("the worker running it stopped beating (killed, out of memory, or its machine "
        "went down)")
STAGE_NAMES = {chunks.GENERATE: "Generation", chunks.VERIFY: "Verification"}


# --- Errors ---------------------------------------------------------------------------


def is_storage_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or database is full."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OperationalError | OSError) and any(
            m in str(exc).lower() for m in STORAGE_MESSAGES
        ):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def retry_on_lock(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, called again (up to ``LOCK_RETRIES`` times, pausing 0.5 s,
    1 s, 2 s) while the database stays locked past its busy timeout. Not inside a
    transaction, whose failed statement cannot be repeated."""
    for attempt in range(LOCK_RETRIES):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            if (not is_database_busy(exc) or attempt == LOCK_RETRIES - 1
                    or connection.in_atomic_block):
                raise
            logger.warning("database locked; trying %s again: %s",
                           getattr(fn, "__name__", fn), exc)
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


# --- Experiment-level outcomes ---------------------------------------------------------


def max_attempts() -> int:
    return int(settings.STRATLAB_MAX_ATTEMPTS)


def describe(chunk: Chunk) -> str:
    """"Generation of problems 0, 1" / "Generation of problem 3 (samples 1024-2047)" /
    "Computing the metrics"."""
    if chunk.stage == chunks.METRICS:
        return "Computing the metrics"
    what = f"{STAGE_NAMES[chunk.stage]} of {problem_names(chunk.problem_ids)}"
    if chunk.samples is not None:
        what += f" (samples {chunk.samples[0]}-{chunk.samples[1] - 1})"
    return what


def fail_exhausted(experiment_id: int, chunk: Chunk, attempts: int, last_error: str) -> bool:
    """Fail the experiment: ``chunk`` used up its attempts. True when this call did."""
    return retry_on_lock(
        services.fail_experiment, experiment_id,
        f"{describe(chunk)} failed {attempts} times (STRATLAB_MAX_ATTEMPTS is "
        f"{max_attempts()}), so nothing more of this experiment is retried. "
        f"Last error: {last_error or DIED}",
    )


def note_storage_pause(experiment_id: int, reason: str) -> None:
    """Say on the (still running) experiment why it waits; best effort, as the write
    may fail for the same reason."""
    note = f"{STORAGE_NOTE} ({reason}); it resumes by itself once writes succeed again."
    try:
        Experiment.objects.filter(
            pk=experiment_id, status__in=[Experiment.Status.QUEUED, Experiment.Status.RUNNING]
        ).update(error=note[:2000])
    except DatabaseError as exc:
        logger.error("experiment %s: could not note the storage error either: %s",
                     experiment_id, exc)
    logger.error("experiment %s paused: %s", experiment_id, reason)


def clear_storage_pause(experiment_id: int) -> None:
    """Writes succeed again: the note goes (a failure's reason never starts like it)."""
    Experiment.objects.filter(pk=experiment_id, error__startswith=STORAGE_NOTE).update(error="")


# --- What is missing --------------------------------------------------------------------


@dataclass(frozen=True)
class RangeState:
    """For the range chunks of pools generated in ranges: per pool, samples stored, and
    samples lacking a model-run verdict or the experiment's verdict, per (problem, range)
    (the ranges the chunks name, read in one grouped query each, not one per chunk)."""

    ranges: dict[int, list[tuple[int, int]]]
    stored: dict[int, dict[tuple[int, int], int]]
    unrun: dict[int, set[tuple[int, int]]]
    unverified: dict[int, set[tuple[int, int]]]
    # Per pool: its N, the problems marked generated for it, and those with all of
    # samples 0..N-1 stored.
    ends: dict[int, int]
    done: dict[int, set[int]]
    full: dict[int, set[int]]

    @classmethod
    def read(cls, generation: Sequence[Chunk], where: Q, verifier: str,
             model_run: Sequence[str]) -> RangeState:
        ranges: dict[int, set[tuple[int, int]]] = {}
        ends: dict[int, int] = {}
        for chunk in generation:
            if chunk.samples is not None:
                for pool_id, n in chunk.demands:
                    ranges.setdefault(pool_id, set()).add(chunk.samples)
                    ends[pool_id] = n
        ordered = {pool_id: sorted(parts) for pool_id, parts in ranges.items()}
        stored: dict[int, dict[tuple[int, int], int]] = {}
        unrun: dict[int, set[tuple[int, int]]] = {}
        unverified: dict[int, set[tuple[int, int]]] = {}
        done: dict[int, set[int]] = {}
        full: dict[int, set[int]] = {}
        for pool_id, parts in ordered.items():
            n = ends[pool_id]
            stored[pool_id] = range_counts(pool_id, where, parts)
            unrun[pool_id] = {key for run in model_run
                              for key in range_counts(pool_id, where, parts, lacking=run)}
            unverified[pool_id] = set(range_counts(pool_id, where, parts, lacking=verifier))
            done[pool_id] = done_where(pool_id, where, n)
            full[pool_id] = {problem_id for (problem_id, _), count
                             in range_counts(pool_id, where, [(0, n)]).items() if count >= n}
        return cls(ordered, stored, unrun, unverified, ends, done, full)

    @property
    def pool_ids(self) -> set[int]:
        return set(self.ranges)

    def needs(self, pool_ids: Sequence[int], problem_ids: Sequence[int],
              samples: tuple[int, int]) -> tuple[bool, bool]:
        """Whether a range chunk (its pools, problems and range ``samples``) lacks samples,
        a model-run verdict or, for the last range, the completion marker (generation),
        and whether it lacks the experiment's verdicts (verification)."""
        generate = verify = False
        for pool_id in pool_ids:
            part = self.ranges[pool_id].index(samples)
            is_last = samples[1] >= self.ends[pool_id]
            for problem_id in problem_ids:
                key = (problem_id, part)
                generate |= (self.stored[pool_id].get(key, 0) < samples[1] - samples[0]
                             or key in self.unrun[pool_id]
                             # Every sample stored but no marker: the last range writes
                             # it (``generation._lacking``).
                             or (is_last and problem_id not in self.done[pool_id]
                                 and problem_id in self.full[pool_id]))
                verify |= key in self.unverified[pool_id]
        return generate, verify


@dataclass(frozen=True)
class Missing:
    """An experiment's chunks that still need work, and whether its metrics wait for
    the claim (every verdict stored, nobody has claimed the stage yet)."""

    chunks: tuple[Chunk, ...]
    claim_metrics: bool


def missing_work(experiment: Experiment, generation: Sequence[Chunk],
                 problem_ids: Sequence[int] | None = None) -> Missing:
    """Which of the ``generation`` chunks (and of their verification chunks, and of the
    metrics) still need work, from the stored rows. ``problem_ids`` limits the reading
    to those problems (one chunk's); None reads all of the experiment's."""
    if problem_ids is None:
        where = experiment.problem_q()
        scope = set(experiment.problems.values_list("pk", flat=True))
    else:
        where = Q(problem_id__in=list(problem_ids))
        scope = set(problem_ids)
    verifier = verifier_for(experiment)
    # The verdicts the generation task writes itself (as generation.chunk_work asks).
    model_run = [*([SELF_EVAL_VERIFIER] if experiment.self_eval else []),
                 *([verifier] if experiment.verifier in MODEL_VERIFIERS else [])]
    ungenerated: dict[int, set[int]] = {}
    unverified: dict[int, set[int]] = {}
    demands = pool_demands(experiment)
    ranged = RangeState.read(generation, where, verifier, model_run)
    for pool_id, n in demands.items():
        if pool_id in ranged.pool_ids:
            continue
        lacking = scope - done_where(pool_id, where, n)
        for key in model_run:
            lacking |= lacking_verdicts_where(pool_id, where, n, key)
        ungenerated[pool_id] = lacking
        unverified[pool_id] = lacking_verdicts_where(pool_id, where, n, verifier)
    unmatrixed = problems_missing_matrices(experiment, scope, where) if is_code(experiment) \
        else set()
    # A queued experiment waits for a generation task to claim it, done or not.
    claim = experiment.status == Experiment.Status.QUEUED
    needed: list[Chunk] = []
    for chunk in generation:
        problems = set(chunk.problem_ids)
        if chunk.samples is not None:
            generate, verify = ranged.needs(chunk.pool_ids, chunk.problem_ids, chunk.samples)
            # Of a problem's ranges, the last one's verification runs a missing matrix.
            verify |= bool(unmatrixed & problems) and all(
                chunk.samples[1] >= demands[p] for p in chunk.pool_ids)
        else:
            generate = any(ungenerated.get(p, set()) & problems for p in chunk.pool_ids)
            verify = bool(unmatrixed & problems) or any(
                unverified.get(p, set()) & problems for p in chunk.pool_ids)
        if claim or generate:
            needed.append(chunk)
        elif verify:
            needed.append(chunk.verification())
    if needed or experiment.is_done or experiment.status != Experiment.Status.RUNNING:
        return Missing(tuple(needed), claim_metrics=False)
    if experiment.metrics_claimed_at is None:
        return Missing((), claim_metrics=True)
    return Missing((Chunk.metrics(),), claim_metrics=False)


def chunk_needs_work(experiment_id: int, chunk: Chunk) -> bool:
    """Whether ``chunk`` of an active experiment still has work (a delivery that ends
    with some left did not complete it)."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if experiment.is_done:
        return False
    if chunk.stage == chunks.METRICS:
        return True
    generation = Chunk.generate(chunk.demands, chunk.problem_ids, chunk.samples)
    missing = missing_work(experiment, [generation], chunk.problem_ids).chunks
    return any(m.key == chunk.key for m in missing)


# --- The sweep --------------------------------------------------------------------------


def stale_after() -> timedelta:
    return timedelta(seconds=settings.STRATLAB_STALE_SECONDS)


def _claim_resend(experiment_id: int, chunk: Chunk, row: ChunkAttempt | None,
                  now: datetime, note: str) -> bool:
    """Mark the chunk sent, if nobody changed its row since it was read (another
    reconciler, or a delivery that began meanwhile); True when this call may send it."""
    if row is None:
        try:
            with transaction.atomic():
                ChunkAttempt.objects.create(experiment_id=experiment_id, key=chunk.key,
                                            enqueued=now, updated=now)
        except IntegrityError:
            return False
        return True
    fields: dict[str, object] = {"enqueued": now}
    if note:
        fields["last_error"] = note
    won = ChunkAttempt.objects.filter(
        pk=row.pk, enqueued=row.enqueued, started=row.started, updated=row.updated,
        finished=row.finished, attempts=row.attempts,
    ).update(**fields)
    return bool(won)


def reconcile_experiment(experiment: Experiment, now: datetime,
                         waiting: dict[str, int | None]) -> list[str]:
    """Send again the experiment's missing work that no task holds, claim its metrics
    when every verdict is in, or fail it when a chunk used up its attempts. Returns
    what it did, a line each."""
    missing = missing_work(experiment, services.generation_chunks(experiment))
    if missing.claim_metrics:
        if retry_on_lock(services.claim_metrics_if_verified, experiment.pk):
            send_followup(experiment.pk, Chunk.metrics())
            return [f"experiment {experiment.pk}: every verdict stored; metrics sent"]
        return []
    rows = {row.key: row for row in ChunkAttempt.objects.filter(experiment=experiment)}
    lines: list[str] = []
    for chunk in missing.chunks:
        row = rows.get(chunk.key)
        in_queue = waiting.get(queue.queue_of(chunk.task))
        if chunks.is_held(row, now, stale_after(), waiting=in_queue is None or in_queue > 0,
                          grace_from=experiment.created):
            continue
        if (row is not None and row.finished is not None and now - row.finished < stale_after()
                and row.last_error.startswith(STORAGE_ERROR)):
            continue  # the disk may still be full: try again a while later
        # A delivery began, never ended, and nothing was sent since: its worker died.
        died = (row is not None and row.enqueued is None and row.started is not None
                and row.finished is None)
        last_error = DIED if died else (row.last_error if row is not None else "")
        if row is not None and row.attempts >= max_attempts():
            if fail_exhausted(experiment.pk, chunk, row.attempts, last_error):
                lines.append(f"experiment {experiment.pk}: failed, {describe(chunk)} "
                             f"used up its {row.attempts} attempts")
            return lines
        if in_queue is None or not _claim_resend(
            experiment.pk, chunk, row, now, DIED if died else ""
        ):
            continue
        queue.send(chunk.task, *chunk.args(experiment.pk))
        why = "its worker died" if died else (
            f"its last delivery ended: {last_error}" if last_error else "no task holds it")
        lines.append(f"experiment {experiment.pk}: sent {chunk.key} again ({why})")
    return lines


def reconcile(now: datetime | None = None) -> list[str]:
    """One sweep over every queued or running experiment (see the module's docstring)."""
    now = now or timezone.now()
    waiting = {name: queue.waiting(name)
               for name in {queue.queue_of(task) for task in chunks.TASKS.values()}}
    lines: list[str] = []
    active = Experiment.objects.filter(
        status__in=[Experiment.Status.QUEUED, Experiment.Status.RUNNING]
    ).select_related("dataset").order_by("created")
    for experiment in active:
        try:
            lines += reconcile_experiment(experiment, now, waiting)
        except (DatabaseError, BrokerError) as exc:
            # A full disk, a held lock or the broker gone: the next sweep tries again.
            logger.warning("reconciling experiment %s: %s", experiment.pk, exc)
        except (ValueError, TypeError, KeyError):
            # A stored recipe its tasks will fail it for; the other experiments go on.
            logger.exception("reconciling experiment %s", experiment.pk)
    return lines


def send_followup(experiment_id: int, chunk: Chunk) -> None:
    """Send the next stage's chunk; if the broker is down, the reconciler sends it later
    (its row says it was sent, and its queue is empty)."""
    try:
        retry_on_lock(chunks.send, experiment_id, [chunk], timezone.now())
    except BrokerError as exc:
        logger.warning("experiment %s: could not send %s (%s); the reconciler will",
                       experiment_id, chunk.key, exc)
