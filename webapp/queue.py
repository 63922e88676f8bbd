"""The web app's one way into the workers: enqueue a task by its name.

The web process never imports the task code (nor torch behind it): it sends a
message naming the task, and ``CELERY_TASK_ROUTES`` puts it on its queue. The
worker that consumes the queue runs ``workers.tasks`` under the same name.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from kombu.exceptions import OperationalError

from webapp.broker import app

logger = logging.getLogger(__name__)

GENERATE_CHUNK = "workers.tasks.generate_chunk"
VERIFY_CHUNK = "workers.tasks.verify_chunk"
COMPUTE_METRICS = "workers.tasks.compute_metrics"
COMPUTE_LABELLED_METRICS = "workers.tasks.compute_labelled_metrics"


def send(name: str, *args: Any) -> None:
    """Enqueue task ``name`` with positional ``args`` (ids and lists of ids only)."""
    app.send_task(name, args=list(args))


def queue_of(name: str) -> str:
    """The queue task ``name`` is routed to."""
    route = settings.CELERY_TASK_ROUTES.get(name, {})
    return str(route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE))


def waiting(queue: str) -> int | None:
    """Messages waiting in ``queue`` (not those a worker holds), or None when the broker
    cannot be reached. The reconciler reads it: a chunk sent but not yet begun may still
    be among them."""
    connection = app.connection_for_read()
    errors = (OperationalError, *connection.connection_errors, *connection.channel_errors)
    try:
        connection.ensure_connection(max_retries=1)
        return int(connection.default_channel.queue_declare(queue=queue).message_count)
    except errors as exc:
        logger.warning("cannot read the length of queue %s: %s", queue, exc)
        return None
    finally:
        connection.release()
