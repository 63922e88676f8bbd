"""Parquet (a Hugging Face export, say) through ``pyarrow``, a batch of rows at a time.

Nested values (lists, structs, maps) become Python lists and dicts; dates and times
become ISO strings, decimals strings, durations seconds; binary that is UTF-8 becomes
text. Anything else that JSON cannot hold is reported with its row and column.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from webapp.datasets.parsers.base import (
    ErrorLog,
    Record,
    check_fields,
    no_rows,
    row_limit_error,
)

BATCH_ROWS = 1024
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError)


def iter_parquet(path: Path, errors: ErrorLog, *, max_rows: int, max_field_bytes: int,
                 batch_rows: int = BATCH_ROWS) -> Iterator[Record]:
    """The rows of a Parquet file as column -> value; bad rows are reported."""
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        total = parquet.metadata.num_rows
    except _READ_ERRORS as exc:
        errors.add("", f"is not a readable Parquet file ({_short(exc)})")
        return
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        for name in repeated:
            errors.add("", f"has the column {name!r} more than once")
        return
    if total > max_rows:
        # The footer says how many rows there are: no need to read them to refuse.
        raise row_limit_error(errors, f"row {max_rows + 1}", max_rows)
    batches = parquet.iter_batches(batch_size=batch_rows)
    row = 0
    while True:
        try:
            batch = next(batches, None)
            values = [] if batch is None else batch.to_pylist()
        except _READ_ERRORS as exc:
            errors.add(f"row {row + 1}", f"cannot be read: the Parquet file is corrupt "
                       f"({_short(exc)})")
            return
        if batch is None:
            break
        for fields in values:
            if errors.is_full:
                errors.stop()
                return
            row += 1
            location = f"row {row}"
            if row > max_rows:
                raise row_limit_error(errors, location, max_rows)
            record = {name: _plain(value) for name, value in fields.items()}
            if check_fields(record, location, errors, max_field_bytes):
                yield Record(location, record)
    if row == 0:
        no_rows(errors)


def _plain(value: Any) -> Any:
    """A JSON-able equivalent of a value ``pyarrow`` gives, where there is an obvious one."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):  # a map entry (key, value)
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
