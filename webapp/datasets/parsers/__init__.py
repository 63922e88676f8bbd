"""Dataset file parsers: one module per format, each streaming ``Record``s.

``iter_records`` picks the parser for a format. Every parser reads a bounded amount at
a time (a line, a CSV record, a Parquet batch, one item of a JSON array), reports each
bad row to the ``ErrorLog`` with its location and field, and raises ``UploadError`` as
soon as the file passes ``max_rows`` rows. ``iter_batches`` gives the same rows of a CSV,
TSV or JSONL file as pyarrow batches when none would be reported (validation a column at
a time), and ``NeedsRowByRow`` otherwise.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pyarrow as pa

from webapp.datasets.parsers.base import (
    FORMATS,
    MAX_DEPTH,
    MAX_ERRORS,
    STOP_AFTER_ERRORS,
    ErrorLog,
    Record,
    UploadError,
    detect_format,
)
from webapp.datasets.parsers.delimited import NeedsRowByRow, iter_delimited, iter_delimited_batches
from webapp.datasets.parsers.json_array import iter_json_array
from webapp.datasets.parsers.jsonl import iter_jsonl, iter_jsonl_batches

__all__ = [
    "DEFAULT_MAX_FIELD_BYTES",
    "FORMATS",
    "MAX_DEPTH",
    "MAX_ERRORS",
    "STOP_AFTER_ERRORS",
    "ErrorLog",
    "NeedsRowByRow",
    "Record",
    "UploadError",
    "detect_format",
    "iter_batches",
    "iter_records",
]

DEFAULT_MAX_FIELD_BYTES = 1 << 20
# A JSON line or a physical CSV line may hold several fields of the maximum size.
RECORD_FIELDS = 8


def iter_records(path: Path, file_name: str, fmt: str, errors: ErrorLog, *, max_rows: int,
                 max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
                 max_record_bytes: int | None = None) -> Generator[Record, None, None]:
    """The good rows of ``path`` (shown to users as ``file_name``) in format ``fmt``.

    Bad rows go to ``errors``, which must be empty of them before anything is stored;
    passing ``max_rows`` raises ``UploadError`` at once. A line (JSONL, CSV) or an item
    (JSON array) longer than ``max_record_bytes`` (default 8 fields' worth) is an error.
    """
    del file_name  # the ErrorLog names the file in every message
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if max_rows < 0 or max_field_bytes < 1:
        raise ValueError("max_rows must be >= 0 and max_field_bytes >= 1")
    record_bytes = max_record_bytes or RECORD_FIELDS * max_field_bytes
    path = Path(path)
    if fmt == "jsonl":
        return iter_jsonl(path, errors, max_rows=max_rows, max_field_bytes=max_field_bytes,
                          max_record_bytes=record_bytes)
    if fmt == "json":
        return iter_json_array(path, errors, max_rows=max_rows,
                               max_field_bytes=max_field_bytes, max_record_bytes=record_bytes)
    if fmt in ("csv", "tsv"):
        return iter_delimited(path, errors, delimiter="," if fmt == "csv" else "\t",
                              max_rows=max_rows, max_field_bytes=max_field_bytes,
                              max_record_bytes=record_bytes)
    # pyarrow.parquet takes a while to import: only when a Parquet file comes.
    from webapp.datasets.parsers.parquet import iter_parquet

    return iter_parquet(path, errors, max_rows=max_rows, max_field_bytes=max_field_bytes)


def iter_batches(path: Path, fmt: str, *, max_rows: int,
                 max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
                 max_record_bytes: int | None = None) -> Generator[pa.RecordBatch, None, None]:
    """The rows ``iter_records`` gives of a CSV, TSV or JSONL file, as batches, when it
    would report nothing; ``NeedsRowByRow`` otherwise, and for other formats. A CSV gives
    string columns; a JSONL file flat columns (strings, numbers, booleans), null where a
    line lacks the field."""
    record_bytes = max_record_bytes or RECORD_FIELDS * max_field_bytes
    if fmt == "jsonl":
        return iter_jsonl_batches(Path(path), max_rows=max_rows,
                                  max_field_bytes=max_field_bytes,
                                  max_record_bytes=record_bytes)
    if fmt not in ("csv", "tsv"):
        raise NeedsRowByRow
    return iter_delimited_batches(
        Path(path), delimiter="," if fmt == "csv" else "\t", max_rows=max_rows,
        max_field_bytes=max_field_bytes, max_record_bytes=record_bytes)
