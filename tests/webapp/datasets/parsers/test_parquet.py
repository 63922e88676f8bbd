"""Parquet through pyarrow, in batches; nested values as lists and dicts."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.webapp.datasets.parsers.conftest import Parse
from webapp.datasets.parsers import ErrorLog, UploadError, iter_records
from webapp.datasets.parsers.parquet import iter_parquet


def _write(path: Path, table: pa.Table, **kwargs: object) -> bytes:
    pq.write_table(table, path, **kwargs)
    return path.read_bytes()


def test_it_reads_rows_with_nested_values_as_hf_exports_have(tmp_path: Path,
                                                              parse: Parse) -> None:
    table = pa.table({
        "question": ["Which is a gas?", "2+2?"],
        "choices": [["iron", "oxygen"], ["3", "4", "5"]],
        "arc": [{"text": ["a", "b"], "label": ["A", "B"]}, {"text": ["c"], "label": ["1"]}],
        "answer": [1, 1],
        "score": [0.5, None],
    })
    data = _write(tmp_path / "src.parquet", table)
    rows, errors = parse("d.parquet", data, "parquet")
    assert not errors
    assert rows == [
        ("row 1", {"question": "Which is a gas?", "choices": ["iron", "oxygen"],
                   "arc": {"text": ["a", "b"], "label": ["A", "B"]}, "answer": 1,
                   "score": 0.5}),
        ("row 2", {"question": "2+2?", "choices": ["3", "4", "5"],
                   "arc": {"text": ["c"], "label": ["1"]}, "answer": 1, "score": None}),
    ]


def test_it_reads_many_batches_and_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    _write(path, pa.table({"n": list(range(5000))}), row_group_size=700)
    errors = ErrorLog("d.parquet")
    records = list(iter_parquet(path, errors, max_rows=10_000, max_field_bytes=100,
                                batch_rows=333))
    assert [r.fields["n"] for r in records] == list(range(5000))
    assert records[-1].location == "row 5000" and not errors


def test_it_turns_dates_decimals_binary_and_maps_into_json_values(tmp_path: Path,
                                                                  parse: Parse) -> None:
    table = pa.table({
        "day": pa.array([dt.date(2024, 1, 2)]),
        "at": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)]),
        "price": pa.array([decimal.Decimal("1.50")], pa.decimal128(5, 2)),
        "raw": pa.array([b"text"], pa.binary()),
        "tags": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
    })
    rows, errors = parse("d.parquet", _write(tmp_path / "s.parquet", table), "parquet")
    assert not errors
    assert rows == [("row 1", {"day": "2024-01-02", "at": "2024-01-02T03:04:05",
                               "price": "1.50", "raw": "text", "tags": [["k", 1]]})]


def test_it_reports_values_json_cannot_hold(tmp_path: Path, parse: Parse) -> None:
    table = pa.table({"q": ["ok", "x\x00y", "fine", "fine"],
                      "blob": [b"a", b"b", b"\xff\xfe", b"c"],
                      "v": [1.0, 2.0, 3.0, float("nan")]})
    rows, errors = parse("d.parquet", _write(tmp_path / "s.parquet", table), "parquet")
    assert rows == [("row 1", {"q": "ok", "blob": "a", "v": 1.0})]
    assert errors.messages == [
        "d.parquet, row 2, field 'q': contains a NUL character (\\u0000), which cannot be "
        "stored",
        "d.parquet, row 3, field 'blob': holds binary data that is not UTF-8 text",
        "d.parquet, row 4, field 'v': holds nan, which JSON cannot hold",
    ]


def test_it_reports_a_corrupt_file_once(tmp_path: Path, parse: Parse) -> None:
    rows, errors = parse("d.parquet", b"PAR1 this is not parquet at all PAR1", "parquet")
    assert rows == [] and errors.total == 1
    assert errors.messages[0].startswith("d.parquet: is not a readable Parquet file (")
    data = _write(tmp_path / "s.parquet", pa.table({"q": ["x" * 100] * 1000}))
    rows, errors = parse("d.parquet", data[: len(data) // 2] + data[-200:], "parquet")
    assert rows == [] and errors.total == 1
    assert errors.messages[0].startswith("d.parquet")


def test_it_says_an_empty_table_has_no_rows(tmp_path: Path, parse: Parse) -> None:
    data = _write(tmp_path / "s.parquet", pa.table({"q": pa.array([], pa.string())}))
    rows, errors = parse("d.parquet", data, "parquet")
    assert rows == [] and errors.messages == ["d.parquet: has no rows"]


def test_it_refuses_too_many_rows_before_reading_them(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    _write(path, pa.table({"q": ["x"] * 11}))
    errors = ErrorLog("d.parquet")
    records = iter_records(path, "d.parquet", "parquet", errors, max_rows=10)
    with pytest.raises(UploadError) as caught:
        next(records)
    assert caught.value.errors == [
        "d.parquet, row 11: more than 10 rows: the limit is STRATLAB_DATASET_MAX_ROWS"]
