"""One shared Sandbox for the folder, with a secret in the environment and a hidden directory.

The secret is put in this process's environment and in files under a hidden directory
before the Sandbox starts, so that every test can assert it never reaches a program.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workers.sandbox import Sandbox

SECRET_ENV = "STRATLAB_SANDBOX_TEST_SECRET"


@dataclass(frozen=True)
class Secrets:
    """Where the secret lives on the host, and a readable file beside the hidden ones."""

    token: str
    hidden_dir: Path  # given as hidden_paths; holds secret.txt
    hidden_file: Path  # given as hidden_paths itself; its directory is not hidden
    public_file: Path  # beside hidden_file, readable by anyone: proves the path is reachable


def _world_readable_base() -> Path:
    """A writable place outside /tmp (which the sandbox replaces anyway) that others can enter."""
    for candidate in ("/var/lib", "/opt", str(Path.home())):
        path = Path(candidate)
        if os.access(path, os.W_OK) and path.stat().st_mode & 0o001:
            return path
    return Path.home()


@pytest.fixture(scope="session")
def planted() -> Iterator[Secrets]:
    token = "s3cret-" + secrets.token_hex(12)
    os.environ[SECRET_ENV] = token
    base = Path(tempfile.mkdtemp(prefix="stratlab-sandbox-test-", dir=_world_readable_base()))
    base.chmod(0o755)
    hidden_dir = base / "data"
    hidden_dir.mkdir(mode=0o755)
    (hidden_dir / "secret.txt").write_text(token)
    other = base / "other"
    other.mkdir(mode=0o755)
    hidden_file = other / "secret.txt"
    hidden_file.write_text(token)
    public_file = other / "public.txt"
    public_file.write_text("public")
    for path in (hidden_dir / "secret.txt", hidden_file, public_file):
        path.chmod(0o644)
    try:
        yield Secrets(token, hidden_dir, hidden_file, public_file)
    finally:
        os.environ.pop(SECRET_ENV, None)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox(planted: Secrets) -> Iterator[Sandbox]:
    with Sandbox(workers=2, hidden_paths=[planted.hidden_dir, planted.hidden_file]) as box:
        yield box
