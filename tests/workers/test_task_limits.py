"""The task adapters under limits, called in-process with the tiny model: the time limit
the solo pool does not enforce (checked between batches and between programs), a full
database, and a held database lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.db.models import Count
from django.utils import timezone

from tests.factories import make_code_experiment, make_experiment
from webapp.experiments import recovery, services
from webapp.experiments.chunks import Chunk
from webapp.experiments.models import ChunkAttempt, Experiment, PoolProblem, Sample, Verdict
from webapp.experiments.pools import pool_demands
from webapp.experiments.specs import StrategySpec
from workers import tasks
from workers.runtime import schemes

SAMPLED = [StrategySpec(temperature=0.8, selector="majority")]


@pytest.fixture
def worker_settings(settings: Any, extra_models: dict[str, str], model_cache_dir: Any,
                    redis_url: str) -> Iterator[Any]:
    """In-process task calls with the tiny model (loaded once, before any deadline starts);
    follow-up tasks go to a real, idle Redis."""
    import redis

    from workers.celery import app
    from workers.runtime.chunk import load_models

    settings.STRATLAB_EXTRA_MODELS = extra_models
    settings.STRATLAB_MODEL_CACHE = model_cache_dir
    settings.CELERY_BROKER_URL = redis_url
    settings.STRATLAB_MAX_ATTEMPTS = 3
    app.conf.broker_url = redis_url
    load_models("tiny-random", cache_dir=str(model_cache_dir), extra=extra_models,
                draft_name=None)
    yield settings
    redis.Redis.from_url(redis_url).flushdb()


def _message(experiment: Experiment) -> tuple[list[list[int]], list[int]]:
    demands = [[pool_id, n] for pool_id, n in pool_demands(experiment).items()]
    return demands, list(experiment.problems.order_by("index").values_list("pk", flat=True))


def _slow_engine(monkeypatch: Any, seconds: float) -> None:
    real = schemes.sample_many

    def slow(loaded: Any, jobs: Any, **kwargs: Any) -> Any:
        out = real(loaded, jobs, **kwargs)
        time.sleep(seconds)
        return out

    monkeypatch.setattr(schemes, "sample_many", slow)


def _generated_problems(experiment: Experiment) -> int:
    return PoolProblem.objects.filter(problem__dataset=experiment.dataset).count()


@pytest.mark.django_db
def test_generation_stops_at_its_time_limit_keeps_its_batches_and_resumes(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    worker_settings.CELERY_TASK_SOFT_TIME_LIMIT = 1
    # A problem's greedy row and its two samples do not fit one 2-row batch: two batches.
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 2
    _slow_engine(monkeypatch, 1.2)
    experiment = make_experiment(team, n=2, strategies=[
        StrategySpec(temperature=0.0, selector="first"), *SAMPLED])
    services.claim_experiment(experiment.pk)
    chunk = services.generation_chunks(experiment)[0]
    assert len(chunk.problem_ids) == 1

    tasks.generate_chunk(*chunk.args(experiment.pk))
    # The first batch (1.2 s) passed the 1 s limit: the second never started.
    greedy, sampled = chunk.pool_ids
    assert list(PoolProblem.objects.values_list("pool_id", flat=True)) == [greedy]
    row = ChunkAttempt.objects.get(key=chunk.key)
    assert row.attempts == 1 and row.finished is not None
    assert row.last_error == ("it ran past its time limit (1 s, STRATLAB_TASK_TIME_LIMIT minus "
                              "60) and stopped; what it stored is kept")
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.RUNNING

    # The reconciler sends it again at once (no delivery holds it); this one finishes.
    assert recovery.reconcile() == [
        f"experiment {experiment.pk}: sent {chunk.key} again (its last delivery ended: "
        f"{row.last_error})"]
    monkeypatch.undo()
    tasks.generate_chunk(*chunk.args(experiment.pk))
    assert sorted(PoolProblem.objects.values_list("pool_id", flat=True)) == [greedy, sampled]
    assert Sample.objects.count() == 1 + 2
    row.refresh_from_db()
    assert (row.attempts, row.last_error) == (0, "")


@pytest.mark.django_db
def test_a_chunk_that_keeps_running_past_its_limit_fails_the_experiment(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    worker_settings.CELERY_TASK_SOFT_TIME_LIMIT = 1
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 2
    _slow_engine(monkeypatch, 1.2)  # each delivery gets one batch done
    experiment = make_experiment(team, n=2, strategies=SAMPLED, prompts=[
        (f"What is {i} + {i}?", str(2 * i)) for i in range(5)])
    demands, problem_ids = _message(experiment)
    for _delivery in range(4):
        tasks.generate_chunk(experiment.pk, demands, problem_ids)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error == (
        "Generation of problems 0, 1, 2, 3, 4 failed 3 times (STRATLAB_MAX_ATTEMPTS is 3), "
        "so nothing more of this experiment is retried. Last error: it ran past its time "
        "limit (1 s, STRATLAB_TASK_TIME_LIMIT minus 60) and stopped; what it stored is kept")
    # What each delivery decoded is kept; the fourth delivery did nothing.
    assert _generated_problems(experiment) == 3


@pytest.mark.django_db
def test_code_verification_stops_its_programs_at_the_time_limit(
    worker_settings: Any, team: Any
) -> None:
    from webapp.datasets.code import ensure_humaneval_dataset

    problem = ensure_humaneval_dataset(team, size=1).problems.get()
    # The canonical solution, run first, takes about 4 s (0.6 s a call, seven checks).
    problem.metadata = {**problem.metadata, "canonical_solution":
                        "    import time\n    time.sleep(0.6)\n"
                        + problem.metadata["canonical_solution"]}
    problem.save(update_fields=["metadata"])
    experiment = make_code_experiment(team, SAMPLED, n=2, size=1)
    demands, problem_ids = _message(experiment)
    tasks.generate_chunk(experiment.pk, demands, problem_ids)
    pool_ids = [pool_id for pool_id, _ in demands]
    key = Chunk.verify(demands, problem_ids).key

    from workers.code_runs import get_sandbox

    get_sandbox()  # started before the clock runs (its runners take a while to start)
    worker_settings.CELERY_TASK_SOFT_TIME_LIMIT = 1
    started = time.monotonic()
    tasks.verify_chunk(experiment.pk, pool_ids, problem_ids)
    assert time.monotonic() - started < 3.5  # stopped, not run to the end
    assert not Verdict.objects.exists()
    row = ChunkAttempt.objects.get(key=key)
    assert row.attempts == 1 and row.last_error.startswith("it ran past its time limit")

    worker_settings.CELERY_TASK_SOFT_TIME_LIMIT = 60
    tasks.verify_chunk(experiment.pk, pool_ids, problem_ids)
    assert Verdict.objects.count() == 2
    row.refresh_from_db()
    assert row.attempts == 0
    problem.refresh_from_db()
    assert problem.metadata["canonical_status"] == "passed"


@pytest.fixture
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("fills or locks the SQLite database file")


@pytest.mark.django_db(transaction=True)
def test_a_full_database_pauses_the_experiment_until_writes_succeed_again(
    sqlite_only: None, worker_settings: Any, team: Any
) -> None:
    experiment = make_experiment(team, n=8, strategies=SAMPLED, max_new_tokens=48)
    demands, problem_ids = _message(experiment)
    key = Chunk.generate(demands, problem_ids).key
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")  # no free pages left in the file
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        # SQLite answers SQLITE_FULL ("database or disk is full") past this size, as on a
        # full disk.
        cursor.execute(f"PRAGMA max_page_count = {pages}")
    try:
        tasks.generate_chunk(experiment.pk, demands, problem_ids)
        experiment.refresh_from_db()
        assert experiment.status == Experiment.Status.RUNNING
        assert experiment.error.startswith(
            "Paused: the database could not be written (database or disk is full); it "
            "resumes by itself once writes succeed again."), experiment.error
        row = ChunkAttempt.objects.get(key=key)
        assert row.attempts == 0 and row.last_error == "storage: database or disk is full"
        # A problem's samples and its marker are written together or not at all.
        counts = Sample.objects.values("problem").annotate(c=Count("id"))
        assert all(c["c"] == 8 for c in counts)
        assert PoolProblem.objects.count() == len(counts) < 3
        # Not sent again at once: a storage error backs off for STRATLAB_STALE_SECONDS.
        assert recovery.reconcile() == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA max_page_count = 4294967294")

    # Space freed: the next sweep sends the chunk again and its delivery finishes it.
    assert recovery.reconcile(timezone.now() + timedelta(minutes=5)) == [
        f"experiment {experiment.pk}: sent {key} again (its last delivery ended: "
        "storage: database or disk is full)"]
    tasks.generate_chunk(experiment.pk, demands, problem_ids)
    experiment.refresh_from_db()
    assert (experiment.status, experiment.error) == (Experiment.Status.RUNNING, "")
    assert Sample.objects.count() == 3 * 8 and PoolProblem.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_writes_are_retried_while_another_process_holds_the_lock(
    sqlite_only: None, team: Any
) -> None:
    experiment = make_experiment(team, n=2)
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 100")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            services.fail_experiment(experiment.pk, "stopped")
        threading.Timer(1.0, holder.rollback).start()
        assert recovery.retry_on_lock(services.fail_experiment, experiment.pk, "stopped")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 20000")
        holder.close()
    assert Experiment.objects.get(pk=experiment.pk).error == "stopped"
