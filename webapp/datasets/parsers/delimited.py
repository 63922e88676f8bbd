"""CSV and TSV through the ``csv`` module: a header row, then one record per row.

Physical lines are read as bytes split on ``b"\\n"`` and decoded one at a time, so a
line that is not UTF-8 is named, and quoted fields spanning lines keep their bytes
(``\\r\\n`` included) exactly. ``csv.field_size_limit`` bounds a field, so an unbalanced
quote cannot swallow the rest of the file into memory.

``iter_delimited_batches`` reads the same rows a column at a time with pyarrow's CSV
reader, for the upload's validation pass. It never reports errors: it raises
``NeedsRowByRow`` whenever ``iter_delimited`` would report or skip something, or the two
readers could split the text differently, and the row path then names every fault.
"""

from __future__ import annotations

import codecs
import csv
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import AnyStr, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

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


# --- A column at a time ----------------------------------------------------------------

BLOCK_READ_BYTES = 1 << 20


class NeedsRowByRow(Exception):  # noqa: N818 - a signal to the caller, not a fault
    """The file holds something only the row path judges (a bad, blank or surplus row,
    or text pyarrow and the csv module could split differently): read it with
    ``iter_delimited``, which names every fault."""


def iter_delimited_batches(path: Path, *, delimiter: str, max_rows: int, max_field_bytes: int,
                           max_record_bytes: int) -> Iterator[pa.RecordBatch]:
    """The rows of a CSV or TSV file as batches of string columns named by the stripped
    header: exactly the records ``iter_delimited`` yields when it reports nothing.

    Raises ``NeedsRowByRow`` (maybe after some batches) in every other case. The file
    is read once, in blocks of whole records, each parsed by pyarrow as one piece.
    """
    # Each block ends with a record's newline and fits in pyarrow's block, so pyarrow
    # never has to find where records end (newlines_in_values) by itself.
    read = pa_csv.ReadOptions(use_threads=False, block_size=max_record_bytes + 1)
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    names: list[str] | None = None
    rows = 0
    try:
        for block in _record_blocks(path, delimiter, max_record_bytes):
            if names is None:  # the first block starts with the header
                raw_names = pa_csv.open_csv(pa.BufferReader(block), read_options=read,
                                            parse_options=parse).schema.names
                names = _batch_header(raw_names, max_field_bytes)
                convert = pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(raw_names, pa.string()),
                    strings_can_be_null=False, quoted_strings_can_be_null=False)
            table = pa_csv.read_csv(pa.BufferReader(block), read_options=read,
                                    parse_options=parse, convert_options=convert)
            # The blocks after the first have no header.
            read = pa_csv.ReadOptions(use_threads=False, block_size=max_record_bytes + 1,
                                      column_names=raw_names)
            rows += table.num_rows
            if rows > max_rows:
                raise NeedsRowByRow
            for batch in table.to_batches():
                if batch.num_rows == 0:
                    continue
                _check_cells(batch, max_field_bytes)
                yield pa.RecordBatch.from_arrays(batch.columns, names=names)
    except (pa.ArrowException, ValueError) as exc:  # not UTF-8, a short or long row...
        raise NeedsRowByRow from exc
    if rows == 0:
        raise NeedsRowByRow


def _record_blocks(path: Path, delimiter: str, max_record_bytes: int
                   ) -> Iterator[bytes | memoryview]:
    """The file, less its BOM, in blocks of whole records (each ending with a newline,
    one added after the last line when it has none), each checked so that pyarrow's
    reader and the csv module must split it alike; else ``NeedsRowByRow``.

    They must when no line is too long, there is no NUL, every ``\\r`` ends a line
    (``\\r\\n``) and quotes only quote: counting a block's quotes from its start (a
    record's start), each odd one opens a field (after a delimiter, a newline or the
    start) or is the second of a doubled ``""``, and each even one closes a field (before
    a delimiter or a line end) or starts a ``""``. (Where the csv module says "',' expected
    after '"'", pyarrow reads on; where a quote never closes, pyarrow ends the field at
    the end of the file.)
    """
    may_precede_odd = np.zeros(256, dtype=bool)  # byte -> allowed
    may_precede_odd[[ord(delimiter), ord("\n"), ord('"')]] = True
    may_follow_even = np.zeros(256, dtype=bool)
    may_follow_even[[ord(delimiter), ord("\r"), ord("\n"), ord('"')]] = True
    # No block is longer than the limit, so no line is.
    size = max(1, min(BLOCK_READ_BYTES, max_record_bytes))
    with open(path, "rb") as stream:
        if stream.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            stream.seek(0)
        while True:
            start = stream.tell()
            block = stream.read(size)
            if not block:
                return
            while True:
                data = np.frombuffer(block, dtype=np.uint8)
                quotes = np.flatnonzero(data == ord('"'))
                end = _last_record_end(block, quotes)
                if end:
                    break
                more = stream.read(size)  # no record ends in the block yet
                if not more and block.endswith(b"\n"):
                    raise NeedsRowByRow  # a quoted field runs to the end of the file
                if len(block) + max(len(more), 1) > max_record_bytes:
                    raise NeedsRowByRow
                block += more or b"\n"  # the file's last line may have no newline
            # The next block starts where this one's unfinished record does.
            stream.seek(start + end)
            quotes = quotes[:np.searchsorted(quotes, end)]
            odd, even = quotes[::2], quotes[1::2]
            if (block.find(b"\0", 0, end) >= 0
                    or (block.find(b"\r", 0, end) >= 0
                        and (data[np.flatnonzero(data[:end] == ord("\r")) + 1]
                             != ord("\n")).any())
                    or not may_precede_odd[data[odd[odd > 0] - 1]].all()
                    or not may_follow_even[data[even + 1]].all()):
                raise NeedsRowByRow
            yield block if end == len(block) else memoryview(block)[:end]


def _last_record_end(block: bytes, quotes: np.ndarray) -> int:
    """Where the last record ending in ``block`` (which starts a record) ends, after its
    newline; 0 when none does. ``quotes`` are the block's quote positions."""
    end = len(block)
    while (end := block.rfind(b"\n", 0, end)) >= 0:
        before = int(np.searchsorted(quotes, end))  # the quotes before this newline
        if before % 2 == 0:
            return end + 1
        end = int(quotes[before - 1])  # inside a quoted field: look before it opened
    return 0


def _batch_header(raw_names: list[str], max_field_bytes: int) -> list[str]:
    """The stripped column names, when ``iter_delimited`` would take the same header."""
    names = [name.strip() for name in raw_names]
    if (not all(names) or len(set(names)) != len(names)
            or any(len(name.encode()) > max_field_bytes for name in raw_names)):
        raise NeedsRowByRow
    return names


def _check_cells(batch: pa.RecordBatch, max_field_bytes: int) -> None:
    """Raise ``NeedsRowByRow`` for a cell too long, or a row ``iter_delimited`` skips as
    blank (every cell empty; a lone cell of whitespace)."""
    lengths = [pc.binary_length(column) for column in batch.columns]
    if max(pc.max(length).as_py() for length in lengths) > max_field_bytes:
        raise NeedsRowByRow
    longest = lengths[0]
    for length in lengths[1:]:
        longest = pc.max_element_wise(longest, length)
    if pc.min(longest).as_py() == 0:
        raise NeedsRowByRow
    if batch.num_columns == 1 and pc.any(pc.utf8_is_space(batch.column(0))).as_py():
        raise NeedsRowByRow
