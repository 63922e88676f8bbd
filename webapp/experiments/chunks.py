"""Chunks: the units of work one message carries, and their rows in ``ChunkAttempt``.

A chunk is the generation of a slice of problems for the pools of one model, the
verification of that slice, or an experiment's metrics. A pool whose N is larger than
``STRATLAB_CHUNK_SAMPLES`` is generated and verified a range of sample indices at a
time: such a chunk holds one pool, one problem and its ``samples`` ``[first, last)``.
Its key (stage, pools, problems, and the range if any) names its ``ChunkAttempt``
row, which records when a message for it was sent (``enqueued``), when a delivery began
(``started``) and beat (``updated``), when that delivery ended (``finished``), how many
deliveries began since it last completed (``attempts``) and the last error.
``recovery`` reads these rows to tell a chunk that a task holds from one whose task
died; nothing here changes an experiment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webapp import queue
from webapp.experiments.models import ChunkAttempt

GENERATE = "generate"
VERIFY = "verify"
METRICS = "metrics"
TASKS = {GENERATE: queue.GENERATE_CHUNK, VERIFY: queue.VERIFY_CHUNK,
         METRICS: queue.COMPUTE_METRICS}
KEY_LENGTH = ChunkAttempt._meta.get_field("key").max_length or 200


def _ranges(ids: Sequence[int]) -> str:
    """``[401, 402, 403, 410]`` -> ``"401-403,410"``."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    start = prev = None
    for value in [*ordered, None]:
        if value is not None and prev is not None and value == prev + 1:
            prev = value
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = value
    return ",".join(parts)


SampleRange = tuple[int, int]


def _range(samples: Sequence[int] | None) -> SampleRange | None:
    if samples is None:
        return None
    first, last = (int(v) for v in samples)
    if not 0 <= first < last:
        raise ValueError(f"a range of sample indices needs 0 <= first < last, got {samples}")
    return first, last


@dataclass(frozen=True)
class Chunk:
    """One message's work. ``demands`` holds (pool id, n) pairs in the order the message
    lists them (a verification message sends the pool ids only); ``samples``, when set,
    limits it to the sample indices ``[first, last)`` of its (one) problem."""

    stage: str
    demands: tuple[tuple[int, int], ...] = ()
    problem_ids: tuple[int, ...] = ()
    samples: SampleRange | None = None

    @classmethod
    def generate(cls, demands: Sequence[Sequence[int]], problem_ids: Sequence[int],
                 samples: Sequence[int] | None = None) -> Chunk:
        return cls(GENERATE, tuple((int(p), int(n)) for p, n in demands), tuple(problem_ids),
                   _range(samples))

    @classmethod
    def verify(cls, demands: Sequence[Sequence[int]], problem_ids: Sequence[int],
               samples: Sequence[int] | None = None) -> Chunk:
        return cls(VERIFY, tuple((int(p), int(n)) for p, n in demands), tuple(problem_ids),
                   _range(samples))

    def verification(self) -> Chunk:
        """The verification chunk that follows this generation chunk."""
        return Chunk.verify(self.demands, self.problem_ids, self.samples)

    @classmethod
    def metrics(cls) -> Chunk:
        return cls(METRICS)

    @property
    def pool_ids(self) -> list[int]:
        return [pool_id for pool_id, _ in self.demands]

    @property
    def key(self) -> str:
        """``generate:12,13:401-408``, ``generate:12:401:s1024-2047`` for a range of
        sample indices; a digest when that would not fit the column."""
        if self.stage == METRICS:
            return METRICS
        key = f"{self.stage}:{_ranges(self.pool_ids)}:{_ranges(self.problem_ids)}"
        if self.samples is not None:
            key += f":s{self.samples[0]}-{self.samples[1] - 1}"
        if len(key) <= KEY_LENGTH:
            return key
        return f"{self.stage}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"

    @property
    def task(self) -> str:
        return TASKS[self.stage]

    def args(self, experiment_id: int) -> list[Any]:
        """The task's arguments, as ``enqueue_experiment`` and the tasks send them: a range
        of sample indices comes last (after the one-pool form's unused ``n``, for
        generation)."""
        samples = [] if self.samples is None else [list(self.samples)]
        if self.stage == GENERATE:
            return [experiment_id, [[p, n] for p, n in self.demands], list(self.problem_ids),
                    *([None] if samples else []), *samples]
        if self.stage == VERIFY:
            return [experiment_id, self.pool_ids, list(self.problem_ids), *samples]
        return [experiment_id]


def mark_sent(experiment_id: int, chunks: Sequence[Chunk], now: datetime, *,
              fresh: bool = False) -> None:
    """Record that messages for ``chunks`` are about to be sent; ``fresh`` (a submission
    or an amendment, not a recovery) gives every chunk of the experiment its attempts
    again."""
    if fresh:
        ChunkAttempt.objects.filter(experiment_id=experiment_id).update(
            attempts=0, last_error="")
    ChunkAttempt.objects.bulk_create(
        [ChunkAttempt(experiment_id=experiment_id, key=chunk.key, enqueued=now, updated=now)
         for chunk in chunks],
        update_conflicts=True, unique_fields=["experiment", "key"], update_fields=["enqueued"],
        batch_size=500,
    )


def send(experiment_id: int, chunks: Sequence[Chunk], now: datetime, *,
         fresh: bool = False) -> None:
    """Mark ``chunks`` sent, then send one message each (by task name). A broker error
    (``kombu.exceptions.OperationalError``) reaches the caller; the rows already say
    "sent", and the reconciler sends again what never arrived."""
    mark_sent(experiment_id, chunks, now, fresh=fresh)
    for chunk in chunks:
        queue.send(chunk.task, *chunk.args(experiment_id))


def is_held(row: ChunkAttempt | None, now: datetime, stale: timedelta, *,
            waiting: bool, grace_from: datetime) -> bool:
    """Whether a task holds the chunk or may still: a delivery beating within ``stale``,
    or a message sent since the last delivery began that is younger than ``stale`` or may
    be among the ones ``waiting`` in its queue. A chunk without a row is held until
    ``stale`` after ``grace_from`` (the experiment's submission, whose messages are being
    sent)."""
    if row is None:
        return now - grace_from < stale
    if row.enqueued is not None:
        return waiting or now - row.enqueued < stale
    if row.started is not None and row.finished is None:
        return now - row.updated < stale
    return False
