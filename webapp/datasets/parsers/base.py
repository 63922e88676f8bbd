"""What every format parser shares: the error log, the record, the value checks.

A parser streams a file into ``Record``s and reports every bad row to an ``ErrorLog``
with its location (``line 12``, ``record 5 (line 7)``, ``row 10``) and, where one is
to blame, the field. Nothing here imports Django: the parsers are plain functions over
a path, so they can be tested, benchmarked and reused on their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_ERRORS = 50
# Parsing past this many errors only costs time: the user already has 50 to fix.
STOP_AFTER_ERRORS = 10_000
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
ROW_LIMIT_SETTING = "STRATLAB_DATASET_MAX_ROWS"
SUMMARY_MESSAGES = 5
# Deeper values are refused: they would overflow the stack of whoever serialises or
# renders them later (json.dumps, templates).
MAX_DEPTH = 100

_EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
    ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
}
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"


class ErrorLog:
    """Located errors of one file: the first ``max_errors`` messages, and the total."""

    def __init__(self, file_name: str, max_errors: int = MAX_ERRORS, *,
                 stop_after: int = STOP_AFTER_ERRORS) -> None:
        self.file_name = file_name
        self.max_errors = max_errors
        self.stop_after = max(stop_after, max_errors)
        self._messages: list[str] = []
        self._total = 0
        self._stopped = False

    def add(self, location: str, message: str, field: str | None = None) -> None:
        """Count one error; keep its message while fewer than ``max_errors`` are kept."""
        self._total += 1
        if len(self._messages) < self.max_errors:
            self._messages.append(self.format(location, message, field))

    def format(self, location: str, message: str, field: str | None = None) -> str:
        where = self.file_name + (f", {location}" if location else "")
        if field:
            where += f", field {field!r}"
        return f"{where}: {message}"

    @property
    def total(self) -> int:
        return self._total

    @property
    def messages(self) -> list[str]:
        """The kept messages, then "stopped after N errors" when parsing was cut short."""
        if self._stopped:
            return [*self._messages, f"{self.file_name}: stopped after {self._total} errors"]
        return list(self._messages)

    @property
    def is_full(self) -> bool:
        """Whether a parser should stop reading (and say so): ``stop_after`` reached."""
        return self._total >= self.stop_after

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Mark the log as cut short; ``messages`` then ends with "stopped after N errors"."""
        self._stopped = True

    def __bool__(self) -> bool:
        return self._total > 0

    def __len__(self) -> int:
        return self._total

    def raise_if_any(self) -> None:
        if self._total:
            raise UploadError(self)


class UploadError(ValueError):
    """A file that cannot be stored, with its located messages (capped) and the total."""

    def __init__(self, errors: ErrorLog) -> None:
        self.file_name = errors.file_name
        self.errors = errors.messages
        self.total = errors.total
        noun = "error" if self.total == 1 else "errors"
        shown = "; ".join(self.errors[:SUMMARY_MESSAGES])
        more = "; ..." if len(self.errors) > SUMMARY_MESSAGES else ""
        super().__init__(f"{self.total} {noun} in {self.file_name}: {shown}{more}")


@dataclass(frozen=True)
class Record:
    """One row of a file: where it is (for messages) and its fields."""

    location: str
    fields: dict[str, Any]


def detect_format(file_name: str, head: bytes) -> str:
    """The format of a file, from its extension, else from its first bytes.

    A ``.json`` file whose first value is an object is read as JSON lines: Hugging Face
    ``to_json`` writes one object per line under that extension.

    >>> detect_format("gsm8k.jsonl", b""), detect_format("x.JSON", b" [{}]")
    ('jsonl', 'json')
    >>> detect_format("train.json", b'{"a": 1}\\n{"a": 2}\\n'), detect_format("blob", b"PAR1")
    ('jsonl', 'parquet')
    """
    name = file_name.lower()
    suffix = name[name.rfind("."):] if "." in name else ""
    fmt = _EXTENSIONS.get(suffix)
    first = head[len(_BOM):] if head.startswith(_BOM) else head
    first = first.lstrip(_WHITESPACE)[:1]
    if fmt == "json" and first == b"{":
        return "jsonl"
    if fmt is not None:
        return fmt
    if head.startswith(b"PAR1"):
        return "parquet"
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    raise ValueError(f"{file_name}: cannot tell the file's format; use one of the extensions "
                     ".jsonl, .json, .csv, .tsv or .parquet")


def row_limit_error(errors: ErrorLog, location: str, max_rows: int) -> UploadError:
    """Record the row-limit error at ``location`` and return the error to raise."""
    errors.add(location, f"more than {max_rows} rows: the limit is {ROW_LIMIT_SETTING}")
    return UploadError(errors)


def no_rows(errors: ErrorLog) -> None:
    errors.add("", "has no rows")


def check_text(value: str, max_field_bytes: int) -> str | None:
    """Why a string cannot be stored (NUL, unpaired surrogate, too long), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if len(value) * 4 > max_field_bytes or not value.isascii():
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (\\ud800-\\udfff), which is not valid text"
        if size > max_field_bytes:
            return f"is longer than {max_field_bytes} bytes"
    return None


def check_value(value: Any, max_field_bytes: int, depth: int = 0) -> str | None:
    """Why a decoded value (nested lists/dicts) cannot be stored as JSON text, or None."""
    if isinstance(value, str):
        return check_text(value, max_field_bytes)
    if isinstance(value, float):
        return None if math.isfinite(value) else f"holds {value!r}, which JSON cannot hold"
    if value is None or isinstance(value, (bool, int)):
        return None
    if depth > MAX_DEPTH:
        return "is nested too deeply"
    if isinstance(value, list):
        for item in value:
            problem = check_value(item, max_field_bytes, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = (check_text(key, max_field_bytes) if isinstance(key, str)
                       else "has a key that is not a string")
            problem = problem or check_value(item, max_field_bytes, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, bytes):
        return "holds binary data that is not UTF-8 text"
    return f"holds a {type(value).__name__}, which JSON cannot hold"


def check_fields(fields: dict[str, Any], location: str, errors: ErrorLog,
                 max_field_bytes: int) -> bool:
    """Report every field that cannot be stored; True when all can."""
    ok = True
    for name, value in fields.items():
        problem = check_text(name, max_field_bytes)
        if problem:
            errors.add(location, f"its name {problem}", name)
            ok = False
            continue
        problem = check_value(value, max_field_bytes)
        if problem:
            errors.add(location, problem, name)
            ok = False
    return ok


def iter_lines(stream: Any, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """Physical lines of a binary stream split on ``b"\\n"`` only, numbered from 1.

    A line longer than ``limit`` bytes is skipped without being held in memory and
    yielded as ``None``. The newline is kept.
    """
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(1 << 16)
            yield number, None
            continue
        yield number, line


def utf8_error(exc: UnicodeDecodeError) -> str:
    return f"is not valid UTF-8 (byte {exc.start + 1})"


def strip_bom(line: bytes) -> bytes:
    return line[len(_BOM):] if line.startswith(_BOM) else line
