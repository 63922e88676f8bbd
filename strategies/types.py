"""Shared value types: a problem to solve and one generated candidate answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Candidate", "Generator", "Problem", "YesNoScorer"]


@dataclass(frozen=True)
class Problem:
    """One item of a dataset: the prompt shown to the model and its gold answer (if known).

    >>> Problem(prompt="What is 2 + 2?", answer="4").answer
    '4'
    """

    prompt: str
    answer: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One sampled completion with its extracted answer, verdict, score and token accounting.

    ``logprob_sum`` is the sum of the model's (unprocessed) log-probabilities of the
    generated tokens; ``is_correct`` and ``score`` stay ``None`` until a verifier or a
    scorer has looked at the candidate.
    """

    text: str
    answer: str | None = None
    is_correct: bool | None = None
    score: float | None = None
    prompt_tokens: int = 0
    generated_tokens: int = 0
    logprob_sum: float = 0.0
    finish_reason: str = ""
    # Wall-clock seconds spent generating it (a share of its batch's time).
    seconds: float = 0.0
    # The generated token ids and one raw-model log-prob per token, as the engine
    # reports them; empty when the generator does not.
    token_ids: tuple[int, ...] = ()
    token_logprobs: tuple[float, ...] = ()

    @property
    def mean_logprob(self) -> float:
        """Length-normalised log-probability: ``logprob_sum / max(generated_tokens, 1)``.

        >>> Candidate(text="x", generated_tokens=4, logprob_sum=-2.0).mean_logprob
        -0.5
        """
        return self.logprob_sum / max(self.generated_tokens, 1)


class Generator(Protocol):
    """Samples ``n`` candidates for each user-message text (the runtime applies any template)."""

    def __call__(
        self,
        prompts: Sequence[str],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seed: int,
    ) -> list[list[Candidate]]:
        """Return one list of ``n`` candidates per prompt, in prompt order."""
        ...


class YesNoScorer(Protocol):
    """Reads the next-token log-probabilities of "yes" and "no" spellings after each prompt."""

    def __call__(
        self, prompts: Sequence[str], *, yes: Sequence[str], no: Sequence[str]
    ) -> list[tuple[float, float]]:
        """Return ``(logP(yes), logP(no))`` per prompt, each a logsumexp over the spellings."""
        ...
