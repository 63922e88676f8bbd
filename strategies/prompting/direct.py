"""The "direct" prompting scheme: ask the question exactly as the dataset states it."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.prompting.scheme import Scheme
from strategies.types import Problem

__all__ = ["SCHEME", "DirectConfig", "render_direct"]


@dataclass(frozen=True, kw_only=True)
class DirectConfig:
    """The direct scheme has no settings: the answer format is part of the dataset prompt."""


def render_direct(problem: Problem, config: DirectConfig | None = None) -> str:
    """Return the user message for ``problem``: its prompt, unchanged.

    >>> render_direct(Problem(prompt="What is 2 + 2?", answer="4"))
    'What is 2 + 2?'
    """
    del config  # no settings; accepted so every scheme has the same shape
    return problem.prompt


SCHEME = Scheme(
    name="direct",
    description="Ask the problem exactly as the dataset states it.",
    config_class=DirectConfig,
    function=render_direct,
    single_call=True,
    stops="code",
)
