"""The baseline selector: take the first candidate (optionally the first with an answer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection, selection_from_candidates
from strategies.types import Candidate

__all__ = ["FirstConfig", "select_first", "select_first_candidate"]


@dataclass(frozen=True, kw_only=True)
class FirstConfig:
    """Pick the first candidate; with ``require_answer``, the first whose answer parsed."""

    require_answer: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.require_answer, bool):
            raise ValueError(f"require_answer must be a bool, got {self.require_answer!r}")


def select_first(candidates: Sequence[Candidate], config: FirstConfig | None = None) -> int | None:
    """Return the index of the chosen candidate, or ``None`` when there is none to choose.

    >>> select_first([Candidate(text="a"), Candidate(text="b", answer="3")])
    0
    >>> select_first([Candidate(text="a"), Candidate(text="b", answer="3")],
    ...              FirstConfig(require_answer=True))
    1
    """
    config = config or FirstConfig()
    for index, candidate in enumerate(candidates):
        if not config.require_answer or candidate.answer is not None:
            return index
    return None


def select_first_candidate(
    candidates: Sequence[Candidate],
    config: FirstConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """``select_first`` behind the uniform selector interface (ranking: in order of position).

    >>> select_first_candidate([Candidate(text="a"), Candidate(text="b", answer="3")],
    ...                        FirstConfig(require_answer=True)).index
    1
    """
    del rng  # deterministic
    config = config or FirstConfig()
    eligible = [
        index
        for index, candidate in enumerate(candidates)
        if not config.require_answer or candidate.answer is not None
    ]
    keys = [(-float(index),) for index in range(len(candidates))]
    return selection_from_candidates(candidates, keys, eligible=eligible)
