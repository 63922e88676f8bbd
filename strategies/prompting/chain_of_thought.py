"""Chain-of-thought prompting: ask the model to reason step by step before it answers."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.prompting.scheme import Scheme
from strategies.types import Problem

__all__ = ["SCHEME", "COT_INSTRUCTION", "ChainOfThoughtConfig", "render_chain_of_thought"]

COT_INSTRUCTION = "Think step by step, then give the final answer after 'The answer is'."
_POSITIONS = ("after", "before")


@dataclass(frozen=True, kw_only=True)
class ChainOfThoughtConfig:
    """The instruction to add and whether it goes ``after`` (default) or ``before`` the problem."""

    instruction: str = COT_INSTRUCTION
    position: str = "after"

    def __post_init__(self) -> None:
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError(f"instruction must be a non-empty string, got {self.instruction!r}")
        if self.position not in _POSITIONS:
            raise ValueError(f"position must be one of {_POSITIONS}, got {self.position!r}")


def render_chain_of_thought(problem: Problem, config: ChainOfThoughtConfig | None = None) -> str:
    """Return the problem's prompt with the step-by-step instruction added.

    >>> render_chain_of_thought(Problem(prompt="What is 2 + 2?", answer="4"))
    "What is 2 + 2?\\n\\nThink step by step, then give the final answer after 'The answer is'."
    """
    config = config or ChainOfThoughtConfig()
    prompt = problem.prompt.strip()
    instruction = config.instruction.strip()
    if config.position == "before":
        return f"{instruction}\n\n{prompt}"
    return f"{prompt}\n\n{instruction}"


SCHEME = Scheme(
    name="chain_of_thought",
    description="Ask the model to think step by step before giving the final answer.",
    config_class=ChainOfThoughtConfig,
    function=render_chain_of_thought,
    single_call=True,
)
