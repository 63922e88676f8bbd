"""The error log, the upload error and format detection."""

from __future__ import annotations

import pytest

from webapp.datasets.parsers import MAX_ERRORS, ErrorLog, UploadError, detect_format


def test_it_formats_messages_with_file_location_and_field() -> None:
    errors = ErrorLog("data.jsonl")
    errors.add("line 12", "is not valid JSON: Expecting value (column 1)")
    errors.add("line 3", "must be a string", "answer")
    errors.add("", "has no rows")
    assert errors.messages == [
        "data.jsonl, line 12: is not valid JSON: Expecting value (column 1)",
        "data.jsonl, line 3, field 'answer': must be a string",
        "data.jsonl: has no rows",
    ]
    assert errors.total == 3 and bool(errors)


def test_it_keeps_max_errors_messages_and_counts_them_all() -> None:
    errors = ErrorLog("f.csv")
    for number in range(1, 1001):
        errors.add(f"line {number}", "bad")
    assert len(errors.messages) == MAX_ERRORS
    assert errors.messages[-1] == f"f.csv, line {MAX_ERRORS}: bad"
    assert errors.total == 1000


def test_it_says_when_parsing_stopped() -> None:
    errors = ErrorLog("f.jsonl", max_errors=2, stop_after=3)
    for number in range(3):
        errors.add(f"line {number}", "bad")
    assert errors.is_full
    errors.stop()
    assert errors.messages[-1] == "f.jsonl: stopped after 3 errors"


def test_it_is_false_and_raises_nothing_when_empty() -> None:
    errors = ErrorLog("f.jsonl")
    assert not errors and errors.total == 0
    errors.raise_if_any()


def test_it_raises_an_upload_error_summarising_the_log() -> None:
    errors = ErrorLog("f.jsonl")
    for number in range(1, 8):
        errors.add(f"line {number}", "bad")
    with pytest.raises(UploadError) as caught:
        errors.raise_if_any()
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.total == 7 and error.file_name == "f.jsonl" and len(error.errors) == 7
    assert str(error).startswith("7 errors in f.jsonl: f.jsonl, line 1: bad; ")
    assert "line 6" not in str(error)


@pytest.mark.parametrize(("name", "head", "fmt"), [
    ("a.jsonl", b"", "jsonl"),
    ("a.NDJSON", b"", "jsonl"),
    ("a.json", b"\n [{}]", "json"),
    ("a.json", b'\xef\xbb\xbf{"a": 1}\n', "jsonl"),  # Hugging Face to_json writes lines
    ("a.csv", b"", "csv"),
    ("a.tsv", b"", "tsv"),
    ("a.tab", b"", "tsv"),
    ("a.parquet", b"", "parquet"),
    ("a.pq", b"", "parquet"),
    ("upload", b"PAR1\x15\x04", "parquet"),
    ("upload.txt", b"  [{}]", "json"),
    ("upload", b'\xef\xbb\xbf{"a": 1}', "jsonl"),
])
def test_it_detects_the_format(name: str, head: bytes, fmt: str) -> None:
    assert detect_format(name, head) == fmt


def test_it_names_the_file_it_cannot_place() -> None:
    with pytest.raises(ValueError, match=r"^notes\.txt: cannot tell the file's format"):
        detect_format("notes.txt", b"hello")
