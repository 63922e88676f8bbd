"""Pass 1 of a CSV or JSONL a column at a time: the row path's content key exactly, or None for
anything the row path has to report."""

from __future__ import annotations

import csv
import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.datasets import uploads
from webapp.datasets.columns import columnar_content_key, has_columnar_path
from webapp.datasets.mapping import ColumnMapping, content_hash, normalise_records
from webapp.datasets.parsers import ErrorLog, UploadError, iter_records

GSM8K = ColumnMapping(kind="math", prompt="question", answer="answer", answer_format="gsm8k")
EXACT = ColumnMapping(kind="exact", prompt="q", answer="a")


def write(tmp_path: Path, rows: list[list[str]], name: str = "d.csv", **options: Any) -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter="\t" if name.endswith(".tsv") else ",", **options
               ).writerows(rows)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue().encode())
    return path


def row_key(path: Path, mapping: ColumnMapping) -> tuple[str, int]:
    """The key and the error count of the row path (as ``validate_upload`` ran it before)."""
    errors = ErrorLog(path.name)
    fmt = path.suffix.lstrip(".")
    try:
        records = iter_records(path, path.name, fmt, errors, max_rows=10_000)
        key = content_hash(normalise_records(mapping, records, errors), mapping, mapping.kind)
    except UploadError:
        return "", errors.total or 1
    return key, errors.total


def column_key(path: Path, mapping: ColumnMapping, max_rows: int = 10_000) -> str | None:
    return columnar_content_key(path, path.suffix.lstrip("."), mapping, mapping.kind,
                                max_rows=max_rows)


def test_it_gives_the_row_paths_key_with_every_json_escape(tmp_path: Path) -> None:
    rows = [["question", "answer"],
            ['Say "hi" \\ twice,\ttab\r\nnew line \x01 \u2028 caf\u00e9 \U0001f600', "x #### 7 "],
            ["How many?", "3 + 4 = 7\n#### 1,234"],
            ["  padded  ", "a ####b#### 5\u00a0"]]
    for name in ("d.csv", "d.tsv"):
        path = write(tmp_path, rows, name, lineterminator="\r\n")
        key, errors = row_key(path, GSM8K)
        assert errors == 0 and column_key(path, GSM8K) == key


def test_it_adds_ids_and_metadata_as_the_row_path_does(tmp_path: Path) -> None:
    path = write(tmp_path, [["id", "q", "a", "level", "extra"],
                            [" a1 ", "q1", "1", "easy", "x"], ["b2", "q2", " 2 ", "hard", "y"]])
    for mapping in (
        ColumnMapping(kind="exact", prompt="q", answer="a", id="id",
                      metadata=("level", "id", "absent")),
        ColumnMapping(kind="open", prompt="q", metadata=("extra",)),
        ColumnMapping(kind="regex", prompt="q", answer="a", id="level"),
    ):
        key, errors = row_key(path, mapping)
        assert errors == 0 and column_key(path, mapping) == key, mapping


@pytest.mark.parametrize(("case", "rows", "mapping"), [
    ("an empty prompt", [["question", "answer"], ["", "#### 1"]], GSM8K),
    ("a whitespace prompt", [["question", "answer"], ["\u3000 ", "#### 1"]], GSM8K),
    ("no ####", [["question", "answer"], ["q", "42"]], GSM8K),
    ("nothing after ####", [["question", "answer"], ["q", "1 #### "]], GSM8K),
    ("a blank answer", [["q", "a"], ["x", " "]], EXACT),
    ("a missing column", [["q", "b"], ["x", "1"]], EXACT),
    ("a repeated id", [["id", "q"], ["1", "x"], [" 1", "y"]],
     ColumnMapping(kind="open", prompt="q", id="id")),
    ("an empty id", [["id", "q"], ["1", "x"], [" ", "y"]],
     ColumnMapping(kind="open", prompt="q", id="id")),
    ("a blank row", [["q", "a"], ["x", "1"], ["", ""]], EXACT),
    ("a row past the limit", [["q", "a"], *[["x", "1"]] * 10_001], EXACT),
])
def test_it_leaves_what_the_row_path_reports_to_the_row_path(
        tmp_path: Path, case: str, rows: list[list[str]], mapping: ColumnMapping) -> None:
    path = write(tmp_path, rows)
    assert column_key(path, mapping) is None, case


