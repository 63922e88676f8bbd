"""A scripted, deterministic stand-in for the model engine's ``Generator``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from strategies.types import Candidate


@dataclass(frozen=True)
class Call:
    """One recorded generator call."""

    prompts: tuple[str, ...]
    n: int
    temperature: float
    max_new_tokens: int
    seed: int


@dataclass
class ScriptedGenerator:
    """Answers each (prompt, sample index, call) with ``reply``; records every call.

    ``tokens`` gives the generated-token count of a reply (default: its word count, capped
    at ``max_new_tokens``); prompt tokens are the prompt's word count.
    """

    reply: Callable[[str, int, Call], str]
    tokens: Callable[[str, Call], int] | None = None
    calls: list[Call] = field(default_factory=list)
    returned: list[Candidate] = field(default_factory=list)

    def __call__(
        self,
        prompts: Sequence[str],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seed: int,
    ) -> list[list[Candidate]]:
        call = Call(tuple(prompts), n, temperature, max_new_tokens, seed)
        self.calls.append(call)
        rows = []
        for prompt in prompts:
            row = []
            for index in range(n):
                text = self.reply(prompt, index, call)
                count = (
                    self.tokens(text, call)
                    if self.tokens
                    else min(len(text.split()), max_new_tokens)
                )
                row.append(
                    Candidate(
                        text=text,
                        prompt_tokens=len(prompt.split()),
                        generated_tokens=count,
                        finish_reason="stop",
                    )
                )
            rows.append(row)
            self.returned.extend(row)
        return rows

    def spent(self) -> tuple[int, int]:
        """Return (prompt tokens, generated tokens) over every reply so far."""
        return (
            sum(c.prompt_tokens for c in self.returned),
            sum(c.generated_tokens for c in self.returned),
        )
