"""Fixtures for the runtime tests: the tiny random model, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_NAME = "tiny-random"


@pytest.fixture(scope="session")
def tiny_extra(tiny_model_dir: Path) -> dict[str, str]:
    """The ``extra`` registry mapping that registers the tiny model."""
    return {TINY_NAME: str(tiny_model_dir)}


@pytest.fixture(scope="session")
def tiny(tiny_extra: dict[str, str], model_cache_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny model loaded on CPU (shared; tests must not modify it)."""
    from workers.runtime.models import load_model

    return load_model(TINY_NAME, cache_dir=model_cache_dir, extra=tiny_extra, device="cpu")


@pytest.fixture(scope="session")
def tiny_draft(tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path):  # type: ignore[no-untyped-def]
    """Another tiny random model with the same tokenizer (other weights): a draft model."""
    from tests.model_fixtures import build_tiny_model
    from workers.runtime.models import load_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny-draft"), seed=4321)
    return load_model(
        "tiny-draft", cache_dir=model_cache_dir, extra={"tiny-draft": str(path)}, device="cpu"
    )