@pytest.mark.parametrize("mapping", [
    ColumnMapping(kind="math", prompt="q", answer="a", answer_format="boxed"),
    ColumnMapping(kind="exact", template="Q: {q}", answer="a"),
    ColumnMapping(kind="choice", prompt="q", choices=("A", "B"), answer_key="a"),
    ColumnMapping(kind="code", prompt="q", tests="a"),
])
def test_other_mappings_take_the_row_path(tmp_path: Path, mapping: ColumnMapping) -> None:
    path = write(tmp_path, [["q", "a", "A", "B"], ["x", "A", "1", "2"]])
    assert not has_columnar_path(mapping) and column_key(path, mapping) is None


def test_pyarrow_strips_the_whitespace_python_strips() -> None:
    # Prompts, answers and ids are stripped by pyarrow here, by str.strip in the row path.
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    padded = pa.array([c + "x" + c for c in chars])
    assert pc.utf8_trim_whitespace(padded).to_pylist() == [(c + "x" + c).strip() for c in chars]
    assert pc.utf8_is_space(pa.array(chars)).to_pylist() == [c.isspace() for c in chars]


def random_rows(rng: random.Random) -> list[list[str]]:
    pieces = ["x", " ", ",", '"', "\n", "\r\n", "\t", "\u00e9", "\u2028", "####", "1,234",
              "\\", "\x01", "{", "}", "7"]
    text = lambda: "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 5)))  # noqa: E731
    rows = [["id", "q", "a", "m"]]
    for number in range(rng.randrange(1, 6)):
        # Mostly good rows: ids distinct and answers with a "####", now and then not.
        row_id = rng.choice([str(number), f" {number}\t", str(number % 2), " "] + ["x"] * 6)
        row_id = f"{number}" if row_id == "x" else row_id
        answer = text() + rng.choice(["####", "", " #### "] + ["####"] * 3) + text()
        rows.append([row_id, text(), answer, text()])
    return rows


MAPPINGS = [
    ColumnMapping(kind="math", prompt="q", answer="a", answer_format="gsm8k"),
    ColumnMapping(kind="exact", prompt="q", answer="a", id="id", metadata=("m",)),
    ColumnMapping(kind="open", prompt="q", answer="a", answer_format="gsm8k"),
    ColumnMapping(kind="open", prompt="a", id="id", metadata=("q", "id", "zz")),
]


def test_it_agrees_with_the_row_path_on_random_files(tmp_path: Path) -> None:
    rng = random.Random(11)
    taken = 0
    for number in range(600):
        rows = random_rows(rng)
        path = write(tmp_path, rows, lineterminator=rng.choice(["\n", "\r\n"]))
        mapping = rng.choice(MAPPINGS)
        key = column_key(path, mapping)
        if key is None:
            continue
        assert row_key(path, mapping) == (key, 0), (number, rows, mapping)
        taken += 1
    assert taken > 150


