"""Code datasets: HumanEval from its package, and uploaded JSONL with line-numbered errors."""

from __future__ import annotations

import json

import pytest

from webapp.datasets.code import (
    HUMANEVAL_SIZE,
    CodeParseError,
    ensure_code_dataset,
    ensure_humaneval_dataset,
    humaneval_rows,
    parse_code_jsonl,
)
from webapp.datasets.models import Dataset

ROW = {"task_id": "mine/0", "prompt": "def inc(x):\n", "entry_point": "inc",
       "test": "def check(candidate):\n    assert candidate(1) == 2\n",
       "canonical_solution": "    return x + 1\n"}


def jsonl(*rows: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"


def test_humaneval_has_its_164_problems_in_task_order() -> None:
    rows = humaneval_rows()
    assert len(rows) == HUMANEVAL_SIZE == 164
    assert [r.task_id for r in rows[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert rows[0].entry_point == "has_close_elements" and "def check" in rows[0].test


def test_the_humaneval_dataset_is_stored_once_with_tests_in_metadata(team) -> None:  # type: ignore[no-untyped-def]
    dataset = ensure_humaneval_dataset(team, size=5)
    assert dataset.kind == Dataset.Kind.CODE and dataset.source == Dataset.Source.HUMANEVAL
    assert dataset.problems.count() == 5
    first = dataset.problems.get(index=0)
    assert first.metadata["entry_point"] == "has_close_elements"
    assert first.metadata["task_id"] == "HumanEval/0"
    assert first.answer == "" and first.prompt.startswith("from typing import List")
    assert ensure_humaneval_dataset(team, size=5).pk == dataset.pk
    assert ensure_humaneval_dataset(team, size=6).pk != dataset.pk
    with pytest.raises(ValueError, match="164"):
        ensure_humaneval_dataset(team, size=165)


def test_a_valid_upload_parses_and_numbers_missing_task_ids() -> None:
    second = {k: v for k, v in ROW.items() if k not in ("task_id", "canonical_solution")}
    rows = parse_code_jsonl(jsonl(ROW, "", second), "mine.jsonl")
    assert [r.task_id for r in rows] == ["mine/0", "mine.jsonl/1"]
    assert rows[1].canonical_solution == ""


def test_every_bad_line_is_reported_with_its_line_and_field() -> None:
    text = jsonl(
        ROW,
        "{not json",
        {**ROW, "test": None},
        {**ROW, "entry_point": "not a name"},
        {**ROW, "test": "def check(candidate:\n"},
        {**ROW, "test": "assert True\n"},
        {**ROW, "prompt": 7},
        [1, 2],
    )
    with pytest.raises(CodeParseError) as caught:
        parse_code_jsonl(text, "bad.jsonl")
    errors = caught.value.errors
    assert errors[0].startswith("bad.jsonl line 2: not valid JSON")
    assert "bad.jsonl line 3, field 'test': missing or empty." in errors
    assert any(e.startswith("bad.jsonl line 4, field 'entry_point'") for e in errors)
    assert any(e.startswith("bad.jsonl line 5, field 'test': not valid Python") for e in errors)
    assert "bad.jsonl line 6, field 'test': defines no check(candidate) function." in errors
    assert "bad.jsonl line 7, field 'prompt': must be a string, got int." in errors
    assert "bad.jsonl line 8: expected a JSON object, got list." in errors
    assert len(errors) == 7


def test_an_empty_upload_says_so() -> None:
    with pytest.raises(CodeParseError, match="no problems found"):
        parse_code_jsonl("\n\n", "empty.jsonl")


def test_uploads_with_the_same_prompts_but_other_tests_are_different_datasets(team) -> None:  # type: ignore[no-untyped-def]
    one = ensure_code_dataset(team, parse_code_jsonl(jsonl(ROW)), filename="a.jsonl")
    again = ensure_code_dataset(team, parse_code_jsonl(jsonl(ROW)), filename="a.jsonl")
    other_tests = {**ROW, "test": "def check(candidate):\n    assert candidate(2) == 3\n"}
    other = ensure_code_dataset(team, parse_code_jsonl(jsonl(other_tests)), filename="a.jsonl")
    assert one.pk == again.pk != other.pk
    assert one.kind == Dataset.Kind.CODE and one.source == Dataset.Source.UPLOAD
