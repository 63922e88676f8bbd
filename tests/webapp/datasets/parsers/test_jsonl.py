"""JSON lines: every bad line is located, good ones are exact, memory stays flat."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.webapp.datasets.parsers.conftest import Parse
from webapp.datasets.parsers import MAX_ERRORS, ErrorLog, UploadError, iter_records


def test_it_reads_one_object_per_line(parse: Parse) -> None:
    rows, errors = parse("d.jsonl", '{"q": "1+1", "a": 2}\n{"q": "x", "a": [1, {"b": null}]}\n',
                         "jsonl")
    assert rows == [("line 1", {"q": "1+1", "a": 2}),
                    ("line 2", {"q": "x", "a": [1, {"b": None}]})]
    assert not errors


def test_it_accepts_bom_crlf_blank_lines_and_no_final_newline(parse: Parse) -> None:
    data = b'\xef\xbb\xbf{"a": 1}\r\n\r\n   \n{"a": 2}\r\n\n{"a": 3}'
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [("line 1", {"a": 1}), ("line 4", {"a": 2}), ("line 6", {"a": 3})]
    assert not errors


def test_it_keeps_unicode_line_separators_inside_strings(parse: Parse) -> None:
    data = '{"q": "one\u2028two\u2029three\x85four"}\n{"q": "next"}\n'.encode()
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [("line 1", {"q": "one\u2028two\u2029three\x85four"}),
                    ("line 2", {"q": "next"})]
    assert not errors


def test_it_locates_truncated_and_invalid_json(parse: Parse) -> None:
    data = b'{"a": 1}\n{"a": "cut\n{"a": 1,}\nnot json\n{"a": 2}\n'
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [("line 1", {"a": 1}), ("line 5", {"a": 2})]
    assert errors.messages == [
        "d.jsonl, line 2: is not valid JSON: Unterminated string starting at (column 7)",
        "d.jsonl, line 3: is not valid JSON: Expecting property name enclosed in double "
        "quotes (column 9)",
        "d.jsonl, line 4: is not valid JSON: Expecting value (column 1)",
    ]


def test_it_rejects_values_that_are_not_objects(parse: Parse) -> None:
    _, errors = parse("d.jsonl", b'[1, 2]\n"text"\n3\nnull\n', "jsonl")
    assert errors.messages == [
        "d.jsonl, line 1: must be a JSON object, not an array",
        "d.jsonl, line 2: must be a JSON object, not a string",
        "d.jsonl, line 3: must be a JSON object, not a number",
        "d.jsonl, line 4: must be a JSON object, not null",
    ]


def test_it_names_the_line_that_is_not_utf8(parse: Parse) -> None:
    data = b'{"a": "ok"}\n{"a": "caf\xe9"}\n{"a": "fine"}\n'
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert [location for location, _ in rows] == ["line 1", "line 3"]
    assert errors.messages == ["d.jsonl, line 2: is not valid UTF-8 (byte 11)"]


@pytest.mark.parametrize("data", [b"", b"   \n\n\t\r\n", b"\xef\xbb\xbf"])
def test_it_says_an_empty_file_has_no_rows(parse: Parse, data: bytes) -> None:
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [] and errors.messages == ["d.jsonl: has no rows"]


def test_it_reports_deep_nesting_and_huge_integers_without_raising(parse: Parse) -> None:
    digits = sys.get_int_max_str_digits()
    data = (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
            + b'{"n": ' + b"7" * (digits + 1) + b"}\n"
            + b'{"a": ' + b"[" * 150 + b"]" * 150 + b"}\n"
            + b'{"ok": 1}\n')
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [("line 4", {"ok": 1})]
    assert errors.messages == [
        "d.jsonl, line 1: is nested too deeply",
        f"d.jsonl, line 2: holds an integer with more than {digits} digits",
        "d.jsonl, line 3, field 'a': is nested too deeply",
    ]


def test_it_rejects_nan_and_infinity_naming_the_field(parse: Parse) -> None:
    data = (b'{"a": NaN}\n{"b": [Infinity]}\n{"c": {"d": -Infinity}}\n{"e": 1e999}\n{"f": 1.5}\n'
            + b'{"g": ' + b"[" * 900 + b"NaN" + b"]" * 900 + b"}\n")
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [("line 5", {"f": 1.5})]
    assert errors.messages == [
        "d.jsonl, line 1, field 'a': holds NaN, which is not allowed (JSON has no NaN)",
        "d.jsonl, line 2, field 'b': holds Infinity, which is not allowed (JSON has no "
        "Infinity)",
        "d.jsonl, line 3, field 'c': holds -Infinity, which is not allowed (JSON has no "
        "-Infinity)",
        "d.jsonl, line 4, field 'e': holds the number 1e999, too large for a float",
        "d.jsonl, line 6, field 'g': holds NaN, which is not allowed (JSON has no NaN)",
    ]


def test_it_rejects_nul_characters_and_lone_surrogates_naming_the_field(parse: Parse) -> None:
    data = (b'{"q": "fine", "a": "x\\u0000y"}\n{"q": ["ok", "\\u0000"]}\n'
            b'{"q\\u0000": 1}\n{"q": "\\ud800"}\n{"q": "\\ud83d\\ude00 \\u00e9"}\n')
    rows, errors = parse("d.jsonl", data, "jsonl")
    assert rows == [("line 5", {"q": "\U0001f600 \u00e9"})]
    nul = "contains a NUL character (\\u0000), which cannot be stored"
    assert errors.messages == [
        f"d.jsonl, line 1, field 'a': {nul}",
        f"d.jsonl, line 2, field 'q': {nul}",
        f"d.jsonl, line 3, field 'q\\x00': its name {nul}",
        "d.jsonl, line 4, field 'q': contains an unpaired surrogate (\\ud800-\\udfff), which "
        "is not valid text",
    ]


def test_it_rejects_oversized_fields_and_lines(parse: Parse) -> None:
    data = (b'{"a": "' + b"x" * 200 + b'"}\n' + b'{"b": "' + b"y" * 5000 + b'"}\n'
            + b'{"c": "ok"}\n')
    rows, errors = parse("d.jsonl", data, "jsonl", max_field_bytes=100, max_record_bytes=1000)
    assert rows == [("line 3", {"c": "ok"})]
    assert errors.messages == [
        "d.jsonl, line 1, field 'a': is longer than 100 bytes",
        "d.jsonl, line 2: is longer than 1000 bytes",
    ]


def test_it_caps_messages_and_counts_every_bad_line(parse: Parse) -> None:
    rows, errors = parse("d.jsonl", b"{oops\n" * 1000 + b'{"a": 1}\n', "jsonl")
    assert rows == [("line 1001", {"a": 1})]
    assert errors.total == 1000
    assert len(errors.messages) == MAX_ERRORS
    assert errors.messages[0].startswith("d.jsonl, line 1: is not valid JSON")
    assert errors.messages[-1].startswith(f"d.jsonl, line {MAX_ERRORS}: ")


def test_it_stops_parsing_after_many_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"x\n" * 100)
    errors = ErrorLog("d.jsonl", max_errors=5, stop_after=20)
    assert list(iter_records(path, "d.jsonl", "jsonl", errors, max_rows=1000)) == []
    assert errors.total == 20
    assert errors.messages[-1] == "d.jsonl: stopped after 20 errors"


def test_it_raises_at_the_row_limit_without_reading_further(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    # Past the limit comes garbage (and bytes that are not UTF-8): never looked at.
    path.write_bytes(b'{"a": 1}\n\n' * 5 + b'{"a": 6}\n' + b"\xff garbage {\n" * 10_000)
    errors = ErrorLog("d.jsonl")
    seen = []
    with pytest.raises(UploadError) as caught:
        for record in iter_records(path, "d.jsonl", "jsonl", errors, max_rows=5):
            seen.append(record.location)
    assert seen == ["line 1", "line 3", "line 5", "line 7", "line 9"]
    assert caught.value.errors == [
        "d.jsonl, line 11: more than 5 rows: the limit is STRATLAB_DATASET_MAX_ROWS"]
    assert caught.value.total == 1


def test_it_parses_200000_rows_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps({"question": "What is 12 + 30? " * 3, "answer": "12 + 30 = 42\n#### 42",
                       "id": 0}).encode() + b"\n"
    with open(path, "wb") as stream:
        for _ in range(200):
            stream.write(line * 1000)
    errors = ErrorLog("big.jsonl")
    count = 0
    tracemalloc.start()
    try:
        for _ in iter_records(path, "big.jsonl", "jsonl", errors, max_rows=200_000):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000 and not errors
    assert path.stat().st_size > 20 * 2**20
    assert peak < 2 * 2**20
