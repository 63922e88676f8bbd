"""JSON lines: one object per line, read as bytes and split on ``\\n`` only.

Splitting on ``b"\\n"`` (not ``str.splitlines``) keeps U+2028 and U+2029 inside strings
from being taken for line breaks. Each line is decoded as strict UTF-8; a BOM at the
start, CRLF endings, blank lines and a missing final newline are accepted.

``iter_jsonl_batches`` gives the same rows as pyarrow batches when none would be
reported and every line holds one flat object, for pass 1 a column at a time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from webapp.datasets.parsers._json import JsonDecoder, decode_problem, json_type
from webapp.datasets.parsers.base import (
    MAX_DEPTH,
    ErrorLog,
    Record,
    check_fields,
    iter_lines,
    no_rows,
    row_limit_error,
    strip_bom,
    utf8_error,
)
from webapp.datasets.parsers.delimited import NeedsRowByRow

BATCH_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"
# Column types whose values the row path stores as they are, whatever they hold (doubles
# once checked finite): a nested value, which the row path may refuse, takes that path.
_FLAT = (pa.types.is_string, pa.types.is_int64, pa.types.is_boolean, pa.types.is_null,
         pa.types.is_timestamp)


def iter_jsonl(path: Path, errors: ErrorLog, *, max_rows: int, max_field_bytes: int,
               max_record_bytes: int) -> Iterator[Record]:
    """The objects of a JSON-lines file; every bad line is reported to ``errors``."""
    decoder = JsonDecoder()
    rows = 0
    with open(path, "rb") as stream:
        for number, raw in iter_lines(stream, max_record_bytes):
            if errors.is_full:
                errors.stop()
                return
            location = f"line {number}"
            if raw is not None:
                if number == 1:
                    raw = strip_bom(raw)
                if not raw.strip():
                    continue
            rows += 1
            if rows > max_rows:
                raise row_limit_error(errors, location, max_rows)
            if raw is None:
                errors.add(location, f"is longer than {max_record_bytes} bytes")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.add(location, utf8_error(exc))
                continue
            try:
                value = decoder.decode(text)
            except (ValueError, RecursionError) as exc:
                errors.add(location, decode_problem(exc))
                continue
            if decoder.problem:
                decoder.report(value, location, errors)
                continue
            if not isinstance(value, dict):
                errors.add(location, f"must be a JSON object, not {json_type(value)}")
                continue
            # As _json.needs_check, inlined: most lines need no walk.
            if (len(raw) > max_field_bytes or b"\\u" in raw
                    or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH) and not check_fields(
                        value, location, errors, max_field_bytes):
                continue
            yield Record(location, value)
    if rows == 0:
        no_rows(errors)


def iter_jsonl_batches(path: Path, *, max_rows: int, max_field_bytes: int,
                       max_record_bytes: int) -> Iterator[pa.RecordBatch]:
    """The rows ``iter_jsonl`` gives, as pyarrow batches, when it would report nothing
    and each line is one flat object starting with ``{`` and ending with ``}`` (no blank
    lines): strings, numbers, booleans and nulls. A missing field is null.

    Raises ``NeedsRowByRow`` (maybe after some batches) in every other case, including
    anything pyarrow and ``json`` could read differently: a ``\\u0000`` escape, a BOM
    past the start, a line holding two objects. The file is read in blocks of whole
    lines of about ``BATCH_BYTES``.
    """
    options = pa_json.ReadOptions(use_threads=False, block_size=2 * BATCH_BYTES)
    rows = 0
    with open(path, "rb") as stream:
        first = True
        while block := stream.read(BATCH_BYTES):
            if not block.endswith(b"\n"):
                rest = stream.readline(max_record_bytes + 1)
                if len(rest) > max_record_bytes and not rest.endswith(b"\n"):
                    raise NeedsRowByRow  # "is longer than ... bytes"
                block += rest
            if first:
                block, first = strip_bom(block), False
            lines = _whole_objects(block, max_record_bytes)
            rows += lines
            if rows > max_rows:
                raise NeedsRowByRow
            options.block_size = max(options.block_size, len(block) + 1)
            try:
                table = pa_json.read_json(io.BytesIO(block), read_options=options)
            except (pa.ArrowException, ValueError):
                raise NeedsRowByRow from None
            if table.num_rows != lines:
                raise NeedsRowByRow  # a line holding more than one object
            _require_storable(table, max_field_bytes)
            yield from table.combine_chunks().to_batches()
    if rows == 0:
        raise NeedsRowByRow


def _whole_objects(block: bytes, max_record_bytes: int) -> int:
    """The number of lines of ``block``, each of which must start with ``{`` and end
    with ``}`` (then CRLF or LF) and be valid UTF-8 without the escapes only the row
    path judges; ``NeedsRowByRow`` otherwise."""
    if b"\\u0000" in block or _BOM in block:
        raise NeedsRowByRow  # a NUL character; a BOM json reads as text
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        raise NeedsRowByRow from None
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    starts = np.concatenate(([0], ends[:-1] + 1))
    if (ends - starts).max() > max_record_bytes or (starts >= ends).any():
        raise NeedsRowByRow  # too long, or blank
    last = ends - 1
    last = last - ((data[last] == ord("\r")) & (last > starts))
    if not ((data[starts] == ord("{")).all() and (data[last] == ord("}")).all()):
        raise NeedsRowByRow
    return len(ends)


def _require_storable(table: pa.Table, max_field_bytes: int) -> None:
    """``NeedsRowByRow`` for a field the row path would report or might: a name or a
    text too long, a number JSON cannot hold, a nested value."""
    for field, column in zip(table.schema, table.columns, strict=True):
        if len(field.name.encode("utf-8")) > max_field_bytes:
            raise NeedsRowByRow
        if pa.types.is_floating(field.type):
            if not pc.all(pc.is_finite(column)).as_py():
                raise NeedsRowByRow  # NaN, Infinity
        elif not any(flat(field.type) for flat in _FLAT) or (
                pa.types.is_string(field.type)
                and (pc.max(pc.binary_length(column)).as_py() or 0) > max_field_bytes):
            raise NeedsRowByRow
