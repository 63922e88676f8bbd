"""Celery app, tasks, and the runtime they drive (model registry, engine).

Importing the package creates the Celery app so that ``shared_task`` tasks bind to
it in every process that enqueues (as in Celery's Django example).
"""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
