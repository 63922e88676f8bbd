"""How export rows become bytes: CSV (with the CSV-injection rule), streamed JSON and
JSONL, and a safe ``Content-Disposition``. No database here: ``exports`` hands in the
rows as tuples in column order, and a callable for the head, run when streaming starts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from django.utils.text import slugify

#: Bytes gathered before a chunk is handed to the response.
FLUSH_BYTES = 64 * 1024

# Column kinds: text cells get the CSV-injection rule; numbers and booleans are ours.
TEXT, INT, FLOAT, BOOL, LIST = "text", "int", "float", "bool", "list"
Columns = Sequence[tuple[str, str]]

#: A text cell starting with one of these is a formula to a spreadsheet (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def content_disposition(filename: str) -> str:
    """An attachment header (RFC 6266): an ASCII ``filename`` always, and ``filename*``
    (RFC 5987, UTF-8) when the name has other characters.

    >>> content_disposition("run-3-samples.csv")
    'attachment; filename="run-3-samples.csv"'
    >>> content_disposition("données-3-samples.csv")
    'attachment; filename="donnees-3-samples.csv"; filename*=UTF-8\\'\\'donn%C3%A9es-3-samples.csv'
    """
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    ascii_stem = "-".join(slugify(part) for part in stem.split("-") if slugify(part))
    ascii_ext = re.sub(r"[^A-Za-z0-9]", "", ext)
    fallback = (ascii_stem or "export") + (f".{ascii_ext}" if ascii_ext else "")
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def csv_text(value: str) -> str:
    """A text cell made inert for spreadsheets: a leading ``'`` when it starts with a
    formula character (OWASP CSV injection).

    >>> csv_text("=HYPERLINK(1)"), csv_text("-5"), csv_text("5 - 3")
    ("'=HYPERLINK(1)", "'-5", '5 - 3')
    """
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    return csv_text(value if type(value) is str else str(value))


def _float(value: Any) -> Any:
    return value if value is not None and math.isfinite(value) else ""


def _bool(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def _list(value: Any) -> str:
    return csv_text("; ".join(map(str, value))) if value else ""


#: How a column's values become CSV cells (None: as they are; ``csv`` writes None as an
#: empty cell and numbers as numbers).
CSV_CELLS: dict[str, Callable[[Any], Any] | None] = {
    TEXT: _text, INT: None, FLOAT: _float, BOOL: _bool, LIST: _list,
}


def csv_chunks(columns: Columns, rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """A header row, then one row per tuple (``csv`` module, UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name for name, _ in columns])
    cells = [CSV_CELLS[kind] for _, kind in columns]
    for row in rows:
        writer.writerow([value if cell is None else cell(value)
                         for cell, value in zip(cells, row, strict=True)])
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def json_value(value: Any) -> Any:
    """Non-finite floats have no JSON spelling: ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def row_objects(columns: Columns, rows: Iterable[Sequence[Any]],
                kind: str | None = None) -> Iterator[dict[str, Any]]:
    """Each tuple as an object keyed by column (``kind`` first when given)."""
    names = [name for name, _ in columns]
    for row in rows:
        obj: dict[str, Any] = {"kind": kind} if kind else {}
        obj.update(zip(names, map(json_value, row), strict=True))
        yield obj


def buffered(parts: Iterable[str]) -> Iterator[bytes]:
    """The parts joined into chunks of about ``FLUSH_BYTES``."""
    pending: list[str] = []
    size = 0
    for part in parts:
        pending.append(part)
        size += len(part)
        if size >= FLUSH_BYTES:
            yield "".join(pending).encode()
            pending, size = [], 0
    if pending:
        yield "".join(pending).encode()


def json_chunks(head: Callable[[], dict[str, Any]], columns: Columns,
                rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One document: the head's keys, then ``"rows": [...]`` written a row at a time."""
    def parts() -> Iterator[str]:
        yield dumps(head())[:-1] + ', "rows": ['
        for i, obj in enumerate(row_objects(columns, rows)):
            yield ("\n" if i == 0 else ",\n") + dumps(obj)
        yield "\n]}\n"

    return buffered(parts())


def jsonl_chunks(head: Callable[[], dict[str, Any]], columns: Columns,
                 rows: Iterable[Sequence[Any]], kind: str) -> Iterator[bytes]:
    """The head on the first line, then one object per row with its ``kind``."""
    def objects() -> Iterator[dict[str, Any]]:
        yield head()
        yield from row_objects(columns, rows, kind)

    return jsonl_lines(objects())


def jsonl_lines(objects: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    return buffered(dumps(obj) + "\n" for obj in objects)
