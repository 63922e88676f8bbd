"""JSON lines: one object per line, read as bytes and split on ``\\n`` only.

Splitting on ``b"\\n"`` (not ``str.splitlines``) keeps U+2028 and U+2029 inside strings
from being taken for line breaks. Each line is decoded as strict UTF-8; a BOM at the
start, CRLF endings, blank lines and a missing final newline are accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
