"""``manage.py up``: DEBUG off by default, and a supervisor that restarts dead children."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from unittest import mock

import pytest

from webapp.experiments.management.commands import up
from webapp.supervisor import ChildFailed, Supervisor


class FakeProcess:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self.code: int | None = None
        self.stopped = False

    def poll(self) -> int | None:
        return self.code

    def stop(self) -> None:
        self.stopped = True


class Factory:
    """Hands out FakeProcesses and remembers them."""

    def __init__(self, name: str, fail: int = 0) -> None:
        self.name = name
        self.started: list[FakeProcess] = []
        self.fail = fail

    def __call__(self) -> FakeProcess:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("port 6390 is already in use")
        self.started.append(FakeProcess(self.name))
        return self.started[-1]


# --- The supervisor ---------------------------------------------------------------


def test_it_restarts_a_dead_child_and_names_its_log(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(said.append)
    redis, worker = Factory("redis"), Factory("gpu worker")
    supervisor.start("Redis", tmp_path / "redis" / "redis.log", redis)
    supervisor.start("gpu worker", tmp_path / "logs" / "gpu-worker.log", worker)
    assert supervisor.check() == []

    worker.started[0].code = -9
    assert supervisor.check() == ["gpu worker"]
    assert len(worker.started) == 2 and len(redis.started) == 1
    assert said == [
        "The gpu worker process exited with code -9; restarted it (restart 1 of at most 5 "
        f"in 300 s). See {tmp_path / 'logs' / 'gpu-worker.log'}"
    ]
    assert supervisor.check() == []  # the new one is alive


def test_it_gives_up_on_a_child_that_keeps_dying(tmp_path: Path) -> None:
    now = [0.0]
    supervisor = Supervisor(lambda line: None, max_restarts=2, window=60,
                            clock=lambda: now[0])
    web = Factory("web")
    supervisor.start("web", tmp_path / "web.log", web)
    for _ in range(2):
        web.started[-1].code = 1
        now[0] += 10
        supervisor.check()
    web.started[-1].code = 1
    with pytest.raises(ChildFailed, match=r"web process exited with code 1 after 2 .*web\.log"):
        supervisor.check()


def test_it_forgets_restarts_outside_the_window(tmp_path: Path) -> None:
    now = [0.0]
    supervisor = Supervisor(lambda line: None, max_restarts=1, window=60,
                            clock=lambda: now[0])
    worker = Factory("cpu worker")
    supervisor.start("cpu worker", tmp_path / "cpu-worker.log", worker)
    for _ in range(3):
        worker.started[-1].code = -9
        now[0] += 61
        assert supervisor.check() == ["cpu worker"]


def test_it_retries_a_restart_that_failed(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(said.append)
    redis = Factory("redis")
    supervisor.start("Redis", tmp_path / "redis.log", redis)
    redis.fail = 1
    redis.started[0].code = 0
    assert supervisor.check() == []
    assert "restarting it failed (port 6390 is already in use); trying again" in said[0]
    assert supervisor.check() == ["Redis"]
    assert said[1].startswith("The Redis process could not be started; restarted it")


def test_it_stops_everything_in_reverse_order_even_if_one_stop_fails(tmp_path: Path) -> None:
    order: list[str] = []

    class Recording(FakeProcess):
        def stop(self) -> None:
            order.append(self.name)
            if self.name == "cpu worker":
                raise OSError("already gone")

    supervisor = Supervisor(lambda line: None)
    for name in ("Redis", "gpu worker", "cpu worker", "web"):
        supervisor.start(name, tmp_path / f"{name}.log", lambda name=name: Recording(name))
    supervisor.stop_all()
    assert order == ["web", "cpu worker", "gpu worker", "Redis"]


# --- The command ------------------------------------------------------------------


def test_it_runs_children_with_debug_off_unless_dev(tmp_path: Path) -> None:
    env = up.child_environment({"PATH": "/bin"}, tmp_path, dev=False, host="127.0.0.1")
    assert env["DEBUG"] == "false"
    key = env["SECRET_KEY"]
    assert len(key) >= 50
    assert (tmp_path / "secret-key.txt").stat().st_mode & 0o777 == 0o600
    assert env["SESSION_COOKIE_SECURE"] == env["CSRF_COOKIE_SECURE"] == "false"
    assert env["STATIC_ROOT"] == str(tmp_path / "static")
    # The same key on the next run: sessions survive a restart.
    assert up.child_environment({}, tmp_path, dev=False, host="127.0.0.1")["SECRET_KEY"] == key
    # The operator's own settings win.
    mine = up.child_environment({"SECRET_KEY": "k" * 60}, tmp_path, dev=False, host="127.0.0.1")
    assert mine["SECRET_KEY"] == "k" * 60

    dev = up.child_environment({}, tmp_path, dev=True, host="127.0.0.1")
    assert dev["DEBUG"] == "true"
    assert "SECRET_KEY" not in dev


def test_it_restarts_a_killed_worker_and_stops_all_on_ctrl_c(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path
    settings.REDIS_URL = ""
    spawned: list[tuple[list[str], Path, FakeProcess]] = []

    def popen_process(cmd: list[str], env: dict[str, str], log: Path) -> FakeProcess:
        assert env["DEBUG"] == "false"
        spawned.append((cmd, log, FakeProcess(" ".join(cmd[-6:]))))
        return spawned[-1][2]

    redis = FakeProcess("redis")
    embedded = mock.Mock(url="redis://127.0.0.1:6390/0", log=tmp_path / "redis" / "redis.log")
    embedded.start.return_value = redis
    sleeps = [0]

    def sleep(seconds: float) -> None:
        sleeps[0] += 1
        if sleeps[0] == 1:  # the gpu worker is SIGKILLed
            spawned[0][2].code = -9
        elif sleeps[0] == 2:
            raise KeyboardInterrupt

    out = StringIO()
    command = up.Command(stdout=out, stderr=StringIO())
    listening = iter([False, True])
    with mock.patch.object(up, "PopenProcess", popen_process), \
            mock.patch.object(up, "EmbeddedRedis", return_value=embedded), \
            mock.patch.object(up, "call_command"), \
            mock.patch.object(up, "is_listening", lambda *a: next(listening)), \
            mock.patch.object(up, "ensure_demo_login", return_value=("demo", "pw")), \
            mock.patch.object(up.signal, "signal"), \
            mock.patch.object(up.time, "sleep", sleep), \
            mock.patch.object(up.Command, "_collectstatic") as collectstatic:
        command.handle(host="127.0.0.1", port=8000, no_demo=True, dev=False)

    collectstatic.assert_called_once()
    text = out.getvalue()
    gpu_log = tmp_path / "logs" / "gpu-worker.log"
    assert "The gpu worker process exited with code -9; restarted it" in text
    assert f"See {gpu_log}" in text
    assert [log.name for _cmd, log, _p in spawned] == [
        "gpu-worker.log", "cpu-worker.log", "reconciler.log", "web.log", "gpu-worker.log"]
    assert spawned[2][0][-2:] == ["manage.py", "reconcile"]
    assert spawned[4][0] == spawned[0][0]  # the same worker command again
    assert all(p.stopped for _c, _l, p in spawned[1:]) and redis.stopped
    assert "Stopped." in text
    assert "DEBUG off; --dev turns it on" in text


