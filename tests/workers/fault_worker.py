"""The Celery app for fault-injection tests: ``celery -A tests.workers.fault_worker``.

It is the app the workers run (``workers.celery``), with faults that only a test worker
process started with these environment variables injects into the engine's batches:

* ``STRATLAB_TEST_BATCH_DELAY``: seconds each batch takes longer, so that a test can
  kill the worker between two batches of one chunk;
* ``STRATLAB_TEST_KILL_ON_PROMPT``: a batch holding a prompt with this text SIGKILLs its
  own worker process, as an out-of-memory kill or a segfault in the engine would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from typing import Any

from workers.celery import app
from workers.runtime import schemes

__all__ = ["app"]

BATCH_DELAY = float(os.environ.get("STRATLAB_TEST_BATCH_DELAY", "0") or 0)
KILL_ON_PROMPT = os.environ.get("STRATLAB_TEST_KILL_ON_PROMPT", "")

_sample_many = schemes.sample_many


def _faulty_sample_many(loaded: Any, jobs: Sequence[schemes.SampleJob],
                        **kwargs: Any) -> list[Any]:
    if KILL_ON_PROMPT and any(KILL_ON_PROMPT in job.user_text for job in jobs):
        os.kill(os.getpid(), signal.SIGKILL)
    out = _sample_many(loaded, jobs, **kwargs)
    time.sleep(BATCH_DELAY)
    return out


if BATCH_DELAY or KILL_ON_PROMPT:
    schemes.sample_many = _faulty_sample_many
