"""The "PPL" baseline: the single sample the model found most likely per token (§9)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection, selection_from_candidates
from strategies.types import Candidate

__all__ = ["LowestPerplexityConfig", "select_lowest_perplexity"]


@dataclass(frozen=True, kw_only=True)
class LowestPerplexityConfig:
    """Pick the maximal mean token logprob; ``require_answer`` skips unparsed candidates."""

    require_answer: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.require_answer, bool):
            raise ValueError(f"require_answer must be a bool, got {self.require_answer!r}")


def select_lowest_perplexity(
    candidates: Sequence[Candidate],
    config: LowestPerplexityConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Return the candidate with the highest mean logprob (lowest perplexity); ties by index.

    >>> pool = [Candidate(text="a", generated_tokens=2, logprob_sum=-1.0),
    ...         Candidate(text="b", generated_tokens=4, logprob_sum=-1.0)]
    >>> select_lowest_perplexity(pool).index
    1
    """
    del rng  # deterministic
    config = config or LowestPerplexityConfig()
    eligible = [
        index
        for index, candidate in enumerate(candidates)
        if not config.require_answer or candidate.answer is not None
    ]
    scores = [candidate.mean_logprob for candidate in candidates]
    return selection_from_candidates(
        candidates, [(score,) for score in scores], eligible=eligible, scores=scores
    )
