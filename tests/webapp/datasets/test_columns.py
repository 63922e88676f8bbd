"""Pass 1 of a CSV a column at a time: the row path's content key exactly, or None for
anything the row path has to report."""

from __future__ import annotations

import csv
import io
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
