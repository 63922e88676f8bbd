"""The worker's Celery application: the web app's (``webapp.broker``) with the task code
of ``workers.tasks`` registered on it. ``celery -A workers.celery worker`` starts it."""

from __future__ import annotations

from webapp.broker import app

app.autodiscover_tasks(["workers"], related_name="tasks")

__all__ = ["app"]
