"""CSV and TSV through the ``csv`` module: a header row, then one record per row.

Physical lines are read as bytes split on ``b"\\n"`` and decoded one at a time, so a
line that is not UTF-8 is named, and quoted fields spanning lines keep their bytes
(``\\r\\n`` included) exactly. ``csv.field_size_limit`` bounds a field, so an unbalanced
quote cannot swallow the rest of the file into memory.
"""

from __future__ import annotations

import csv
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import AnyStr, BinaryIO

from webapp.datasets.parsers.base import (
    ErrorLog,
    Record,
    check_text,
    no_rows,
    row_limit_error,
    strip_bom,
    utf8_error,
)

BLOCK_BYTES = 1 << 18
_OTHER_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


class _Lines:
    """Decoded physical lines for ``csv.reader``, noting UTF-8 errors and long lines.

    Reads blocks, decodes each at once and splits it on ``\\n`` (keeping the ends, as
    the csv module wants): per-line reads cost more than the csv parsing itself.
    """

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        self.stream = stream
        self.max_line_bytes = max_line_bytes
        # (line, message) for lines that are not UTF-8, given to the reader decoded with
        # replacement characters: the record holding one is reported, not kept.
        self.bad_lines: deque[tuple[int, str]] = deque()
        self.too_long_line = 0

    def report_bad_text(self, last_line: int, errors: ErrorLog) -> bool:
        """Report the lines up to ``last_line`` that were not UTF-8; whether there were any."""
        found = False
        while self.bad_lines and self.bad_lines[0][0] <= last_line:
            line, message = self.bad_lines.popleft()
            errors.add(f"line {line}", message)
            found = True
        return found

    def __iter__(self) -> Iterator[str]:
        # Blocks no longer than a line may be: only a line that began in an earlier
        # block can then be too long, and it is the first line of the data.
        size = min(BLOCK_BYTES, self.max_line_bytes)
        number = 0  # lines given so far
        pending = b""
        while True:
            block = self.stream.read(size)
            eof = not block
            data = pending + block if pending else block
            del block
            if not data:
                return
            first_end = data.find(b"\n") + 1 or len(data)
            cut = len(data) if eof else data.rfind(b"\n") + 1
            if (pending and first_end > self.max_line_bytes) or (
                    cut == 0 and len(data) > self.max_line_bytes):
                self.too_long_line = number + 1
                return
            if cut == 0:
                pending = data
                continue
            chunk, pending = data[:cut], data[cut:]
            del data
            if number == 0:
                chunk = strip_bom(chunk)
            lines = self._split(chunk, number)
            del chunk
            number += len(lines)
            yield from lines
            if eof:
                return

    def _split(self, chunk: bytes, number: int) -> list[str]:
        """The lines of ``chunk``, the first being line ``number + 1``."""
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            lines = []
            for offset, raw in enumerate(_keep_ends(chunk), start=1):
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    self.bad_lines.append((number + offset, utf8_error(exc)))
                    lines.append(raw.decode("utf-8", "replace"))
            return lines
        # str.splitlines is fastest, but also breaks at a lone \r, U+2028 and others.
        if text.count("\r") == text.count("\r\n") and not any(
                mark in text for mark in _OTHER_BREAKS):
            return text.splitlines(keepends=True)
        return _keep_ends(text)


def _keep_ends(data: AnyStr) -> list[AnyStr]:
    """``data`` split after each newline, the newlines kept."""
    newline = "\n" if isinstance(data, str) else b"\n"
    parts = data.split(newline)  # type: ignore[arg-type]
    last = parts.pop()
    lines = [part + newline for part in parts]  # type: ignore[operator]
    if last:
        lines.append(last)
    return lines


def iter_delimited(path: Path, errors: ErrorLog, *, delimiter: str, max_rows: int,
                   max_field_bytes: int, max_record_bytes: int) -> Iterator[Record]:
    """The rows of a CSV (``delimiter=","``) or TSV (``"\\t"``) file as header -> cell."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    with open(path, "rb") as stream:
        lines = _Lines(stream, max_record_bytes)
        reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
        header: list[str] | None = None
        rows = 0
        while True:
            if errors.is_full:
                errors.stop()
                return
            start = reader.line_num + 1
            location = f"record {rows + 1} (line {start})" if header else f"line {start}"
            # The limit is process-wide: set it for each record, in case another
            # upload changed it in between.
            csv.field_size_limit(max_field_bytes)
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if lines.too_long_line:
                    break
                lines.report_bad_text(reader.line_num, errors)
                spans = reader.line_num > start
                hint = "; check for an unbalanced quote" if spans else ""
                if "field larger than field limit" in str(exc):
                    errors.add(location, f"has a field longer than {max_field_bytes} bytes{hint}")
                    return
                if "unexpected end of data" in str(exc):
                    errors.add(location, "has an unbalanced quote: its quoted field runs to "
                               "the end of the file")
                    return
                errors.add(location, f"is not valid {kind}: {exc}{hint}")
                if header is not None:
                    rows += 1
                continue
            if lines.too_long_line:
                break
            bad_text = lines.report_bad_text(reader.line_num, errors)
            if not any(cells) or (len(cells) == 1 and cells[0].isspace()):
                continue  # a blank line
            if header is None:
                header = _header(cells, location, errors)
                if header is None:
                    return
                continue
            rows += 1
            if rows > max_rows:
                raise row_limit_error(errors, location, max_rows)
            if bad_text:
                continue
            if len(cells) != len(header):
                errors.add(location, f"has {len(cells)} cells but the header has "
                           f"{len(header)} columns")
                continue
            joined = "".join(cells)
            if "\x00" in joined or len(joined) * 4 > max_field_bytes:
                # Decoded from UTF-8: no surrogates, and short text cannot be too long.
                problems = [(name, check_text(cell, max_field_bytes))
                            for name, cell in zip(header, cells, strict=True)]
                for name, problem in problems:
                    if problem:
                        errors.add(location, problem, name)
                if any(problem for _, problem in problems):
                    continue
            yield Record(location, dict(zip(header, cells, strict=True)))
        lines.report_bad_text(reader.line_num, errors)
        if lines.too_long_line:
            errors.add(f"line {lines.too_long_line}", f"is longer than {max_record_bytes} bytes")
            return
    if rows == 0:
        no_rows(errors)


def _header(cells: list[str], location: str, errors: ErrorLog) -> list[str] | None:
    """The column names of a header row (stripped), or None after reporting its faults."""
    names = [cell.strip() for cell in cells]
    ok = True
    where = f"header ({location})"
    for index, name in enumerate(names, start=1):
        if not name:
            errors.add(where, f"column {index} has no name")
            ok = False
        elif "\x00" in name:
            errors.add(where, f"column {index}'s name contains a NUL character")
            ok = False
    for name, count in Counter(names).items():
        if name and count > 1:
            errors.add(where, f"has the column {name!r} {count} times")
            ok = False
    return names if ok else None
