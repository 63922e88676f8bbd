"""The Celery application, configured from Django settings (``CELERY_*``).

It lives in the web app because both sides use it: the web process sends tasks by name
through it (``webapp.queue``), and ``workers.celery`` registers the task code on it. The
web app thus never imports ``workers``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("stratlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
