"""Best-of-N: the candidate a verifier or reward model scores highest (ALGORITHMS §8)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection, selection_from_candidates
from strategies.types import Candidate

__all__ = ["BestOfNConfig", "reward", "select_best_of_n"]


@dataclass(frozen=True, kw_only=True)
class BestOfNConfig:
    """Argmax of ``Candidate.score``; ``require_answer`` skips candidates without an answer."""

    require_answer: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.require_answer, bool):
            raise ValueError(f"require_answer must be a bool, got {self.require_answer!r}")


def reward(candidate: Candidate) -> float:
    """Return the candidate's verifier score; a missing or NaN score counts as ``-inf``.

    >>> reward(Candidate(text="", score=0.7)), reward(Candidate(text=""))
    (0.7, -inf)
    """
    score = candidate.score
    if score is None or math.isnan(score):
        return -math.inf
    return float(score)


def select_best_of_n(
    candidates: Sequence[Candidate],
    config: BestOfNConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Return the best-scored candidate; ties go to the higher mean logprob, then lower index.

    The ranking lists the best candidate of each distinct answer (pass@k submissions).

    >>> pool = [Candidate(text="a", answer="1", score=0.9, logprob_sum=-3.0),
    ...         Candidate(text="b", answer="2", score=0.9, logprob_sum=-1.0),
    ...         Candidate(text="c", answer="3", score=None)]
    >>> selection = select_best_of_n(pool)
    >>> selection.index, selection.ranking
    (1, (1, 0, 2))
    """
    del rng  # deterministic
    config = config or BestOfNConfig()
    eligible = [
        index
        for index, candidate in enumerate(candidates)
        if not config.require_answer or candidate.answer is not None
    ]
    rewards = [reward(candidate) for candidate in candidates]
    keys = [(r, c.mean_logprob) for r, c in zip(rewards, candidates, strict=True)]
    return selection_from_candidates(candidates, keys, eligible=eligible, scores=rewards)
