"""The prompts of PlanSearch (ALGORITHMS §6), in our own wording."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CODE",
    "CRITIQUE",
    "FIX",
    "FOLLOW_UPS",
    "OBSERVATIONS",
    "PLAN",
    "PSEUDOCODE",
    "SECOND_ORDER",
    "bullet_list",
]

OBSERVATIONS = (
    "You are an expert programmer. Here is a problem:\n\n{problem}\n\n"
    "List about {n} non-obvious, useful observations or hints about this problem that "
    "would help someone solve it. Do not write any code."
)
FOLLOW_UPS = (
    "List the observations you made, one per line.",
    "Filter the list down to the most useful and correct observations.",
    "Format the remaining observations as a Python list of strings inside one fenced "
    "```python code block. Output nothing else.",
)
SECOND_ORDER = (
    "Here is a problem:\n\n{problem}\n\nHere are some observations about it:\n"
    "{observations}\n\nReason about what these observations imply when combined, and "
    "brainstorm new, useful observations that follow from them. Do not write any code. "
    "Give the new observations as a Python list of strings inside one fenced ```python block."
)
PLAN = (
    "Here is a problem:\n\n{problem}\n\nUseful observations:\n{observations}\n\n"
    "Write a high-level natural-language solution to the problem that uses these "
    "observations. Quote each observation where you use it. Do not write any code."
)
CRITIQUE = (
    "Criticise this idea: point out a flaw and give a concrete counter-example on which "
    "it fails. Do not write any code."
)
FIX = (
    "How would you fix the idea? Give the corrected natural-language solution in full. "
    "Do not write any code."
)
PSEUDOCODE = (
    "Here is a problem:\n\n{problem}\n\nHere is a natural-language solution:\n{plan}\n\n"
    "Translate this solution into step-by-step pseudocode."
)
CODE = (
    "Here is a problem:\n\n{problem}\n\nSolution idea:\n{plan}\n\nPseudocode:\n{pseudocode}"
    "\n\nWrite the final {language} program that implements it, in one fenced "
    "```{language} code block."
)


def bullet_list(items: Sequence[str]) -> str:
    """Return the items as "- " bullets, or "(none)" for an empty list.

    >>> print(bullet_list(["a", "b"]))
    - a
    - b
    """
    return "\n".join(f"- {item}" for item in items) if items else "(none)"
