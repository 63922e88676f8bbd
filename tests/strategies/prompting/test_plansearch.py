"""PlanSearch helpers on hand inputs, and the pipeline over a scripted generator (§6)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from strategies.prompting.plansearch import (
    PlanSearchConfig,
    extract_code,
    observation_subsets,
    parse_observations,
    plansearch,
)
from strategies.prompting.plansearch_prompts import CRITIQUE, FIX, FOLLOW_UPS
from tests.strategies.prompting.doubles import Call, ScriptedGenerator

PROBLEM = "Given a list of integers, return the length of the longest increasing run."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\n['a', 'b']\n```", ["a", "b"]),
        ("First ```\n['x']\n``` then ```python\n[' y ', '', 'z', 'y']\n```", ["y", "z"]),
        ("Observations: ['one', \"two\"] -- that's all", ["one", "two"]),
        ("```python\n('t1', 't2')\n```", ["t1", "t2"]),
        ("```python\n[]\n```", []),
    ],
)
def test_it_parses_an_observation_list(text: str, expected: list[str]) -> None:
    assert parse_observations(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1. sort\n2. scan",
        "```python\n['unterminated\n```",
        "```python\n[1, 2]\n```",
        "```python\n__import__('os').system('true')\n```",
        "```python\n{'a': 1}\n```",
    ],
)
def test_it_refuses_what_is_not_a_list_of_strings(text: str) -> None:
    assert parse_observations(text) is None


def test_it_extracts_the_last_fenced_code_block() -> None:
    reply = "Idea:\n```text\nnot code\n```\nCode:\n```python\ndef f(x):\n    return x\n```\nBye"
    assert extract_code(reply) == "def f(x):\n    return x\n"
    assert extract_code("  def g(): pass  ") == "def g(): pass"


def test_it_enumerates_and_shuffles_subsets_up_to_size_s() -> None:
    observations = [f"o{i}" for i in range(5)]
    subsets = observation_subsets(observations, 2, np.random.default_rng(0))
    assert len(subsets) == comb(5, 0) + comb(5, 1) + comb(5, 2)
    assert len(set(subsets)) == len(subsets)
    assert all(len(s) <= 2 for s in subsets)
    assert subsets == observation_subsets(observations, 2, np.random.default_rng(0))
    assert subsets != sorted(subsets, key=lambda s: (len(s), s))  # really shuffled
    assert observation_subsets([], 2, np.random.default_rng(0)) == [()]
    assert sorted(observation_subsets(["a"], 3, np.random.default_rng(1))) == [(), ("a",)]


def _kind(prompt: str) -> str:
    """Name the pipeline step a prompt belongs to (checked in order: conversations first)."""
    for name, tail in (
        ("list", FOLLOW_UPS[0]),
        ("filter", FOLLOW_UPS[1]),
        ("format", FOLLOW_UPS[2]),
    ):
        if prompt.endswith(tail):
            return name
    if prompt.endswith(CRITIQUE):
        return "critique"
    if prompt.endswith(FIX):
        return "fix"
    if "brainstorm new" in prompt:
        return "second"
    if "Translate this solution into" in prompt:
        return "pseudo"
    if "Write the final python program" in prompt:
        return "code"
    if "Useful observations:" in prompt:
        return "plan"
    assert prompt.startswith("You are an expert programmer"), prompt
    return "observe"


def _reply(prompt: str, index: int, call: Call) -> str:
    kind = _kind(prompt)
    if kind == "format":  # the first attempt is unparsable: the retry must kick in
        return "sorry" if call.temperature == 0.0 else "```python\n['o1', 'o2', 'o3']\n```"
    if kind == "second":
        return "```python\n['n1']\n```"
    if kind == "plan":
        return "PLAN uses " + prompt.split("Useful observations:\n")[1].split("\n\n")[0]
    if kind == "code":
        return "Here:\n```python\ndef solve(xs):\n    return 1\n```"
    return f"{kind} reply"


def _steps(generator: ScriptedGenerator) -> list[tuple[str, int, float]]:
    steps = []
    for call in generator.calls:
        kinds = {_kind(p) for p in call.prompts}
        assert len(kinds) == 1  # one batched call per step
        steps.append((kinds.pop(), len(call.prompts), call.temperature))
    return steps


def test_it_runs_the_pipeline_in_order_and_truncates_to_the_budget() -> None:
    generator = ScriptedGenerator(_reply, tokens=lambda text, call: 7)
    config = PlanSearchConfig(
        n_observations=3,
        max_subset_size=1,
        max_observation_sets=3,
        max_plans=5,
        idea_temperature=0.0,
        code_temperature=0.1,
    )
    out = plansearch(generator, PROBLEM, config, seed=4)
    # 3 first-order observations -> 4 subsets of size <= 1, truncated to 3 observation sets.
    steps = _steps(generator)
    second = steps[5][1]
    assert second in (2, 3)  # one second-order call per non-empty first-order set
    assert steps == [
        ("observe", 1, 0.0),
        ("list", 1, 0.0),
        ("filter", 1, 0.0),
        ("format", 1, 0.0),  # unparsable at temperature 0 ...
        ("format", 1, 0.2),  # ... so retried at 0.2
        ("second", second, 0.0),
        ("plan", 5, 0.0),
        ("pseudo", 5, 0.1),
        ("code", 5, 0.1),
    ]
    assert all(call.n == 1 for call in generator.calls)
    assert len({call.seed for call in generator.calls}) == len(generator.calls)
    assert len(out) == 5
    assert len({frozenset(c.observations) for c in out}) == 5
    assert all(set(c.observations) <= {"o1", "o2", "o3", "n1"} for c in out)
    assert all(c.plan.startswith("PLAN uses") for c in out)
    assert all(c.candidate.answer == "def solve(xs):\n    return 1\n" for c in out)
    assert all(c.pseudocode == "pseudo reply" and not c.is_fixed for c in out)
    prompt_spent, generated_spent = generator.spent()
    assert sum(c.candidate.generated_tokens for c in out) == generated_spent
    assert sum(c.candidate.prompt_tokens for c in out) == prompt_spent


def test_it_is_reproducible_for_a_seed() -> None:
    config = PlanSearchConfig(n_observations=3, max_subset_size=2, max_plans=4)
    first = plansearch(ScriptedGenerator(_reply), PROBLEM, config, seed=7)
    again = plansearch(ScriptedGenerator(_reply), PROBLEM, config, seed=7)
    assert [c.observations for c in first] == [c.observations for c in again]


def test_it_doubles_plans_with_criticism_and_can_skip_hops() -> None:
    generator = ScriptedGenerator(_reply)
    config = PlanSearchConfig(
        n_observations=3,
        max_subset_size=1,
        max_observation_sets=2,
        max_plans=2,
        second_order=False,
        criticism=True,
        pseudocode=False,
    )
    out = plansearch(generator, PROBLEM, config)
    kinds = [step[0] for step in _steps(generator)]
    assert kinds == [
        "observe",
        "list",
        "filter",
        "format",
        "format",
        "plan",
        "critique",
        "fix",
        "code",
    ]
    assert len(out) == 4
    assert [c.is_fixed for c in out] == [False, False, True, True]
    assert [c.plan for c in out[2:]] == ["fix reply", "fix reply"]
    assert all(c.pseudocode == "" for c in out)
    assert sum(c.candidate.generated_tokens for c in out) == generator.spent()[1]


def test_it_goes_on_with_no_observations_when_parsing_keeps_failing() -> None:
    generator = ScriptedGenerator(
        lambda p, i, c: "no list" if _kind(p) == "format" else _reply(p, i, c)
    )
    out = plansearch(generator, PROBLEM, PlanSearchConfig())
    formats = [step for step in _steps(generator) if step[0] == "format"]
    assert [temperature for _, _, temperature in formats] == [0.0, 0.2, 0.4]
    assert [c.observations for c in out] == [()]  # only the empty subset is left


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_observations": 0}, "n_observations"),
        ({"max_subset_size": -1}, "max_subset_size"),
        ({"max_plans": 0}, "max_plans"),
        ({"parse_temperatures": ()}, "parse_temperatures"),
        ({"code_temperature": -0.5}, "code_temperature"),
        ({"criticism": "yes"}, "criticism"),
    ],
)
def test_it_rejects_a_bad_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PlanSearchConfig(**kwargs)  # type: ignore[arg-type]
