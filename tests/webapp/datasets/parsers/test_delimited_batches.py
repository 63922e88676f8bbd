"""CSV and TSV a column at a time (pyarrow): the same rows as the csv module, or a
``NeedsRowByRow`` for anything the row path has to judge."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import pytest

from webapp.datasets.parsers import (
    ErrorLog,
    NeedsRowByRow,
    UploadError,
    delimited,
    iter_batches,
    iter_records,
)


def batch_rows(path: Path, fmt: str = "csv", **limits: Any) -> list[dict[str, str]]:
    """The rows of ``iter_batches``, or raises ``NeedsRowByRow``."""
    limits.setdefault("max_rows", 10_000)
    return [row for batch in iter_batches(path, fmt, **limits) for row in batch.to_pylist()]


def record_rows(path: Path, fmt: str = "csv", **limits: Any) -> tuple[list[dict[str, Any]], int]:
    """The rows of the row path and its error count (an over-limit file counts as one)."""
    limits.setdefault("max_rows", 10_000)
    errors = ErrorLog(path.name)
    try:
        rows = [record.fields for record in iter_records(path, path.name, fmt, errors, **limits)]
    except UploadError:  # past the row limit
        return [], errors.total
    return rows, errors.total


def write(tmp_path: Path, data: bytes, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_it_gives_the_rows_of_the_csv_module_with_their_bytes(tmp_path: Path) -> None:
    data = (b'\xef\xbb\xbfquestion , answer\r\n\r\n"line one\r\nline two\n\n  x\t\xe2\x80\xa8'
            b'end ","say ""hi"""\r\nplain,#### 1\r\n\r\n"a, b",\x0c\x1c')
    path = write(tmp_path, data)
    rows, errors = record_rows(path)
    assert errors == 0 and batch_rows(path) == rows == [
        {"question": "line one\r\nline two\n\n  x\t\u2028end ", "answer": 'say "hi"'},
        {"question": "plain", "answer": "#### 1"},
        {"question": "a, b", "answer": "\x0c\x1c"},
    ]


def test_it_reads_tsv(tmp_path: Path) -> None:
    path = write(tmp_path, b'q\ta\n1, 2\t"x\ty"\n', "d.tsv")
    assert batch_rows(path, "tsv") == [{"q": "1, 2", "a": "x\ty"}]


@pytest.mark.parametrize(("case", "data", "limits"), [
    ("empty", b"", {}),
    ("blank lines only", b"  \n \r\n\t\n", {}),
    ("header only", b"q,a\r\n", {}),
    ("a stray quote", b'q,a\n"x"y,1\nok,2\n', {}),
    ("a stray quote after a doubled one", b'q,a\n"x"""y,1\n', {}),
    ("a stray quote after a line break in quotes", b'q,a\n"x\n"y,1\n', {}),
    ("a quote inside an unquoted field (read alike, but rare)", b'q,a\nx"y,1\n', {}),
    # ... which would otherwise throw the count of quotes off and hide a stray one.
    ("a quote inside an unquoted field, then a stray one", b'q,a,z,w\nx"y,",b"c,1",w\n', {}),
    ("a carriage return inside quotes (read alike, but rare)", b'q,a\n"x\ry",1\n', {}),
    ("a quote never closed", b'q,a\nok,1\n"never closed,2\n3,4\n', {}),
    ("a lone carriage return", b"q,a\n1,2\r3,4\n", {}),
    ("a NUL", b'q,a\nfine,"x\x00y"\n', {}),
    ("a row of empty cells", b"q,a\n1,2\n,\n3,4\n", {}),
    ("a lone cell of whitespace", b"q\nx\n   \ny\n", {}),
    ("more cells", b"q,a\n1,2,3\n", {}),
    ("fewer cells", b"q,a\n1\n", {}),
    ("a duplicate column", b"q,q\n1,2\n", {}),
    ("a column with no name", b"q,\n1,2\n", {}),
    ("text that is not UTF-8", b'q,a\n"caf\xe9",1\n', {}),
    ("a header that is not UTF-8", b"q\xff,a\n1,2\n", {}),
    ("a field too long", b"q,a\nok,1\n" + b"x" * 500 + b",2\n", {"max_field_bytes": 100}),
    ("a line too long", b"q,a\n1,2\n" + b"x," * 600 + b"\n", {"max_record_bytes": 1000}),
    ("rows past the limit", b"q,a\n" + b"1,2\n" * 3, {"max_rows": 2}),
])
@pytest.mark.parametrize("block", [1 << 20, 3])
def test_it_leaves_to_the_row_path_what_the_row_path_reports_or_skips(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, data: bytes,
        limits: dict[str, int], block: int) -> None:
    monkeypatch.setattr(delimited, "BLOCK_READ_BYTES", block)
    path = write(tmp_path, data)
    with pytest.raises(NeedsRowByRow):
        batch_rows(path, **limits)


def test_it_reads_records_across_block_boundaries(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cells = [[f"q{n}" + "\r\n\u00e9 \"quoted\"\n" * (n % 4), f"{n}," * (n % 3)]
             for n in range(200)]
    text = io.StringIO(newline="")
    csv.writer(text).writerows([["q", "a"], *cells])
    path = write(tmp_path, text.getvalue().encode())
    monkeypatch.setattr(delimited, "BLOCK_READ_BYTES", 7)
    batches = list(iter_batches(path, "csv", max_rows=1000))
    assert len(batches) > 20
    assert [[row["q"], row["a"]] for b in batches for row in b.to_pylist()] == cells


def random_file(rng: random.Random) -> bytes:
    """A small CSV: written by the csv module (with blank lines, a BOM, CRLF, a missing
    final newline) or pieced together from awkward fragments."""
    pieces = ["x", "y", " ", ",", '"', '""', "\n", "\r\n", "\r", "\t", "\u00e9", "\u2028",
              "####", "\\", "\x01"]
    if rng.random() < 0.5:
        # A lone "\r" is rare in cells; here it would send most files to the row path.
        fair = [piece for piece in pieces if piece != "\r"]
        cell = lambda: "".join(rng.choice(fair) for _ in range(rng.randrange(1, 4)))  # noqa: E731
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, quoting=rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
                            lineterminator=rng.choice(["\n", "\r\n"]))
        width = rng.randrange(1, 4)
        writer.writerow([f"c{i}" for i in range(width)])
        for _ in range(rng.randrange(6)):
            writer.writerow([cell() for _ in range(width)])
            if rng.random() < 0.1:
                buffer.write(rng.choice(["\n", "\r\n"]))
        text = buffer.getvalue()
        if rng.random() < 0.2:
            text = text.rstrip("\r\n")
        data = text.encode()
        return (b"\xef\xbb\xbf" + data) if rng.random() < 0.1 else data
    body = "".join(rng.choice(pieces) for _ in range(rng.randrange(30)))
    return ("c0,c1\n" + body).encode()


@pytest.mark.parametrize("block", [1 << 20, 5])
def test_it_agrees_with_the_row_path_on_random_files(tmp_path: Path, block: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delimited, "BLOCK_READ_BYTES", block)
    rng = random.Random(block)
    read = 0
    for number in range(1500):
        data = random_file(rng)
        path = write(tmp_path, data)
        rows, errors = record_rows(path)
        try:
            batches = batch_rows(path)
        except NeedsRowByRow:
            continue
        assert errors == 0 and batches == rows, (number, data)
        read += 1
    assert read > 500  # most well-formed files are read a column at a time
