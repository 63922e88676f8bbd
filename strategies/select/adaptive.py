"""Adaptive-consistency: stop sampling once the vote is confident (ALGORITHMS §12b)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection
from strategies.select.majority import select_majority
from strategies.select.numeric import betainc
from strategies.types import Candidate
from strategies.verify.structure import canonical_answer

__all__ = [
    "AdaptiveConfig",
    "adaptive_sample_count",
    "beta_stop_probability",
    "select_adaptive_consistency",
    "should_stop",
]


@dataclass(frozen=True, kw_only=True)
class AdaptiveConfig:
    """Stop when ``P(top answer is the true majority) >= threshold`` or at ``max_samples``."""

    threshold: float = 0.95
    max_samples: int = 40

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0.5, 1], got {self.threshold!r}")
        if (
            isinstance(self.max_samples, bool)
            or not isinstance(self.max_samples, int)
            or self.max_samples < 1
        ):
            raise ValueError(f"max_samples must be an integer >= 1, got {self.max_samples!r}")


def beta_stop_probability(a: int, b: int) -> float:
    """Return ``P(x > 1/2)`` for ``x ~ Beta(a + 1, b + 1)``, i.e. ``1 - I_0.5(a + 1, b + 1)``.

    ``a`` counts the top answer and ``b`` the runner-up; with ``b = 0`` it is
    ``1 - 0.5**(a + 1)``.

    >>> round(beta_stop_probability(4, 0), 5)  # four unanimous answers: stop at 0.95
    0.96875
    """
    if a < 0 or b < 0:
        raise ValueError(f"counts must be >= 0, got a={a!r}, b={b!r}")
    return 1.0 - betainc(a + 1.0, b + 1.0, 0.5)


def _top_two(counts: dict[str, int]) -> tuple[int, int]:
    """Return the largest and second-largest counts (0 when missing)."""
    ordered = sorted(counts.values(), reverse=True) + [0, 0]
    return ordered[0], ordered[1]


def should_stop(answers_so_far: Sequence[str | None], config: AdaptiveConfig | None = None) -> bool:
    """True once the Beta criterion is met or ``max_samples`` answers were drawn.

    ``None`` answers do not vote but count toward the budget.

    >>> should_stop(["7", "7", "7"]), should_stop(["7", "7", "7", "7.0"])
    (False, True)
    """
    config = config or AdaptiveConfig()
    if len(answers_so_far) >= config.max_samples:
        return True
    counts: dict[str, int] = {}
    for answer in answers_so_far:
        key = canonical_answer(answer)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return beta_stop_probability(*_top_two(counts)) >= config.threshold


def adaptive_sample_count(
    answers: Sequence[str | None], config: AdaptiveConfig | None = None
) -> int:
    """Return how many of an ordered pool adaptive sampling would have drawn before stopping.

    >>> adaptive_sample_count(["7", "8", "7", "7", "7", "7", "7", "7"])
    7
    """
    config = config or AdaptiveConfig()
    counts: dict[str, int] = {}
    for drawn, answer in enumerate(answers, start=1):
        key = canonical_answer(answer)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
        if drawn >= config.max_samples:
            return drawn
        if beta_stop_probability(*_top_two(counts)) >= config.threshold:
            return drawn
    return len(answers)


def select_adaptive_consistency(
    candidates: Sequence[Candidate],
    config: AdaptiveConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Majority vote over the prefix that adaptive sampling would have drawn.

    Candidates past the stopping point get score 0; ``adaptive_sample_count`` tells how
    many were used.

    >>> pool = [Candidate(text="", answer=a) for a in ["7"] * 5 + ["8"] * 6]
    >>> select_adaptive_consistency(pool).answer
    '7'
    """
    del rng  # deterministic
    used = adaptive_sample_count([candidate.answer for candidate in candidates], config)
    selection = select_majority(candidates[:used])
    prefix_scores = selection.scores or ()
    return Selection(
        index=selection.index,
        answer=selection.answer,
        tied=selection.tied,
        scores=prefix_scores + (0.0,) * (len(candidates) - used),
        ranking=selection.ranking,
    )
