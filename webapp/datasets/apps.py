from __future__ import annotations

import contextlib
import os

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "webapp.datasets"
    label = "datasets"

    def ready(self) -> None:
        import pyarrow as pa

        # Pass 1 of a CSV upload hands pyarrow's batches from a reader thread to the
        # request's thread (datasets.columns). Freed across threads, pyarrow's default
        # allocator (mimalloc) made that pass about a fifth slower than jemalloc does
        # (bench/datasets.py). ARROW_DEFAULT_MEMORY_POOL, when set, still decides.
        if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
            with contextlib.suppress(NotImplementedError):  # a build without jemalloc
                pa.set_memory_pool(pa.jemalloc_memory_pool())
