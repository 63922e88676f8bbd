"""Iterative deepening: trigger self-correction with "Wait, let me check that again." turns.

Round 0 answers the task; each of up to D further rounds shows the model its latest
attempt (or every attempt so far) followed by the trigger, and asks it to re-check and
answer again. Every round's response is kept, so a selector or a metric can read the
answer after any number of rounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strategies.prompting.scheme import Scheme, Scorer
from strategies.types import Candidate, Generator, Problem

__all__ = ["SCHEME", "DeepeningConfig", "iterative_deepening", "render_deepening_prompt"]

TRIGGER = "Wait, let me check that again."
_CHECK = (
    "Re-examine every step of the attempt above, correct any mistake, and give the final "
    "answer after 'The answer is'."
)
_CARRY = ("last", "all")


@dataclass(frozen=True, kw_only=True)
class DeepeningConfig:
    """Up to ``rounds`` self-correction rounds after the first answer."""

    rounds: int = 3
    trigger: str = TRIGGER
    carry: str = "last"
    temperature: float = 0.7
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        for name, low in (("rounds", 0), ("max_new_tokens", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.trigger, str) or not self.trigger.strip():
            raise ValueError(f"trigger must be a non-empty string, got {self.trigger!r}")
        if self.carry not in _CARRY:
            raise ValueError(f"carry must be one of {_CARRY}, got {self.carry!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")


def render_deepening_prompt(
    task: str, attempts: Sequence[str], config: DeepeningConfig | None = None
) -> str:
    """Return the next round's prompt: the task, earlier attempt(s), then the trigger.

    >>> lines = render_deepening_prompt("What is 2 + 2?", ["The answer is 5."]).splitlines()
    >>> lines[:4]
    ['What is 2 + 2?', '', 'Your previous attempt:', 'The answer is 5.']
    >>> lines[-1].startswith("Wait, let me check that again.")
    True
    """
    config = config or DeepeningConfig()
    if not attempts:
        return task
    shown = attempts[-1:] if config.carry == "last" else attempts
    body = f"{config.trigger.strip()}\n".join(attempt.strip() + "\n" for attempt in shown)
    return f"{task.strip()}\n\nYour previous attempt:\n{body}\n{config.trigger.strip()} {_CHECK}"


def iterative_deepening(
    generator: Generator,
    prompt: str,
    config: DeepeningConfig | None = None,
    *,
    n: int = 1,
    seed: int = 0,
) -> list[list[Candidate]]:
    """Return ``n`` chains; chain ``i`` holds its response of round 0, 1, ..., D in order.

    Round 0 is one batched call for ``n`` samples; each later round is one batched call
    with one continuation prompt per chain.
    """
    config = config or DeepeningConfig()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    first = generator(
        [prompt],
        n=n,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=seed,
    )[0]
    chains = [[candidate] for candidate in first]
    for round_index in range(1, config.rounds + 1):
        prompts = [
            render_deepening_prompt(prompt, [c.text for c in chain], config) for chain in chains
        ]
        rows = generator(
            prompts,
            n=1,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=seed + round_index,
        )
        chains = [[*chain, row[0]] for chain, row in zip(chains, rows, strict=True)]
    return chains


def _run(
    generator: Generator,
    problem: Problem,
    n: int,
    config: DeepeningConfig,
    *,
    seed: int,
    max_new_tokens: int,
    scorer: Scorer | None,
    extras: Mapping[str, Any],
) -> list[Candidate]:
    """N chains, each one candidate: its last answer with the whole chain's tokens."""
    del max_new_tokens, scorer, extras
    chains = iterative_deepening(generator, problem.prompt, config, n=n, seed=seed)
    return [
        Candidate(
            text=chain[-1].text,
            prompt_tokens=sum(c.prompt_tokens for c in chain),
            generated_tokens=sum(c.generated_tokens for c in chain),
            logprob_sum=chain[-1].logprob_sum,
            finish_reason=chain[-1].finish_reason,
        )
        for chain in chains
    ]


SCHEME = Scheme(
    name="deepening",
    description=(
        "Iterative deepening: trigger self-correction rounds, keeping every round's answer."
    ),
    config_class=DeepeningConfig,
    function=iterative_deepening,
    single_call=False,
    runner=_run,
)
