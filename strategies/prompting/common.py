"""Helpers shared by the prompting orchestrators: conversations, fenced blocks, token sums."""

from __future__ import annotations

import re
from collections.abc import Sequence

from strategies.types import Candidate, Generator

__all__ = [
    "generate_one",
    "last_fenced_block",
    "render_conversation",
    "spread_tokens",
    "total_tokens",
]

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)```", re.DOTALL)


def last_fenced_block(text: str) -> str | None:
    """Return the body of the last complete ```-fenced block in ``text``, or ``None``.

    >>> last_fenced_block("a\\n```python\\nx = 1\\n```\\nb\\n```\\ny = 2\\n```")
    'y = 2\\n'
    >>> last_fenced_block("no fence") is None
    True
    """
    blocks = _FENCE.findall(text)
    return blocks[-1][1] if blocks else None


def render_conversation(turns: Sequence[tuple[str, str]], follow_up: str) -> str:
    """Flatten earlier (user, assistant) turns and a new request into one user message.

    The generator takes single user messages, so a multi-turn exchange is replayed as a
    transcript that ends with the new request.

    >>> print(render_conversation([("List ideas.", "1. a")], "Now filter them."))
    Our conversation so far:
    <BLANKLINE>
    ### User
    List ideas.
    <BLANKLINE>
    ### Assistant
    1. a
    <BLANKLINE>
    ### User
    Now filter them.
    """
    if not turns:
        return follow_up
    parts = ["Our conversation so far:"]
    for user, assistant in turns:
        parts.append(f"### User\n{user}")
        parts.append(f"### Assistant\n{assistant}")
    parts.append(f"### User\n{follow_up}")
    return "\n\n".join(parts)


def generate_one(
    generator: Generator, prompt: str, *, temperature: float, max_new_tokens: int, seed: int
) -> Candidate:
    """Return the single candidate the generator samples for one prompt."""
    rows = generator(
        [prompt], n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    return rows[0][0]


def total_tokens(candidates: Sequence[Candidate]) -> tuple[int, int]:
    """Return ``(prompt tokens, generated tokens)`` summed over ``candidates``.

    >>> total_tokens([Candidate("a", prompt_tokens=3, generated_tokens=5)] * 2)
    (6, 10)
    """
    return sum(c.prompt_tokens for c in candidates), sum(c.generated_tokens for c in candidates)


def spread_tokens(total: int, count: int) -> list[int]:
    """Split ``total`` into ``count`` near-equal integer shares (earlier shares get the rest).

    >>> spread_tokens(10, 3)
    [4, 3, 3]
    """
    if count <= 0:
        return []
    base, rest = divmod(total, count)
    return [base + (1 if i < rest else 0) for i in range(count)]
