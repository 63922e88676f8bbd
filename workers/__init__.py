"""Celery app, tasks, and the runtime they drive (model registry, engine)."""
