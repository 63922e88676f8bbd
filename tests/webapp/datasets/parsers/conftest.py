"""Helpers for the parser tests: write a file, parse it, return the rows and the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webapp.datasets.parsers import ErrorLog, iter_records

Parse = Callable[..., tuple[list[tuple[str, dict[str, Any]]], ErrorLog]]


@pytest.fixture
def parse(tmp_path: Path) -> Parse:
    """``parse(name, data, fmt=..., **limits)``: the good rows as (location, fields)."""

    def run(name: str, data: bytes | str, fmt: str, *, max_rows: int = 10_000,
            **kwargs: Any) -> tuple[list[tuple[str, dict[str, Any]]], ErrorLog]:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        errors = ErrorLog(name)
        rows = [(r.location, r.fields)
                for r in iter_records(path, name, fmt, errors, max_rows=max_rows, **kwargs)]
        return rows, errors

    return run