def test_validate_upload_gives_the_row_paths_key_and_messages(team, owner, data_dir,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    good = [["question", "answer"], *([f'"Q{i}", a\nb', f"{i} #### {i}"] for i in range(50))]
    path = write(tmp_path, good)
    upload = uploads.stage_upload(team, owner, SimpleUploadedFile("g.csv", path.read_bytes()))
    key = uploads.validate_upload(upload, GSM8K, "math")
    assert key == row_key(path, GSM8K)[0] == uploads.validate_rows(upload, GSM8K, "math")
    bad = [*good, ["", "#### 1"], ["q", "no answer"]]
    upload = uploads.stage_upload(team, owner,
                                  SimpleUploadedFile("b.csv", write(tmp_path, bad).read_bytes()))
    with pytest.raises(UploadError) as caught:
        uploads.validate_upload(upload, GSM8K, "math")
    assert caught.value.errors == [
        "b.csv, record 51 (line 102), field 'question': is empty",
        "b.csv, record 52 (line 103), field 'answer': has no '####' before the final answer "
        "(GSM8K format)",
    ]


def test_it_reads_a_large_file_in_bounded_memory(tmp_path: Path) -> None:
    # pyarrow imports modules (pandas among them) on first use: not the file's memory.
    assert column_key(write(tmp_path, [["question", "answer"], ["q", "#### 1"]]), GSM8K)
    path = tmp_path / "big.csv"
    with open(path, "wb") as stream:
        stream.write(b"question,answer\n")
        for _ in range(600):
            stream.write(b'"What is 12 + 30?\nThink, then answer.","42 #### 42"\n' * 1000)
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    default = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        key = column_key(path, GSM8K, max_rows=600_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(default)
    assert key is not None
    size = path.stat().st_size
    assert size > 29 * 2**20 and peak < 12 * 2**20 and pool.max_memory() < 12 * 2**20


def test_validate_upload_stops_a_csv_at_the_row_limit(team, owner, data_dir, settings,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    settings.STRATLAB_DATASET_MAX_ROWS = 3
    path = write(tmp_path, [["question", "answer"], *([f"q{i}", f"#### {i}"] for i in range(5))])
    upload = uploads.stage_upload(team, owner, SimpleUploadedFile("g.csv", path.read_bytes()))
    with pytest.raises(UploadError) as caught:
        uploads.validate_upload(upload, GSM8K, "math")
    assert caught.value.errors == ["g.csv, record 4 (line 5): more than 3 rows: the limit is "
                                   "STRATLAB_DATASET_MAX_ROWS"]


# --- JSONL ---------------------------------------------------------------------------


def write_jsonl(tmp_path: Path, lines: list[Any], name: str = "d.jsonl", *,
                ending: str = "\n", ensure_ascii: bool = False) -> Path:
    """Each item as one JSON line (a str item is written as it is)."""
    text = ending.join(item if isinstance(item, str)
                       else json.dumps(item, ensure_ascii=ensure_ascii) for item in lines)
    path = tmp_path / name
    path.write_bytes((text + ending).encode("utf-8", "surrogatepass"))
    return path


def test_jsonl_gives_the_row_paths_key(tmp_path: Path) -> None:
    rows = [{"question": 'Say "hi" \\ twice,\ttab\r\nnew \x01 \u2028 caf\u00e9 \U0001f600 /',
             "answer": "x #### 7 ", "n": 3, "f": 1.5, "b": True, "z": None},
            {"answer": "3 + 4 = 7\n#### 1,234", "question": "How many?", "n": -1},
            {"question": "  padded  ", "answer": "a ####b#### 5\u00a0", "when": "2020-01-01"}]
    for ensure_ascii in (False, True):
        for ending in ("\n", "\r\n"):
            path = write_jsonl(tmp_path, rows, ending=ending, ensure_ascii=ensure_ascii)
            key, errors = row_key(path, GSM8K)
            assert errors == 0 and column_key(path, GSM8K) == key, (ensure_ascii, ending)
    # A BOM at the start and no final newline.
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + write_jsonl(tmp_path, rows).read_bytes()[:-1])
    key, errors = row_key(path, GSM8K)
    assert errors == 0 and column_key(path, GSM8K) == key


def test_jsonl_adds_ids_and_metadata_as_the_row_path_does(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, [
        {"id": " a1 ", "q": "q1", "a": "1", "level": "easy", "extra": "x", "none": None},
        {"id": "b2", "q": "q2", "a": " 2 ", "level": "hard", "extra": "y", "none": None}])
    for mapping in (
        ColumnMapping(kind="exact", prompt="q", answer="a", id="id",
                      metadata=("level", "id", "absent", "none")),
        ColumnMapping(kind="open", prompt="q", metadata=("extra",)),
        ColumnMapping(kind="regex", prompt="q", answer="a", id="level"),
    ):
        key, errors = row_key(path, mapping)
        assert errors == 0 and column_key(path, mapping) == key, mapping


def test_jsonl_reads_many_blocks_as_the_row_path_does(tmp_path: Path) -> None:
    rows = [{"question": f"Question {i}: " + "why? " * (i % 50), "answer": f"#### {i}",
             "id": f"p{i}"} for i in range(12_000)]
    path = write_jsonl(tmp_path, rows)
    assert path.stat().st_size > 2 * 2**20  # several blocks
    mapping = ColumnMapping(kind="math", prompt="question", answer="answer",
                            answer_format="gsm8k", id="id")
    errors = ErrorLog(path.name)
    records = iter_records(path, path.name, "jsonl", errors, max_rows=20_000)
    key = content_hash(normalise_records(mapping, records, errors), mapping, "math")
    assert not errors and column_key(path, mapping, max_rows=20_000) == key


GOOD = '{"q": "x", "a": "1"}'


@pytest.mark.parametrize(("case", "lines"), [
    ("a blank line", [GOOD, "", GOOD]),
    ("a whitespace line", [GOOD, "  ", GOOD]),
    ("two objects on a line", [GOOD, GOOD + GOOD, GOOD + " " + GOOD]),
    ("an array", [GOOD, '["x", "1"]']),
    ("not JSON", [GOOD, '{"q": "x", "a": 1']),
    ("NaN", [GOOD, '{"q": "x", "a": "1", "n": NaN}']),
    ("Infinity", [GOOD, '{"q": "x", "a": "1", "n": Infinity}']),
    ("a huge number", [GOOD, '{"q": "x", "a": "1", "n": 1e400}']),
    ("a NUL", [GOOD, '{"q": "x\\u0000", "a": "1"}']),
    ("a NUL in a name", [GOOD, '{"q": "x", "a": "1", "\\u0000": 1}']),
    ("an unpaired surrogate", [GOOD, '{"q": "x", "a": "1", "s": "\\ud800"}']),
    ("a repeated field", [GOOD, '{"q": "x", "q": "y", "a": "1"}']),
    ("a BOM past the start", [GOOD, "\ufeff" + GOOD]),
    ("a number answer", [GOOD, '{"q": "x", "a": 1}']),
    ("a null prompt", [GOOD, '{"q": null, "a": "1"}']),
    ("a missing answer", [GOOD, '{"q": "x"}']),
    ("an empty object", [GOOD, "{}"]),
    ("a nested field", [GOOD, '{"q": "x", "a": "1", "deep": [[[1]]]}']),
    ("a row past the limit", [GOOD] * 10_001),
])
def test_jsonl_leaves_what_it_cannot_settle_to_the_row_path(
        tmp_path: Path, case: str, lines: list[str]) -> None:
    path = write_jsonl(tmp_path, lines)
    assert column_key(path, EXACT) is None, case


def test_jsonl_leaves_invalid_utf8_and_long_lines_to_the_row_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(GOOD.encode() + b'\n{"q": "x\xff", "a": "1"}\n')
    assert column_key(path, EXACT) is None and row_key(path, EXACT)[1] == 1
    path.write_bytes(GOOD.encode() + b'\n{"q": "' + b"x" * (2**20 + 1) + b'", "a": "1"}\n')
    assert column_key(path, EXACT) is None and row_key(path, EXACT)[1] == 1


def test_validate_upload_of_jsonl_gives_the_row_paths_key_and_messages(  # type: ignore[no-untyped-def]
        team, owner, data_dir, tmp_path: Path) -> None:
    good = [{"question": f'"Q{i}", a\nb', "answer": f"{i} #### {i}"} for i in range(50)]
    path = write_jsonl(tmp_path, good)
    upload = uploads.stage_upload(team, owner, SimpleUploadedFile("g.jsonl", path.read_bytes()))
    key = uploads.validate_upload(upload, GSM8K, "math")
    assert column_key(path, GSM8K) == key
    assert key == row_key(path, GSM8K)[0] == uploads.validate_rows(upload, GSM8K, "math")
    bad = [*good, {"question": "", "answer": "#### 1"}, '{"question": "q", "answer": NaN}',
           {"question": "q", "answer": "no answer"}]
    path = write_jsonl(tmp_path, bad, "b.jsonl")
    upload = uploads.stage_upload(team, owner, SimpleUploadedFile("b.jsonl", path.read_bytes()))
    with pytest.raises(UploadError) as caught:
        uploads.validate_upload(upload, GSM8K, "math")
    assert caught.value.errors == [
        "b.jsonl, line 51, field 'question': is empty",
        "b.jsonl, line 52, field 'answer': holds NaN, which is not allowed (JSON has no NaN)",
        "b.jsonl, line 53, field 'answer': has no '####' before the final answer "
        "(GSM8K format)",
    ]


def test_jsonl_agrees_with_the_row_path_on_random_files(tmp_path: Path) -> None:
    rng = random.Random(12)
    taken = 0
    for number in range(400):
        header, *rows = random_rows(rng)
        items: list[Any] = []
        for row in rows:
            item: dict[str, Any] = dict(zip(header, row, strict=True))
            if rng.random() < 0.1:  # now and then a field missing, null or a number
                item[rng.choice(header)] = rng.choice([None, 7, 1.5])
            if rng.random() < 0.05:
                del item[rng.choice(header)]
            items.append(item)
        path = write_jsonl(tmp_path, items, ensure_ascii=rng.random() < 0.5,
                           ending=rng.choice(["\n", "\r\n"]))
        mapping = rng.choice(MAPPINGS)
        key = column_key(path, mapping)
        if key is None:
            continue
        assert row_key(path, mapping) == (key, 0), (number, items, mapping)
        taken += 1
    assert taken > 100


def test_jsonl_reads_a_large_file_in_bounded_memory(tmp_path: Path) -> None:
    assert column_key(write_jsonl(tmp_path, [{"question": "q", "answer": "#### 1"}]), GSM8K)
    path = tmp_path / "big.jsonl"
    line = json.dumps({"question": "What is 12 + 30?\nThink, then answer.",
                       "answer": "42 #### 42"}).encode() + b"\n"
    with open(path, "wb") as stream:
        for _ in range(500):
            stream.write(line * 1000)
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    default = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        key = column_key(path, GSM8K, max_rows=500_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(default)
    assert key is not None
    assert path.stat().st_size > 29 * 2**20 and peak < 12 * 2**20
    assert 0 < pool.max_memory() < 12 * 2**20
