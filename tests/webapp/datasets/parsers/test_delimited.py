"""CSV and TSV through the csv module: header, records, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.webapp.datasets.parsers.conftest import Parse
from webapp.datasets.parsers import MAX_ERRORS, ErrorLog, UploadError, iter_records


def test_it_reads_rows_under_the_header(parse: Parse) -> None:
    data = b'question, answer\nWhat is 2+2?,4\n"A, B","say ""hi"""\n'
    rows, errors = parse("d.csv", data, "csv")
    assert rows == [("record 1 (line 2)", {"question": "What is 2+2?", "answer": "4"}),
                    ("record 2 (line 3)", {"question": "A, B", "answer": 'say "hi"'})]
    assert not errors


def test_it_accepts_bom_crlf_blank_lines_and_no_final_newline(parse: Parse) -> None:
    data = b"\xef\xbb\xbfq,a\r\n\r\n1,2\r\n\r\n,\r\n3,4"
    rows, errors = parse("d.csv", data, "csv")
    assert rows == [("record 1 (line 3)", {"q": "1", "a": "2"}),
                    ("record 2 (line 6)", {"q": "3", "a": "4"})]
    assert not errors


def test_it_keeps_quoted_multiline_fields_byte_exact(parse: Parse) -> None:
    data = (b'q,a\n"line one\r\nline two\n\n  indented\t\xe2\x80\xa8end ",1\n'
            b'"second",2\n')
    rows, errors = parse("d.csv", data, "csv")
    assert rows == [
        ("record 1 (line 2)", {"q": "line one\r\nline two\n\n  indented\t\u2028end ", "a": "1"}),
        ("record 2 (line 6)", {"q": "second", "a": "2"}),
    ]
    assert not errors


def test_it_reads_tsv(parse: Parse) -> None:
    rows, errors = parse("d.tsv", b'q\ta\n1, 2\t"x\ty"\n', "tsv")
    assert rows == [("record 1 (line 2)", {"q": "1, 2", "a": "x\ty"})]
    assert not errors


@pytest.mark.parametrize("data", [b"", b"  \n \r\n\t\n", b"question,answer\n",
                                  b"\xef\xbb\xbfquestion,answer\r\n\r\n"])
def test_it_says_an_empty_or_header_only_file_has_no_rows(parse: Parse, data: bytes) -> None:
    rows, errors = parse("d.csv", data, "csv")
    assert rows == [] and errors.messages == ["d.csv: has no rows"]


def test_it_requires_a_header_with_distinct_names(parse: Parse) -> None:
    _, errors = parse("d.csv", b"\nq,,a,q\n1,2,3,4\n", "csv")
    assert errors.messages == ["d.csv, header (line 2): column 2 has no name",
                               "d.csv, header (line 2): has the column 'q' 2 times"]


def test_it_rejects_rows_with_more_or_fewer_cells(parse: Parse) -> None:
    rows, errors = parse("d.csv", b"q,a\n1,2,3\n4\n5,6\n", "csv")
    assert rows == [("record 3 (line 4)", {"q": "5", "a": "6"})]
    assert errors.messages == [
        "d.csv, record 1 (line 2): has 3 cells but the header has 2 columns",
        "d.csv, record 2 (line 3): has 1 cells but the header has 2 columns",
    ]


def test_it_names_the_line_that_is_not_utf8(parse: Parse) -> None:
    rows, errors = parse("d.csv", b'q,a\n"caf\xe9\nau lait",1\nok,2\n', "csv")
    assert rows == [("record 2 (line 4)", {"q": "ok", "a": "2"})]
    assert errors.messages == ["d.csv, line 2: is not valid UTF-8 (byte 5)"]


def test_it_rejects_nul_characters_naming_the_field(parse: Parse) -> None:
    rows, errors = parse("d.csv", b'q,a\nfine,"x\x00y"\nok,1\n', "csv")
    assert rows == [("record 2 (line 3)", {"q": "ok", "a": "1"})]
    assert errors.messages == ["d.csv, record 1 (line 2), field 'a': contains a NUL character "
                               "(\\u0000), which cannot be stored"]


def test_it_reports_an_unbalanced_quote_at_the_end(parse: Parse) -> None:
    rows, errors = parse("d.csv", b'q,a\nok,1\n"never closed,2\n3,4\n', "csv")
    assert rows == [("record 1 (line 2)", {"q": "ok", "a": "1"})]
    assert errors.messages == ["d.csv, record 2 (line 3): has an unbalanced quote: its quoted "
                               "field runs to the end of the file"]


def test_it_reports_a_stray_quote_and_goes_on(parse: Parse) -> None:
    rows, errors = parse("d.csv", b'q,a\n"x"y,1\nok,2\n', "csv")
    assert rows == [("record 2 (line 3)", {"q": "ok", "a": "2"})]
    assert errors.messages == ["d.csv, record 1 (line 2): is not valid CSV: ',' expected "
                               "after '\"'"]


