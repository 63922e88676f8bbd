"""Programs from model output, HumanEval check programs, voting keys, generated tests."""

from __future__ import annotations

import pytest

from strategies.prompting.generated_tests import render_test_prompt
from strategies.types import Problem
from strategies.verify.code import (
    UnitTestConfig,
    check_program,
    extract_assertions,
    extract_program,
    program_answer,
    unit_test_program,
)

PROMPT = (
    "from typing import List\n\n\n"
    "def helper(x: int) -> int:\n    return x * 2\n\n\n"
    "def double_all(xs: List[int]) -> List[int]:\n"
    '    """Double every element.\n    >>> double_all([1])\n    [2]\n    """\n'
)
TEST = "def check(candidate):\n    assert candidate([1, 2]) == [2, 4]\n"


def run(source: str) -> dict[str, object]:
    """Execute a trusted test program (these tests write it themselves)."""
    scope: dict[str, object] = {}
    exec(compile(source, "<test>", "exec"), scope)  # noqa: S102 - our own fixed text
    return scope


def test_a_body_continues_the_prompt() -> None:
    program = extract_program("    return [helper(x) for x in xs]\n", PROMPT, "double_all")
    assert program == PROMPT + "    return [helper(x) for x in xs]\n"
    run(check_program(program, TEST, "double_all"))


def test_a_fenced_whole_function_replaces_the_prompts_function_and_keeps_helpers() -> None:
    answer = (
        "Here you go:\n```python\ndef double_all(xs):\n    return [helper(x) for x in xs]\n```\n"
        "It uses the helper."
    )
    program = extract_program(answer, PROMPT, "double_all")
    assert program.startswith("from typing import List")
    assert "def helper" in program and "It uses" not in program
    run(check_program(program, TEST, "double_all"))


def test_an_unfenced_whole_function_and_an_unterminated_fence_are_taken_too() -> None:
    bare = "def double_all(xs):\n    return [2 * x for x in xs]\n"
    run(check_program(extract_program(bare, PROMPT, "double_all"), TEST, "double_all"))
    open_fence = "```python\ndef double_all(xs):\n    return [2 * x for x in xs]\n"
    run(check_program(extract_program(open_fence, PROMPT, "double_all"), TEST, "double_all"))


def test_a_fenced_body_without_the_signature_continues_the_prompt() -> None:
    answer = "```python\n    return [x + x for x in xs]\n```"
    program = extract_program(answer, PROMPT, "double_all")
    assert program == PROMPT + "    return [x + x for x in xs]\n"


def test_the_first_fence_defining_the_function_wins_over_examples() -> None:
    answer = ("```python\nprint(double_all([1]))\n```\n"
              "```python\ndef double_all(xs):\n    return [0]\n```")
    assert "return [0]" in extract_program(answer, PROMPT, "double_all")


def test_a_wrong_program_fails_its_check() -> None:
    program = extract_program("    return xs\n", PROMPT, "double_all")
    with pytest.raises(AssertionError):
        run(check_program(program, TEST, "double_all"))


def test_unit_test_program_reads_the_problems_metadata() -> None:
    problem = Problem(prompt=PROMPT, answer=None,
                      metadata={"test": TEST, "entry_point": "double_all"})
    source = unit_test_program("    return [2 * x for x in xs]\n", problem)
    assert source.rstrip().endswith("check(double_all)")
    run(source)


def test_program_answer_ignores_formatting_comments_and_docstrings() -> None:
    a = program_answer(PROMPT + "    return [helper(x) for x in xs]  # map\n", "double_all")
    b = program_answer("def double_all(xs: List[int]) -> List[int]:\n"
                       "    return [helper(x)\n            for x in xs]\n", "double_all")
    c = program_answer(PROMPT + "    return xs\n", "double_all")
    assert a == b and a != c and a is not None and a.startswith("double_all#")


def test_program_answer_is_none_without_a_parsable_definition() -> None:
    assert program_answer("def double_all(:\n", "double_all") is None
    assert program_answer("x = 1\n", "double_all") is None


def test_extract_assertions_continues_the_opened_assertion_and_dedupes() -> None:
    text = "[1]) == [2]\nassert double_all([]) == []\nassert double_all([1]) == [2]\n"
    assert extract_assertions(text, "double_all") == [
        "assert double_all([1]) == [2]",
        "assert double_all([]) == []",
    ]


def test_extract_assertions_drops_malformed_and_unrelated_lines_and_caps() -> None:
    text = "\n".join([
        "assert double_all([1] == [2]",          # does not parse
        "assert other([1]) == [2]",              # not about the function
        "assert double_all([1]) == [2]; import os",  # two statements
        *[f"assert double_all([{i}]) == [{2 * i}]" for i in range(10)],
    ])
    kept = extract_assertions(text, "double_all", limit=5, opened=False)
    assert kept == [f"assert double_all([{i}]) == [{2 * i}]" for i in range(5)]
    with pytest.raises(ValueError, match="limit"):
        extract_assertions(text, "double_all", limit=0)


def test_a_chat_answer_with_fenced_assertions_is_read() -> None:
    text = "Tests:\n```python\nassert double_all([3]) == [6]\n```"
    assert extract_assertions(text, "double_all") == ["assert double_all([3]) == [6]"]


def test_the_test_prompt_opens_an_assertion_on_the_entry_point() -> None:
    problem = Problem(prompt=PROMPT, answer=None, metadata={"entry_point": "double_all"})
    prompt = render_test_prompt(problem)
    assert prompt.endswith("# check the correctness of double_all\nassert double_all(")
    assert "    pass\n" in prompt
    # Without metadata the last definition of the prompt is the function under test.
    assert render_test_prompt(Problem(prompt=PROMPT, answer=None)).endswith("assert double_all(")


def test_time_limits_follow_the_canonical_solution_within_bounds() -> None:
    config = UnitTestConfig(min_seconds=3.0, canonical_factor=4.0, max_seconds=20.0)
    assert config.wall_seconds(None) == 3.0
    assert config.wall_seconds(0.01) == 3.0
    assert config.wall_seconds(2.0) == 8.0
    assert config.wall_seconds(100.0) == 20.0


@pytest.mark.parametrize("fields", [
    {"min_seconds": 0.0}, {"min_seconds": 30.0, "max_seconds": 20.0}, {"max_seconds": 1000.0},
    {"canonical_factor": 0.5}, {"memory_mb": 1},
])
def test_bad_unit_test_settings_are_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        UnitTestConfig(**fields)
