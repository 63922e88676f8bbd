"""A JSON array of objects, streamed: ``raw_decode`` one item at a time over a sliding
buffer, so memory follows the largest item, not the file.

An item that is valid JSON but not an object is reported and skipped; a syntax error
ends the parse (the rest of an array cannot be found reliably after one).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from webapp.datasets.parsers._json import JsonDecoder, decode_problem, json_type, needs_check
from webapp.datasets.parsers.base import (
    ErrorLog,
    Record,
    check_fields,
    no_rows,
    row_limit_error,
)

CHUNK_BYTES = 1 << 16
_WS = re.compile(r"[ \t\r\n]*")


class _TooLong(Exception):
    """An item still unfinished after ``max_record_bytes``."""


class _Buffer:
    """Decoded text of a stream, a window at a time, with the line number of ``pos``."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.text = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # the line of text[_counted]
        self._counted = 0
        self._bytes_newlines = 0  # newlines in the bytes decoded so far
        self._bytes_column = 0  # bytes since the last newline decoded so far
        self._first = True
        self.bad_byte: UnicodeDecodeError | None = None

    def line(self, at: int | None = None) -> int:
        """The line number of ``text[at]`` (``at`` >= the last position asked for)."""
        at = self.pos if at is None else at
        self._line += self.text.count("\n", self._counted, at)
        self._counted = at
        return self._line

    def fill(self, at_least: int = CHUNK_BYTES) -> None:
        """Read at least ``at_least`` more bytes (fewer at the end); drop consumed text.

        Text before a byte that is not UTF-8 is still given; asking for more after it
        raises the ``UnicodeDecodeError``, with ``.line`` and ``.column`` set.
        """
        if self.bad_byte is not None:
            raise self.bad_byte
        if self.pos > CHUNK_BYTES and self.pos * 2 > len(self.text):
            self.line(self.pos)
            self.text = self.text[self.pos:]
            self._counted -= self.pos
            self.pos = 0
        data = self.stream.read(max(at_least, CHUNK_BYTES))
        self.eof = not data
        try:
            text = self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as exc:
            raw = exc.object
            before = raw.rfind(b"\n", 0, exc.start)
            exc.line = self._bytes_newlines + raw.count(b"\n", 0, exc.start) + 1  # type: ignore[attr-defined]
            exc.column = (exc.start - before if before >= 0  # type: ignore[attr-defined]
                          else self._bytes_column + exc.start + 1)
            self.bad_byte = exc
            text = raw[: exc.start].decode("utf-8")
            self.eof = False  # what follows the good text is not the end: it is the error
        else:
            last = data.rfind(b"\n")
            self._bytes_newlines += data.count(b"\n")
            self._bytes_column = (len(data) - last - 1 if last >= 0
                                  else self._bytes_column + len(data))
        if self._first and text.startswith("\ufeff"):
            text = text[1:]
        if text:
            self._first = False
        self.text += text

    def skip_ws(self) -> str:
        """Move past whitespace; the next character, or "" at the end of the file."""
        while True:
            self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if self.eof:
                return ""
            self.fill()


def iter_json_array(path: Path, errors: ErrorLog, *, max_rows: int, max_field_bytes: int,
                    max_record_bytes: int) -> Iterator[Record]:
    """The objects of a file holding one JSON array; every bad item is reported."""
    with open(path, "rb") as stream:
        buf = _Buffer(stream)
        try:
            yield from _items(buf, errors, max_rows=max_rows, max_field_bytes=max_field_bytes,
                              max_record_bytes=max_record_bytes)
        except UnicodeDecodeError as exc:
            errors.add(f"line {exc.line}",  # type: ignore[attr-defined]
                       f"is not valid UTF-8 (byte {exc.column})")  # type: ignore[attr-defined]


def _items(buf: _Buffer, errors: ErrorLog, *, max_rows: int, max_field_bytes: int,
           max_record_bytes: int) -> Iterator[Record]:
    first = buf.skip_ws()
    if first == "":
        no_rows(errors)
        return
    if first != "[":
        errors.add(f"line {buf.line()}", "must hold one JSON array of objects, "
                   f"but starts with {first!r}")
        return
    buf.pos += 1
    decoder = JsonDecoder()
    rows = 0
    if buf.skip_ws() == "]":
        buf.pos += 1
    else:
        while True:
            if errors.is_full:
                errors.stop()
                return
            if buf.skip_ws() == "":
                errors.add(f"line {buf.line()}", "ends before the array is closed")
                return
            location = f"line {buf.line()}"
            rows += 1
            if rows > max_rows:
                raise row_limit_error(errors, location, max_rows)
            try:
                value, end = _decode_item(buf, decoder, max_record_bytes)
            except UnicodeDecodeError:
                raise  # reported by iter_json_array, with its line
            except _TooLong:
                errors.add(location, f"holds an item longer than {max_record_bytes} bytes "
                           "(or one that is not valid JSON)")
                return
            except json.JSONDecodeError as exc:
                at = f"line {buf.line(exc.pos)}"
                column = exc.pos - buf.text.rfind("\n", 0, exc.pos)
                errors.add(at, f"is not valid JSON: {exc.msg} (column {column})")
                return
            except (ValueError, RecursionError) as exc:
                errors.add(location, decode_problem(exc))
                return
            start, buf.pos = buf.pos, end
            if decoder.problem:
                decoder.report(value, location, errors)
            elif not isinstance(value, dict):
                errors.add(location, f"must be a JSON object, not {json_type(value)}")
            elif not needs_check(buf.text[start:end], max_field_bytes) or check_fields(
                value, location, errors, max_field_bytes
            ):
                yield Record(location, value)
            after = buf.skip_ws()
            if after == ",":
                buf.pos += 1
                continue
            if after == "]":
                buf.pos += 1
                break
            where = f"line {buf.line()}"
            if after == "":
                errors.add(where, "ends before the array is closed")
            else:
                errors.add(where, f"is not valid JSON: expected ',' or ']' after an item, "
                           f"found {after!r}")
            return
    if buf.skip_ws() != "":
        errors.add(f"line {buf.line()}", "has more data after the array")
        return
    if rows == 0:
        no_rows(errors)


def _decode_item(buf: _Buffer, decoder: JsonDecoder, max_record_bytes: int
                 ) -> tuple[object, int]:
    """Decode the value at ``buf.pos``, reading more while it may be cut by the buffer."""
    while True:
        try:
            value, end = decoder.raw_decode(buf.text, buf.pos)
        except json.JSONDecodeError:
            if buf.eof:
                raise
            if len(buf.text) - buf.pos > max_record_bytes:
                raise _TooLong from None
            buf.fill(len(buf.text) - buf.pos)
            continue
        # A number may go on in the next chunk: only the end of the file settles it.
        if end == len(buf.text) and not buf.eof:
            buf.fill(len(buf.text) - buf.pos)
            continue
        return value, end
