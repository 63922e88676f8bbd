"""The random baseline: a uniformly random candidate, from an explicit seeded generator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection, check_seed, seeded_rng
from strategies.types import Candidate

__all__ = ["RandomConfig", "select_random"]


@dataclass(frozen=True, kw_only=True)
class RandomConfig:
    """Pick a uniformly random candidate (with ``require_answer``, one whose answer parsed).

    Without an ``rng`` argument the generator is seeded by ``seed`` and a digest of the
    candidates' texts: reproducible, yet not the same position for every problem.
    """

    seed: int = 0
    require_answer: bool = False

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if not isinstance(self.require_answer, bool):
            raise ValueError(f"require_answer must be a bool, got {self.require_answer!r}")


def select_random(
    candidates: Sequence[Candidate],
    config: RandomConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Return a uniformly random candidate; ``tied`` is just that candidate.

    >>> pool = [Candidate(text=t, answer=t) for t in "abcd"]
    >>> a = select_random(pool, rng=np.random.default_rng(1)).index
    >>> a == select_random(pool, rng=np.random.default_rng(1)).index
    True
    """
    config = config or RandomConfig()
    eligible = [
        index
        for index, candidate in enumerate(candidates)
        if not config.require_answer or candidate.answer is not None
    ]
    if not eligible:
        return Selection(index=None, answer=None, tied=())
    generator = rng if rng is not None else seeded_rng(candidates, config.seed)
    index = eligible[int(generator.integers(len(eligible)))]
    return Selection(index=index, answer=candidates[index].answer, tied=(index,), ranking=(index,))