def test_it_rejects_an_oversized_field_and_bounds_an_open_quote(parse: Parse) -> None:
    rows, errors = parse("d.csv", b"q,a\nok,1\n" + b"x" * 500 + b",2\n", "csv",
                         max_field_bytes=100)
    assert rows == [("record 1 (line 2)", {"q": "ok", "a": "1"})]
    assert errors.messages == ["d.csv, record 2 (line 3): has a field longer than 100 bytes"]
    # An open quote would swallow the rest of the file: the field limit stops it.
    rows, errors = parse("d.csv", b'q,a\n"open,1\n' + b"more,2\n" * 100, "csv",
                         max_field_bytes=100)
    assert errors.messages == ["d.csv, record 1 (line 2): has a field longer than 100 bytes; "
                               "check for an unbalanced quote"]


def test_it_counts_multibyte_text_in_bytes(parse: Parse) -> None:
    rows, errors = parse("d.csv", "q\n" + "\u00e9" * 60 + "\n", "csv", max_field_bytes=100)
    assert rows == []
    assert errors.messages == ["d.csv, record 1 (line 2), field 'q': is longer than 100 bytes"]


def test_it_rejects_a_physical_line_longer_than_the_record_limit(parse: Parse) -> None:
    _, errors = parse("d.csv", b"q,a\n" + b"x," * 600 + b"\n", "csv", max_record_bytes=1000)
    assert errors.messages == ["d.csv, line 2: is longer than 1000 bytes"]


def test_it_caps_messages_and_counts_every_bad_record(parse: Parse) -> None:
    rows, errors = parse("d.csv", b"q,a\n" + b"1,2,3\n" * 1000 + b"4,5\n", "csv")
    assert rows == [("record 1001 (line 1002)", {"q": "4", "a": "5"})]
    assert errors.total == 1000 and len(errors.messages) == MAX_ERRORS


def test_it_raises_at_the_row_limit_without_reading_further(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"q,a\n" + b"1,2\n" * 3 + b'"\xff,oops\n' * 10_000)
    errors = ErrorLog("d.csv")
    with pytest.raises(UploadError) as caught:
        for _ in iter_records(path, "d.csv", "csv", errors, max_rows=2):
            pass
    assert caught.value.errors == [
        "d.csv, record 3 (line 4): more than 2 rows: the limit is STRATLAB_DATASET_MAX_ROWS"]


def test_it_keeps_unicode_separators_and_form_feeds_inside_cells(parse: Parse) -> None:
    data = "q,a\none\u2028two\x0cthree,x\u2029y\n\"in\rquotes\",2\n".encode()
    rows, errors = parse("d.csv", data, "csv")
    assert rows == [("record 1 (line 2)", {"q": "one\u2028two\x0cthree", "a": "x\u2029y"}),
                    ("record 2 (line 3)", {"q": "in\rquotes", "a": "2"})]
    assert not errors


def test_it_reads_records_across_block_boundaries(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    import io

    from webapp.datasets.parsers import delimited

    cells = [[f"q{n}" + "\r\n\u00e9 \"quoted\"\n" * (n % 4), f"{n}," * (n % 3)]
             for n in range(200)]
    text = io.StringIO(newline="")
    csv.writer(text).writerows([["q", "a"], *cells])
    path = tmp_path / "d.csv"
    path.write_bytes(text.getvalue().encode())
    monkeypatch.setattr(delimited, "BLOCK_BYTES", 7)
    errors = ErrorLog("d.csv")
    records = list(iter_records(path, "d.csv", "csv", errors, max_rows=1000))
    assert not errors
    assert [[r.fields["q"], r.fields["a"]] for r in records] == cells
    # Records 2 to 4 hold 2, 4 and 6 line breaks: record 6 starts on line 2 + 5 + 12.
    assert records[5].location == "record 6 (line 19)"


def test_it_parses_a_large_csv_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "big.csv"
    with open(path, "wb") as stream:
        stream.write(b"question,answer\n")
        for _ in range(100):
            stream.write(b'"What is 12 + 30?\nThink.",#### 42\n' * 1000)
    errors = ErrorLog("big.csv")
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_records(path, "big.csv", "csv", errors, max_rows=200_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000 and not errors
    assert peak < 4 * 2**20


def test_it_rejects_a_last_line_longer_than_the_record_limit(parse: Parse) -> None:
    _, errors = parse("d.csv", b"q,a\n1,2\n" + b"x" * 3000, "csv", max_record_bytes=1000)
    assert errors.messages == ["d.csv, line 3: is longer than 1000 bytes"]
