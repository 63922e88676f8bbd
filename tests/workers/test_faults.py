"""Faults on real components: real Redis, real Celery worker processes (a gpu and a cpu
worker, as ``manage.py up`` runs them), the real reconciler (``manage.py reconcile``) and
the tiny random model. Each test breaks something the way an operator's bad day would
(SIGKILL a worker mid-chunk or mid-program, a chunk that kills every worker that takes
it, Redis killed and started again) and checks the experiment ends finished with
exactly the expected rows, or failed with a reason, in the time promised.

Heartbeats, staleness and sweeps are shortened through the environment of the processes
(``STRATLAB_HEARTBEAT_SECONDS=1``, ``STRATLAB_STALE_SECONDS=4``,
``STRATLAB_RECONCILE_SECONDS=1``); the faults themselves come from
``tests.workers.fault_worker``, the app the workers here run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.db.models import Count

from tests.conftest import ROOT, WorkerProcess, database_url
from tests.factories import make_experiment
from webapp.experiments.models import (
    ChunkAttempt,
    Experiment,
    PoolProblem,
    Sample,
    Verdict,
)
from webapp.experiments.specs import StrategySpec

pytestmark = [pytest.mark.pipeline, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STALE_SECONDS = 4
MAX_BATCH_ROWS = 4
STRATEGIES = [StrategySpec(temperature=0.0, selector="first"),
              StrategySpec(temperature=0.8, selector="majority")]


class Cluster:
    """The app's processes for one test: workers by queue and the reconciler."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: list[WorkerProcess] = []

    def _start(self, name: str, cmd: list[str], ready: str, env: dict[str, str]) -> WorkerProcess:
        log = self.tmp_path / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        worker = WorkerProcess(process, log)
        self.processes.append(worker)
        deadline = time.monotonic() + 120
        while ready not in worker.output():
            if process.poll() is not None:
                pytest.fail(f"{name} exited early:\n{worker.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:\n{worker.output()[-3000:]}")
            time.sleep(0.1)
        return worker

    def worker(self, queue: str, **faults: str) -> WorkerProcess:
        """A ``-P solo`` worker on ``queue`` of the fault app, ready to take tasks."""
        cmd = [sys.executable, "-m", "celery", "-A", "tests.workers.fault_worker", "worker",
               "-Q", queue, "-P", "solo", "--loglevel", "INFO",
               "-n", f"{queue}-{os.getpid()}-{len(self.processes)}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        return self._start(f"{queue}-worker", cmd, "ready.", {**self.env, **faults})

    def reconciler(self) -> WorkerProcess:
        return self._start("reconciler", [sys.executable, "manage.py", "reconcile"],
                           "Reconciling every", self.env)

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-2500:]}" for p in self.processes)

    def stop_all(self) -> None:
        for worker in self.processes:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.processes:
            try:
                worker.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def kill(worker: WorkerProcess) -> None:
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)


