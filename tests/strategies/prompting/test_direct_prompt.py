"""The direct prompting scheme."""

from __future__ import annotations

from strategies.prompting.direct import DirectConfig, render_direct
from strategies.types import Problem


def test_it_returns_the_prompt_unchanged() -> None:
    problem = Problem(
        prompt="What is 3 + 4? Give the final answer after 'The answer is'.", answer="7"
    )
    assert render_direct(problem, DirectConfig()) == problem.prompt
    assert render_direct(problem) == problem.prompt
