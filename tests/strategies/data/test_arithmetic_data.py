"""The seeded arithmetic dataset."""

from __future__ import annotations

import ast
import operator

import pytest

from strategies.data.arithmetic import DIFFICULTIES, ArithmeticConfig, generate_arithmetic
from strategies.verify.math import verify_math

OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(expression: str) -> int:
    """Evaluate + - * over integer literals, without eval()."""

    def walk(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return int(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return int(OPERATORS[type(node.op)](walk(node.left), walk(node.right)))
        raise AssertionError(f"unexpected syntax in {expression!r}")

    return walk(ast.parse(expression, mode="eval").body)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_it_is_deterministic_for_a_seed(difficulty: str) -> None:
    config = ArithmeticConfig(size=50, seed=11, difficulty=difficulty)
    assert generate_arithmetic(config) == generate_arithmetic(config)
    other = ArithmeticConfig(size=50, seed=12, difficulty=difficulty)
    assert generate_arithmetic(other) != generate_arithmetic(config)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_it_gives_correct_answers(difficulty: str) -> None:
    problems = generate_arithmetic(ArithmeticConfig(size=300, seed=5, difficulty=difficulty))
    assert len(problems) == 300
    for problem in problems:
        expression = problem.metadata["expression"]
        assert problem.answer == str(_evaluate(expression))
        assert int(problem.answer) >= 0
        assert problem.prompt == (
            f"What is {expression}? Give the final answer after 'The answer is'."
        )
        assert verify_math(f"The answer is {problem.answer}.", problem.answer)[1]


def test_it_mixes_kinds_per_difficulty() -> None:
    kinds = {
        difficulty: {
            p.metadata["kind"]
            for p in generate_arithmetic(ArithmeticConfig(size=200, difficulty=difficulty))
        }
        for difficulty in DIFFICULTIES
    }
    assert kinds["easy"] == {"add", "sub", "mul"}
    assert kinds["mixed"] == {"add", "sub", "mul", "sum_times"}
    assert kinds["hard"] == {"add", "sub", "mul", "sum_times", "product_minus"}


def test_it_gets_harder_with_difficulty() -> None:
    def mean_answer(difficulty: str) -> float:
        problems = generate_arithmetic(ArithmeticConfig(size=300, difficulty=difficulty))
        return sum(int(p.answer or 0) for p in problems) / len(problems)

    assert mean_answer("easy") < mean_answer("mixed") < mean_answer("hard")


def test_it_records_metadata() -> None:
    problems = generate_arithmetic(ArithmeticConfig(size=3, seed=4, difficulty="easy"))
    assert [p.metadata["index"] for p in problems] == [0, 1, 2]
    assert {p.metadata["seed"] for p in problems} == {4}
    assert {p.metadata["difficulty"] for p in problems} == {"easy"}


def test_it_uses_the_default_config() -> None:
    assert len(generate_arithmetic(ArithmeticConfig())) == 20


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": 10_001}, "size"),
        ({"seed": -1}, "seed"),
        ({"difficulty": "medium"}, "difficulty"),
    ],
)
def test_it_validates_the_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ArithmeticConfig(**kwargs)  # type: ignore[arg-type]
