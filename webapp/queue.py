"""The web app's one way into the workers: enqueue a task by its name.

The web process never imports the task code (nor torch behind it): it sends a
message naming the task, and ``CELERY_TASK_ROUTES`` puts it on its queue. The
worker that consumes the queue runs ``workers.tasks`` under the same name.
"""

from __future__ import annotations

from typing import Any

from workers.celery import app

GENERATE_CHUNK = "workers.tasks.generate_chunk"
COMPUTE_LABELLED_METRICS = "workers.tasks.compute_labelled_metrics"


def send(name: str, *args: Any) -> None:
    """Enqueue task ``name`` with positional ``args`` (ids and lists of ids only)."""
    app.send_task(name, args=list(args))
