"""A JSON array of objects, streamed item by item."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.webapp.datasets.parsers.conftest import Parse
from webapp.datasets.parsers import ErrorLog, UploadError, iter_records
from webapp.datasets.parsers.json_array import CHUNK_BYTES


def test_it_reads_the_objects_with_the_line_each_starts_on(parse: Parse) -> None:
    data = b'\xef\xbb\xbf[\r\n  {"q": "a",\r\n   "a": 1},\r\n  {"q": "b\\n", "a": [1, 2]}\r\n]'
    rows, errors = parse("d.json", data, "json")
    assert rows == [("line 2", {"q": "a", "a": 1}), ("line 4", {"q": "b\n", "a": [1, 2]})]
    assert not errors


def test_it_streams_items_across_buffer_boundaries(parse: Parse) -> None:
    items = [{"q": "\u00e9\u2028" * (i % 7) + "x" * (i * 37 % 5000), "n": i * 123456789}
             for i in range(300)]
    text = "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]\n"
    assert len(text.encode()) > 4 * CHUNK_BYTES
    rows, errors = parse("d.json", text.encode(), "json")
    assert not errors
    assert [fields for _, fields in rows] == items
    assert rows[-1][0] == "line 301"


@pytest.mark.parametrize("data", [b"", b" \n\t ", b"[]", b"\xef\xbb\xbf [ ] \n"])
def test_it_says_an_empty_file_or_array_has_no_rows(parse: Parse, data: bytes) -> None:
    rows, errors = parse("d.json", data, "json")
    assert rows == [] and errors.messages == ["d.json: has no rows"]


def test_it_rejects_a_file_that_is_not_an_array(parse: Parse) -> None:
    _, errors = parse("d.json", b'\n{"a": 1}', "json")
    assert errors.messages == ["d.json, line 2: must hold one JSON array of objects, but "
                               "starts with '{'"]


def test_it_reports_items_that_are_not_objects_and_goes_on(parse: Parse) -> None:
    rows, errors = parse("d.json", b'[1,\n"x",\n[],\n{"a": 1}]', "json")
    assert rows == [("line 4", {"a": 1})]
    assert errors.messages == ["d.json, line 1: must be a JSON object, not a number",
                               "d.json, line 2: must be a JSON object, not a string",
                               "d.json, line 3: must be a JSON object, not an array"]


@pytest.mark.parametrize(("data", "good", "message"), [
    (b'[{"a": 1},\n{"a": "cut', 1, "d.json, line 2: is not valid JSON: Unterminated string "
                                  "starting at (column 7)"),
    (b'[{"a": 1},\n{"a": 2}', 2, "d.json, line 2: ends before the array is closed"),
    (b'[{"a": 1},\n', 1, "d.json, line 2: ends before the array is closed"),
    (b'[{"a": 1},]', 1, "d.json, line 1: is not valid JSON: Expecting value (column 11)"),
    (b'[{"a": 1}\n{"a": 2}]', 1, "d.json, line 2: is not valid JSON: expected ',' or ']' "
                                 "after an item, found '{'"),
    (b'[{"a": 1},\n{"a": 2}] []', 2, "d.json, line 2: has more data after the array"),
])
def test_it_locates_truncated_and_invalid_json(parse: Parse, data: bytes, good: int,
                                               message: str) -> None:
    rows, errors = parse("d.json", data, "json")
    assert rows == [("line 1", {"a": 1}), ("line 2", {"a": 2})][:good]
    assert errors.messages == [message]


def test_it_names_the_line_that_is_not_utf8(parse: Parse) -> None:
    _, errors = parse("d.json", b'[{"a": 1},\n{"a": "caf\xe9"}]', "json")
    assert errors.messages == ["d.json, line 2: is not valid UTF-8 (byte 11)"]


def test_it_reports_deep_nesting_and_huge_integers_without_raising(parse: Parse) -> None:
    digits = sys.get_int_max_str_digits()
    _, errors = parse("d.json", b'[{"a": 1},\n' + b"[" * 100_000, "json")
    assert errors.messages == ["d.json, line 2: is nested too deeply"]
    _, errors = parse("d.json", b'[{"a": 1},\n{"n": ' + b"9" * (digits + 1) + b"}]", "json")
    assert errors.messages == [f"d.json, line 2: holds an integer with more than {digits} digits"]


def test_it_rejects_nan_infinity_and_nul_naming_the_field(parse: Parse) -> None:
    data = b'[{"a": NaN},\n{"b": -Infinity},\n{"c": "\\u0000"},\n{"d": 1}]'
    rows, errors = parse("d.json", data, "json")
    assert rows == [("line 4", {"d": 1})]
    assert errors.messages == [
        "d.json, line 1, field 'a': holds NaN, which is not allowed (JSON has no NaN)",
        "d.json, line 2, field 'b': holds -Infinity, which is not allowed (JSON has no "
        "-Infinity)",
        "d.json, line 3, field 'c': contains a NUL character (\\u0000), which cannot be stored",
    ]


def test_it_stops_at_an_item_longer_than_the_record_limit(parse: Parse) -> None:
    data = b'[{"a": 1},\n{"a": "' + b"x" * (3 * CHUNK_BYTES) + b'"}]'
    _, errors = parse("d.json", data, "json", max_record_bytes=CHUNK_BYTES)
    assert errors.messages == [f"d.json, line 2: holds an item longer than {CHUNK_BYTES} bytes "
                               "(or one that is not valid JSON)"]


def test_it_raises_at_the_row_limit_without_reading_further(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b"[" + b'{"a": 1},\n' * 4 + b"\xff not json at all" * 10_000)
    errors = ErrorLog("d.json")
    seen = []
    with pytest.raises(UploadError) as caught:
        for record in iter_records(path, "d.json", "json", errors, max_rows=3):
            seen.append(record.location)
    assert seen == ["line 1", "line 2", "line 3"]
    assert caught.value.errors == [
        "d.json, line 4: more than 3 rows: the limit is STRATLAB_DATASET_MAX_ROWS"]


def test_it_parses_a_large_array_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    item = json.dumps({"question": "What is 12 + 30?", "answer": "#### 42"}).encode()
    with open(path, "wb") as stream:
        stream.write(b"[")
        for _ in range(100):
            stream.write((item + b",\n") * 1000)
        stream.write(item + b"]")
    errors = ErrorLog("big.json")
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_records(path, "big.json", "json", errors,
                                            max_rows=200_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_001 and not errors
    assert peak < 2 * 2**20
