"""Sequential revision at a fixed token budget, matched to a parallel pool's spend.

A parallel pool spends ``sum(generated_tokens)`` over N independent samples. Sequential
revision spends the same budget on one chain: answer once, then revise the previous
answer again and again, each call capped at the tokens left, until the budget is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from strategies.prompting.common import generate_one
from strategies.prompting.scheme import ExtraField, Scheme, Scorer
from strategies.types import Candidate, Generator, Problem

__all__ = [
    "SCHEME",
    "SequentialConfig",
    "matched_token_budget",
    "render_revision_prompt",
    "sequential_revision",
]

_REVISE = (
    "{task}\n\nHere is your previous answer:\n{previous}\n\n"
    "Review it carefully, fix any mistake, and write a revised answer. Give the final "
    "answer after 'The answer is'."
)


@dataclass(frozen=True, kw_only=True)
class SequentialConfig:
    """Per-call token cap, temperature, and a safety cap on the number of revisions."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    max_rounds: int = 64

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "max_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")


def matched_token_budget(pool: Sequence[Candidate]) -> int:
    """Return the generated-token budget of a parallel pool: the sum over its candidates.

    >>> pool = [Candidate("a", generated_tokens=30), Candidate("b", generated_tokens=12)]
    >>> matched_token_budget(pool)
    42
    """
    return sum(candidate.generated_tokens for candidate in pool)


def render_revision_prompt(task: str, previous: str) -> str:
    """Return the prompt that asks the model to revise its previous answer.

    >>> render_revision_prompt("What is 2 + 2?", "5").splitlines()[2]
    'Here is your previous answer:'
    """
    return _REVISE.format(task=task.strip(), previous=previous.strip())


def sequential_revision(
    generator: Generator,
    prompt: str,
    budget_tokens: int,
    config: SequentialConfig | None = None,
    *,
    seed: int = 0,
) -> list[Candidate]:
    """Return the chain of answers (first, then each revision) spending ``budget_tokens``.

    Each call may generate at most ``min(max_new_tokens, tokens left)``; the chain stops
    when the budget is spent, after ``max_rounds`` calls, or when a call generates no
    token. The chain's ``sum(generated_tokens)`` never exceeds the budget if the
    generator honours ``max_new_tokens``.
    """
    config = config or SequentialConfig()
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 0:
        raise ValueError(f"budget_tokens must be an integer >= 0, got {budget_tokens!r}")
    chain: list[Candidate] = []
    spent = 0
    while spent < budget_tokens and len(chain) < config.max_rounds:
        message = prompt if not chain else render_revision_prompt(prompt, chain[-1].text)
        candidate = generate_one(
            generator,
            message,
            temperature=config.temperature,
            max_new_tokens=min(config.max_new_tokens, budget_tokens - spent),
            seed=seed + len(chain),
        )
        chain.append(candidate)
        spent += candidate.generated_tokens
        if candidate.generated_tokens <= 0:
            break
    return chain


def _run(
    generator: Generator,
    problem: Problem,
    n: int,
    config: SequentialConfig,
    *,
    seed: int,
    max_new_tokens: int,
    scorer: Scorer | None,
    extras: Mapping[str, Any],
) -> list[Candidate]:
    """A pool's chain: each call capped like one sample of a parallel pool, N at most."""
    del scorer
    budget = extras.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise ValueError("sequential revision needs an integer budget_tokens")
    config = replace(config, max_new_tokens=max_new_tokens, max_rounds=min(config.max_rounds, n))
    return sequential_revision(generator, problem.prompt, budget, config, seed=seed)[:n]


def _budget(n: int, max_new_tokens: int) -> int:
    return n * max_new_tokens


SCHEME = Scheme(
    name="sequential",
    description="Sequential revision at the token budget of a parallel pool.",
    config_class=SequentialConfig,
    function=sequential_revision,
    single_call=False,
    runner=_run,
    sizer=lambda n, config: min(n, config.max_rounds),
    form_hint="One chain of revisions, each call capped at the experiment's max new tokens; "
    "its token budget defaults to N x max new tokens, the token cap of a parallel pool of N "
    "samples. The pool holds up to N revisions (fewer when the budget runs out).",
    extras=(
        ExtraField(
            name="budget_tokens",
            label="Token budget",
            help_text="Empty: N x max new tokens, the token cap of a parallel pool of N.",
            default=_budget,
        ),
    ),
)
