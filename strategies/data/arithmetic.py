"""A seeded generator of arithmetic word-free problems with exact integer answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from strategies.types import Problem

__all__ = ["DIFFICULTIES", "MAX_SIZE", "ArithmeticConfig", "generate_arithmetic"]

DIFFICULTIES = ("easy", "mixed", "hard")
MAX_SIZE = 10_000
PROMPT = "What is {expression}? Give the final answer after 'The answer is'."

#: A template draws its operands from the generator and returns (expression, value).
Template = Callable[[np.random.Generator], tuple[str, int]]


def _draw(rng: np.random.Generator, low: int, high: int) -> int:
    """Return an integer drawn uniformly from ``[low, high]``."""
    return int(rng.integers(low, high, endpoint=True))


def _add(low: int, high: int) -> Template:
    """``a + b`` with both operands in ``[low, high]``."""

    def template(rng: np.random.Generator) -> tuple[str, int]:
        a, b = _draw(rng, low, high), _draw(rng, low, high)
        return f"{a} + {b}", a + b

    return template


def _sub(low: int, high: int) -> Template:
    """``a - b`` with ``a >= b``, both in ``[low, high]`` (answers are never negative)."""

    def template(rng: np.random.Generator) -> tuple[str, int]:
        a, b = sorted((_draw(rng, low, high), _draw(rng, low, high)), reverse=True)
        return f"{a} - {b}", a - b

    return template


def _mul(a_range: tuple[int, int], b_range: tuple[int, int]) -> Template:
    """``a * b`` with ``a`` and ``b`` drawn from their own ranges."""

    def template(rng: np.random.Generator) -> tuple[str, int]:
        a, b = _draw(rng, *a_range), _draw(rng, *b_range)
        return f"{a} * {b}", a * b

    return template


def _sum_times(term: tuple[int, int], factor: tuple[int, int]) -> Template:
    """``(a + b) * c``: a two-step expression."""

    def template(rng: np.random.Generator) -> tuple[str, int]:
        a, b, c = _draw(rng, *term), _draw(rng, *term), _draw(rng, *factor)
        return f"({a} + {b}) * {c}", (a + b) * c

    return template


def _product_minus(factor: tuple[int, int], term: tuple[int, int]) -> Template:
    """``a * b - c`` with ``c <= a * b``: a two-step expression."""

    def template(rng: np.random.Generator) -> tuple[str, int]:
        a, b = _draw(rng, *factor), _draw(rng, *factor)
        c = min(_draw(rng, *term), a * b)
        return f"{a} * {b} - {c}", a * b - c

    return template


#: Per difficulty, (kind, weight, template) triples. "easy" is within reach of a ~135M model,
#: "hard" mostly is not; "mixed" spreads between them so strategies can make a difference.
_TIERS: dict[str, tuple[tuple[str, float, Template], ...]] = {
    "easy": (
        ("add", 0.4, _add(1, 50)),
        ("sub", 0.3, _sub(10, 99)),
        ("mul", 0.3, _mul((2, 9), (2, 9))),
    ),
    "mixed": (
        ("add", 0.3, _add(10, 999)),
        ("sub", 0.25, _sub(10, 999)),
        ("mul", 0.25, _mul((11, 99), (2, 9))),
        ("sum_times", 0.2, _sum_times((2, 20), (2, 9))),
    ),
    "hard": (
        ("add", 0.2, _add(100, 9999)),
        ("sub", 0.2, _sub(100, 9999)),
        ("mul", 0.2, _mul((12, 99), (12, 99))),
        ("sum_times", 0.2, _sum_times((10, 99), (3, 19))),
        ("product_minus", 0.2, _product_minus((12, 49), (10, 999))),
    ),
}


@dataclass(frozen=True, kw_only=True)
class ArithmeticConfig:
    """How many problems, from which seed, at which difficulty ("easy", "mixed", "hard")."""

    size: int = 20
    seed: int = 0
    difficulty: str = "mixed"

    def __post_init__(self) -> None:
        size, seed = self.size, self.seed
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
            raise ValueError(f"size must be an integer between 1 and {MAX_SIZE}, got {size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(
                f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}"
            )


def generate_arithmetic(config: ArithmeticConfig) -> list[Problem]:
    """Return ``config.size`` problems; the same config always gives the same problems.

    Each problem's metadata holds the bare ``expression``, its ``kind`` (the template),
    the ``difficulty``, the ``seed`` and its ``index``.

    >>> problem = generate_arithmetic(ArithmeticConfig(size=1, seed=0, difficulty="easy"))[0]
    >>> problem.prompt.startswith("What is ") and problem.answer.isdigit()
    True
    """
    rng = np.random.default_rng(config.seed)
    tier = _TIERS[config.difficulty]
    weights = np.array([weight for _, weight, _ in tier])
    kinds = rng.choice(len(tier), size=config.size, p=weights / weights.sum())
    problems: list[Problem] = []
    for index, choice in enumerate(kinds.tolist()):
        kind, _, template = tier[choice]
        expression, value = template(rng)
        metadata = {
            "expression": expression,
            "kind": kind,
            "difficulty": config.difficulty,
            "seed": config.seed,
            "index": index,
        }
        problems.append(Problem(PROMPT.format(expression=expression), str(value), metadata))
    return problems
