"""Model runtime for the generation workers: a model registry and a batched sampler.

This package never imports Django or Celery; the Celery tasks in ``workers.tasks``
drive it. Heavy libraries (torch, transformers) are imported lazily where practical.
"""

from __future__ import annotations
