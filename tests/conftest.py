"""Shared fixtures: personas (owner, teammate, stranger), a real Redis, a real worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --- Personas ---------------------------------------------------------------------


@pytest.fixture
def team(db):  # type: ignore[no-untyped-def]
    from tests.factories import make_team

    return make_team("Alpha")


@pytest.fixture
def owner(team):  # type: ignore[no-untyped-def]
    return team.memberships.get(role="owner").user


@pytest.fixture
def teammate(team):  # type: ignore[no-untyped-def]
    from tests.factories import make_user
    from webapp.teams.services import add_member

    user = make_user("bob")
    add_member(team, user)
    return user


@pytest.fixture
def viewer(team):  # type: ignore[no-untyped-def]
    """A teammate who reads and comments only."""
    from tests.factories import make_user
    from webapp.teams.services import add_member

    user = make_user("vera")
    add_member(team, user, role="viewer")
    return user


@pytest.fixture
def team_admin(team):  # type: ignore[no-untyped-def]
    """A teammate who manages members."""
    from tests.factories import make_user
    from webapp.teams.services import add_member

    user = make_user("ada")
    add_member(team, user, role="admin")
    return user


@pytest.fixture
def stranger(db):  # type: ignore[no-untyped-def]
    from tests.factories import make_team

    return make_team("Other").memberships.get(role="owner").user


# --- Models -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight model with the SmolLM2 tokenizer, as a local HF directory."""
    from tests.model_fixtures import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def extra_models(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Local model directories the test worker knows: a working one and a corrupt one."""
    broken = tmp_path_factory.mktemp("broken-model")
    (broken / "config.json").write_text("{this is not json")
    return {"tiny-random": str(tiny_model_dir), "broken": str(broken)}


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Converted GGUF weights are kept between test runs, as in the app."""
    path = Path(os.environ.get("STRATLAB_MODEL_CACHE", ROOT / "var" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- Real Redis and a real Celery worker ------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from webapp.embedded_redis import EmbeddedRedis, free_port

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server.url
    server.stop()


def database_url(db: dict[str, Any]) -> str:
    """The URL of the (test) database this process uses, for the worker process."""
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith("postgresql"):
        auth = quote(db["USER"] or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
        return f"postgres://{auth}@{host}/{db['NAME']}"
    raise RuntimeError(f"no worker database URL for {db['ENGINE']}")


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def celery_worker_process(
    transactional_db: None,
    redis_url: str,
    extra_models: dict[str, str],
    model_cache_dir: Path,
    settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> Iterator[WorkerProcess]:
    """A real ``celery worker`` process on the gpu and cpu queues of a real Redis,
    using the test database; the test process enqueues to the same broker."""
    from django.db import connection

    from workers.celery import app

    settings.CELERY_BROKER_URL = redis_url
    settings.STRATLAB_EXTRA_MODELS = extra_models
    settings.STRATLAB_MODEL_CACHE = model_cache_dir
    settings.STRATLAB_CHUNK_SIZE = 2
    app.conf.broker_url = redis_url
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url(connection.settings_dict),
        "STRATLAB_EXTRA_MODELS": json.dumps(extra_models),
        "STRATLAB_MODEL_CACHE": str(model_cache_dir),
        "STRATLAB_CHUNK_SIZE": "2",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery", "worker",
             "-Q", "gpu,cpu", "-P", "solo", "--loglevel", "INFO", "-n", f"test-{os.getpid()}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    worker = WorkerProcess(process, log)
    try:
        deadline = time.monotonic() + 90
        while "ready." not in worker.output():
            if process.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{worker.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"celery worker did not become ready:\n{worker.output()[-3000:]}")
            time.sleep(0.2)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Drop what this test left queued so the next worker starts clean.
        import redis

        redis.Redis.from_url(redis_url).flushdb()
