"""The oracle: a correct candidate whenever one exists (its accuracy is the coverage)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection
from strategies.types import Candidate

__all__ = ["OracleConfig", "select_oracle"]


@dataclass(frozen=True, kw_only=True)
class OracleConfig:
    """The oracle reads the verdicts (``is_correct``); it has no settings.

    It is an upper bound, not a method: its accuracy is coverage (pass@N).
    """


def select_oracle(
    candidates: Sequence[Candidate],
    config: OracleConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Return the first correct candidate, else the first candidate (abstain if none).

    Raises ``ValueError`` when a candidate has no verdict.

    >>> pool = [Candidate(text="", answer="7", is_correct=False),
    ...         Candidate(text="", answer="8", is_correct=True)]
    >>> select_oracle(pool).index
    1
    """
    del config, rng  # no settings; deterministic
    if any(candidate.is_correct is None for candidate in candidates):
        raise ValueError("the oracle needs is_correct set on every candidate")
    if not candidates:
        return Selection(index=None, answer=None, tied=())
    correct = [index for index, candidate in enumerate(candidates) if candidate.is_correct]
    index = correct[0] if correct else 0
    scores = tuple(1.0 if candidate.is_correct else 0.0 for candidate in candidates)
    return Selection(
        index=index,
        answer=candidates[index].answer,
        tied=(index,),
        scores=scores,
        ranking=(index,),
    )
