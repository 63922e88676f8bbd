"""The embedded Redis keeps its data: a snapshot and an append-only file."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from webapp.embedded_redis import EmbeddedRedis, free_port, server_arguments


def test_it_passes_each_save_value_as_its_own_argument(tmp_path: Path) -> None:
    args = server_arguments(6390, tmp_path)
    at = args.index("--save")
    assert args[at:at + 3] == ["--save", "60", "1"]
    assert args[args.index("--appendonly") + 1] == "yes"


def test_it_snapshots_and_appends_in_its_data_directory(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, free_port()).start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("save") == {"save": "60 1"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("dir") == {"dir": str(tmp_path)}
        client.close()
    finally:
        server.stop()


def test_it_keeps_queued_messages_when_killed(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path, port).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.lpush("gpu", "a queued task message")
        aof = tmp_path / "redis.aof"
        deadline = time.monotonic() + 5  # appendfsync everysec
        while b"a queued task message" not in (aof.read_bytes() if aof.exists() else b""):
            assert time.monotonic() < deadline, "the append-only file never got the message"
            time.sleep(0.1)
        client.close()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)  # no shutdown save: only the AOF
        server.process.wait()
        assert server.poll() == -signal.SIGKILL

        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.lrange("gpu", 0, -1) == [b"a queued task message"]
        client.close()
    finally:
        server.stop()