def cluster_for(broker: str, tmp_path: Path, settings: Any, extra_models: dict[str, str],
                model_cache_dir: Path) -> Cluster:
    """Point this process (which submits) and the cluster's processes at one broker and
    the test database, with the same chunking on both sides."""
    from django.db import connection

    from workers.celery import app

    settings.CELERY_BROKER_URL = broker
    settings.STRATLAB_EXTRA_MODELS = extra_models
    settings.STRATLAB_MODEL_CACHE = model_cache_dir
    settings.STRATLAB_CHUNK_SIZE = 2
    settings.STRATLAB_MAX_BATCH_ROWS = MAX_BATCH_ROWS
    app.conf.broker_url = broker
    return Cluster(tmp_path, {
        **os.environ,
        "REDIS_URL": broker,
        "DATABASE_URL": database_url(connection.settings_dict),
        "STRATLAB_EXTRA_MODELS": json.dumps(extra_models),
        "STRATLAB_MODEL_CACHE": str(model_cache_dir),
        "STRATLAB_CHUNK_SIZE": "2",
        "STRATLAB_MAX_BATCH_ROWS": str(MAX_BATCH_ROWS),
        "STRATLAB_HEARTBEAT_SECONDS": "1",
        "STRATLAB_STALE_SECONDS": str(STALE_SECONDS),
        "STRATLAB_RECONCILE_SECONDS": "1",
        "STRATLAB_MAX_ATTEMPTS": "3",
        "STRATLAB_SANDBOX_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    })


@pytest.fixture
def cluster(transactional_db: None, redis_url: str, settings: Any, extra_models: dict[str, str],
            model_cache_dir: Path, tmp_path: Path) -> Iterator[Cluster]:
    running = cluster_for(redis_url, tmp_path, settings, extra_models, model_cache_dir)
    try:
        yield running
    finally:
        running.stop_all()
        import redis

        redis.Redis.from_url(redis_url).flushdb()


def wait_for(what: str, check: Callable[[], bool], cluster: Cluster, timeout: float) -> float:
    """Poll ``check`` until true; the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} did not happen within {timeout} s\n{cluster.logs()}")
        time.sleep(0.2)
    return time.monotonic() - started


def status_of(experiment: Experiment) -> str:
    return Experiment.objects.values_list("status", flat=True).get(pk=experiment.pk)


def is_done(experiment: Experiment) -> bool:
    return status_of(experiment) in {"finished", "failed", "cancelled"}


def assert_complete(experiment: Experiment) -> None:
    """Finished, with exactly the samples each pool owes each problem and a verdict each."""
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    problems = experiment.problems.count()
    for strategy in experiment.strategies.all():
        per_problem = (Sample.objects.filter(pool=strategy.pool).values("problem")
                       .annotate(c=Count("id"), indices=Count("index", distinct=True)))
        assert len(per_problem) == problems
        assert all(row["c"] == row["indices"] == strategy.n for row in per_problem), per_problem
    samples = Sample.objects.filter(pool__strategies__experiment=experiment).distinct()
    assert Verdict.objects.filter(sample__in=samples).count() == samples.count()
    assert PoolProblem.objects.filter(pool__strategies__experiment=experiment).distinct().count() \
        == problems * len({s.pool_id for s in experiment.strategies.all()})


def test_a_killed_generation_worker_loses_only_its_chunk(cluster: Cluster, team: Any) -> None:
    cluster.worker("cpu")
    gpu = cluster.worker("gpu", STRATLAB_TEST_BATCH_DELAY="0.8")
    cluster.reconciler()
    # Greedy (1 row) + 4 samples per problem fill more than a 4-row batch: one problem per
    # chunk, decoded in two batches, each stored as it finishes.
    experiment = make_experiment(team, n=4, strategies=STRATEGIES, name="killed gpu")

    wait_for("a first stored batch", Sample.objects.exists, cluster, timeout=120)
    in_flight = list(ChunkAttempt.objects.filter(
        experiment=experiment, key__startswith="generate:", started__isnull=False,
        finished__isnull=True))
    kill(gpu)
    assert in_flight, "the worker was killed between chunks, not in one"
    assert not is_done(experiment)

    cluster.worker("gpu")
    recovered = wait_for("the experiment's end", lambda: is_done(experiment), cluster,
                         timeout=90)
    print(f"killed gpu worker: finished {recovered:.1f} s after the new worker was up")
    assert recovered < 60, f"finished {recovered:.0f} s after the new worker was up"
    assert_complete(experiment)
    assert "its worker died" in cluster.logs()


def _slow_canonical(team: Any) -> Any:
    """HumanEval/0, its canonical solution made slow (0.6 s a call, about 4 s over its
    seven checks): a program the sandbox is running when the worker is killed."""
    from webapp.datasets.code import ensure_humaneval_dataset

    dataset = ensure_humaneval_dataset(team, size=1)
    problem = dataset.problems.get()
    problem.metadata = {**problem.metadata, "canonical_solution":
                        "    import time\n    time.sleep(0.6)\n"
                        + problem.metadata["canonical_solution"]}
    problem.save(update_fields=["metadata"])
    return dataset


def test_a_killed_cpu_worker_leaves_no_program_running(cluster: Cluster, team: Any) -> None:
    from tests.factories import make_code_experiment

    _slow_canonical(team)
    cpu = cluster.worker("cpu")
    cluster.worker("gpu")
    cluster.reconciler()
    experiment = make_code_experiment(
        team, [StrategySpec(temperature=0.8, selector="majority")], n=2, size=1,
        name="killed cpu")

    def verifying() -> bool:
        return ChunkAttempt.objects.filter(experiment=experiment, key__startswith="verify:",
                                           started__isnull=False, finished__isnull=True).exists()

    wait_for("the verification chunk", verifying, cluster, timeout=120)
    time.sleep(1.5)  # the canonical solution is running now (for about 4 s)
    sandbox = psutil.Process(cpu.process.pid).children(recursive=True)
    assert sandbox, "no sandbox process under the cpu worker"
    kill(cpu)
    _, alive = psutil.wait_procs(sandbox, timeout=10)
    assert not alive, f"left running after the worker died: {alive}"
    assert not Verdict.objects.exists()

    cluster.worker("cpu")
    recovered = wait_for("the experiment's end", lambda: is_done(experiment), cluster,
                         timeout=90)
    print(f"killed cpu worker: finished {recovered:.1f} s after the new worker was up")
    assert recovered < 60
    assert_complete(experiment)
    assert experiment.dataset.problems.get().metadata["canonical_status"] == "passed"


def test_a_chunk_that_kills_every_worker_fails_its_experiment_after_the_limit(
    cluster: Cluster, team: Any
) -> None:
    cluster.worker("cpu")
    env = {"STRATLAB_TEST_KILL_ON_PROMPT": "POISON"}
    gpu = cluster.worker("gpu", **env)
    cluster.reconciler()
    experiment = make_experiment(
        team, n=2, strategies=STRATEGIES[1:], name="poison",
        prompts=[("What is 2 + 2? POISON", "4"), ("What is 3 + 3?", "6"),
                 ("What is 4 + 4?", "8")],
    )
    deaths = 0
    started = time.monotonic()
    deadline = started + 150
    while not is_done(experiment):
        if gpu.process.poll() is not None:  # as manage.py up's supervisor does
            deaths += 1
            gpu = cluster.worker("gpu", **env)
        if time.monotonic() > deadline:
            pytest.fail(f"still {status_of(experiment)} after {deaths} deaths\n{cluster.logs()}")
        time.sleep(0.2)

    print(f"poison chunk: failed after {deaths} deaths, {time.monotonic() - started:.1f} s "
          "after submission")
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error.startswith("Generation of problems 0, 1 failed 3 times "
                                       "(STRATLAB_MAX_ATTEMPTS is 3)"), experiment.error
    assert "stopped beating" in experiment.error
    assert deaths == 3
    poison = ChunkAttempt.objects.get(experiment=experiment, key__startswith="generate:",
                                      attempts=3)
    assert poison.finished is None
    # Nothing more is delivered: the worker stays up and the count stays at three.
    time.sleep(STALE_SECONDS + 2)
    assert gpu.process.poll() is None
    poison.refresh_from_db()
    assert poison.attempts == 3


def test_it_finishes_when_redis_is_killed_and_started_again_mid_run(
    transactional_db: None, settings: Any, extra_models: dict[str, str],
    model_cache_dir: Path, tmp_path: Path, team: Any,
) -> None:
    from webapp.embedded_redis import EmbeddedRedis, free_port

    redis = EmbeddedRedis(tmp_path / "redis", free_port()).start()
    cluster = cluster_for(redis.url, tmp_path, settings, extra_models, model_cache_dir)
    try:
        cluster.worker("cpu")
        cluster.worker("gpu", STRATLAB_TEST_BATCH_DELAY="0.5")
        cluster.reconciler()
        experiment = make_experiment(team, n=4, strategies=STRATEGIES, name="redis restart")
        wait_for("a first stored batch", Sample.objects.exists, cluster, timeout=120)
        assert redis.process is not None
        redis.process.kill()  # SIGKILL: no final save, only what the append-only file has
        redis.process.wait()
        time.sleep(2)
        assert not is_done(experiment)
        redis.start()
        took = wait_for("the experiment's end", lambda: is_done(experiment), cluster,
                        timeout=120)
        print(f"redis restart: finished {took:.1f} s after Redis was up again")
        assert_complete(experiment)
    finally:
        cluster.stop_all()
        redis.stop()
