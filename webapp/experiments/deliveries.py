"""One delivery of a chunk, as its task sees it: counted, beating, bounded in time.

``begin`` counts the delivery in the chunk's ``ChunkAttempt`` row (in one transaction)
or, when the chunk has used up ``STRATLAB_MAX_ATTEMPTS``, fails the experiment and
returns None, so that a redelivered poison message stops there. The ``Delivery`` is a
context manager around the task's work:

* while it runs, a thread beats the row every ``STRATLAB_HEARTBEAT_SECONDS`` (and reads
  whether the experiment is still active), so that the reconciler can tell a slow batch
  from a dead worker; inside a transaction (the in-process tests), where another
  connection could not see the row, the task's own thread beats between batches;
* ``keep_going`` (thread-safe, no database) and ``still_active`` (also asks the
  database) turn false once the soft time limit (``CELERY_TASK_SOFT_TIME_LIMIT``) has
  passed: Celery enforces no time limit in the ``solo`` pool the workers run, so the
  engine checks between batches and the sandbox between programs;
* on leaving, the delivery completes when its chunk needs nothing more; otherwise it is
  released with its reason (time limit, an exception) and counts as a failed attempt,
  and the reconciler sends it again, or the experiment fails at the limit. A storage
  error ("database or disk is full") pauses the experiment instead and is not counted;
  a stopped worker (shutdown) is not counted either.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from webapp.experiments import recovery, services
from webapp.experiments.chunks import Chunk
from webapp.experiments.models import ChunkAttempt

logger = logging.getLogger(__name__)


def soft_limit_seconds() -> float:
    return max(1.0, float(settings.CELERY_TASK_SOFT_TIME_LIMIT))


def _is_held_elsewhere(row: ChunkAttempt, now: datetime) -> bool:
    """Another delivery of the chunk began and still beats (a duplicate message)."""
    return (row.started is not None and row.finished is None and row.enqueued is None
            and now - row.updated < recovery.stale_after())


def _begin(experiment_id: int, chunk: Chunk) -> tuple[str, ChunkAttempt, datetime]:
    now = timezone.now()
    with transaction.atomic():
        row, _ = ChunkAttempt.objects.select_for_update().get_or_create(
            experiment_id=experiment_id, key=chunk.key, defaults={"updated": now}
        )
        if row.attempts >= recovery.max_attempts():
            return "exhausted", row, now
        if _is_held_elsewhere(row, now):
            return "held", row, now
        ChunkAttempt.objects.filter(pk=row.pk).update(
            attempts=F("attempts") + 1, started=now, updated=now, finished=None, enqueued=None
        )
    return "begun", row, now


def begin(experiment_id: int, chunk: Chunk) -> Delivery | None:
    """Count a delivery of ``chunk``; None when the experiment is no longer active, the
    chunk is held by a live delivery, or it used up its attempts (which fails the
    experiment)."""
    if not services.is_active(experiment_id):
        return None
    try:
        state, row, now = recovery.retry_on_lock(_begin, experiment_id, chunk)
    except DatabaseError as exc:
        if not recovery.is_storage_error(exc):
            raise
        # The message is acknowledged; the row still says "sent", so the reconciler sends
        # the chunk again once the database takes writes.
        recovery.note_storage_pause(experiment_id, str(exc))
        return None
    if state == "exhausted":
        recovery.fail_exhausted(experiment_id, chunk, row.attempts, row.last_error)
        return None
    if state == "held":
        logger.info("experiment %s: %s is held by a live delivery; skipping this one",
                    experiment_id, chunk.key)
        return None
    return Delivery(experiment_id, chunk, row.pk, now)


class Delivery:
    """See the module's docstring. Not reused: one ``with`` block per delivery."""

    def __init__(self, experiment_id: int, chunk: Chunk, row_id: int, started: datetime) -> None:
        self.experiment_id = experiment_id
        self.chunk = chunk
        self._row_id = row_id
        self._started = started
        self._deadline = time.monotonic() + soft_limit_seconds()
        self._every = float(settings.STRATLAB_HEARTBEAT_SECONDS)
        self._last_beat = time.monotonic()
        # False once another delivery took the chunk over or the experiment ended.
        self._held = True
        self._timed_out = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- while it runs

    @property
    def timed_out(self) -> bool:
        return self._timed_out

    def time_out(self) -> None:
        """The task met a time limit of its own (Celery's, in a prefork pool)."""
        self._timed_out = True

    def keep_going(self) -> bool:
        """Within the time limit and, at the last beat, still the experiment's work.
        Thread-safe and without a query: the sandbox's threads call it per program."""
        if time.monotonic() >= self._deadline:
            self._timed_out = True
            return False
        return self._held

    def still_active(self) -> bool:
        """``keep_going`` and the experiment still queued or running (a query; call it
        from the task's thread, between batches)."""
        if not self.keep_going():
            return False
        if self._thread is None and time.monotonic() - self._last_beat >= self._every:
            self._beat()
        return services.is_active(self.experiment_id)

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        try:
            mine = ChunkAttempt.objects.filter(pk=self._row_id, started=self._started).update(
                updated=timezone.now()
            )
            self._held = bool(mine) and services.is_active(self.experiment_id)
        except DatabaseError as exc:  # a held lock or a full disk: the next beat retries
            logger.warning("experiment %s: heartbeat of %s failed: %s",
                           self.experiment_id, self.chunk.key, exc)

    def _beat_until_stopped(self) -> None:
        try:
            while not self._stop.wait(self._every):
                self._beat()
        finally:
            connections.close_all()  # this thread's connections only

    # --- the with block

    def __enter__(self) -> Delivery:
        # Another connection cannot see rows of an open transaction (the in-process tests).
        if not connection.in_atomic_block:
            self._thread = threading.Thread(
                target=self._beat_until_stopped, daemon=True,
                name=f"heartbeat-{self.experiment_id}-{self.chunk.stage}",
            )
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if exc is None:
            self._end()
            return False
        if recovery.is_storage_error(exc):
            recovery.note_storage_pause(self.experiment_id, str(exc))
            self._release(f"{recovery.STORAGE_ERROR}{exc}", counted=False)
            return True  # handled: the reconciler resumes the chunk once writes succeed
        if not isinstance(exc, Exception):  # the worker is shutting down, not the chunk's fault
            self._release("the worker was stopped during the chunk", counted=False)
            return False
        self._release(f"{type(exc).__name__}: {exc}", counted=True)
        return False

    def _end(self) -> None:
        # Writes below match this delivery's start: one that was taken over changes nothing.
        if not recovery.retry_on_lock(recovery.chunk_needs_work, self.experiment_id, self.chunk):
            self._complete()
        elif self._timed_out:
            self._release(
                f"it ran past its time limit ({soft_limit_seconds():.0f} s, "
                "STRATLAB_TASK_TIME_LIMIT minus 60) and stopped; what it stored is kept",
                counted=True,
            )
        elif services.is_active(self.experiment_id):
            self._release("it ended with part of its work not stored", counted=True)

    def _complete(self) -> None:
        now = timezone.now()
        recovery.retry_on_lock(
            ChunkAttempt.objects.filter(pk=self._row_id, started=self._started).update,
            attempts=0, last_error="", finished=now, updated=now,
        )
        recovery.retry_on_lock(recovery.clear_storage_pause, self.experiment_id)

    def _release(self, error: str, *, counted: bool) -> None:
        """End the delivery without completing the chunk; a counted release at the
        limit fails the experiment."""
        now = timezone.now()
        try:
            mine = recovery.retry_on_lock(
                ChunkAttempt.objects.filter(pk=self._row_id, started=self._started).update,
                last_error=error[:2000], finished=now, updated=now,
                attempts=F("attempts") - (0 if counted else 1),
            )
            if not (counted and mine):
                return
            row = ChunkAttempt.objects.get(pk=self._row_id)
        except DatabaseError as exc:
            # The row keeps its last beat: the reconciler finds it stale later.
            logger.error("experiment %s: could not record how %s ended (%s): %s",
                         self.experiment_id, self.chunk.key, error, exc)
            return
        logger.warning("experiment %s: %s ended without completing (attempt %d of %d): %s",
                       self.experiment_id, self.chunk.key, row.attempts,
                       recovery.max_attempts(), error)
        if row.attempts >= recovery.max_attempts():
            recovery.fail_exhausted(self.experiment_id, self.chunk, row.attempts, error)
