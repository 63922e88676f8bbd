"""Weighted majority vote: answer groups score the total weight of their votes (ALGORITHMS §7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from strategies.select.base import Selection, answer_groups, selection_from_options
from strategies.types import Candidate

__all__ = ["WEIGHTS", "WeightedMajorityConfig", "select_weighted_majority"]

Weight = Literal["mean_logprob", "sum_logprob", "score"]
WEIGHTS: tuple[Weight, ...] = ("mean_logprob", "sum_logprob", "score")


@dataclass(frozen=True, kw_only=True)
class WeightedMajorityConfig:
    """How each vote is weighted.

    ``mean_logprob`` (default): ``exp(mean token logprob)``, length-normalised;
    ``sum_logprob``: ``exp(Σ logprob)``, aggregated per group with ``logsumexp`` (the
    group score is the log of the total weight, so long completions do not underflow);
    ``score``: the verifier score (``Candidate.score``; a missing score weighs 0), which
    should be non-negative, such as a probability of being correct.
    """

    weight: Weight = "mean_logprob"

    def __post_init__(self) -> None:
        if self.weight not in WEIGHTS:
            raise ValueError(f"weight must be one of {', '.join(WEIGHTS)}; got {self.weight!r}")


def _group_logsumexp(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Return ``log Σ exp(values)`` per group, shifting by each group's maximum."""
    peak = np.full(n_groups, -np.inf)
    np.maximum.at(peak, group, values)
    shift = np.where(np.isfinite(peak), peak, 0.0)
    total = np.bincount(group, weights=np.exp(values - shift[group]), minlength=n_groups)
    with np.errstate(divide="ignore"):
        return np.asarray(shift + np.log(total), dtype=np.float64)


def select_weighted_majority(
    candidates: Sequence[Candidate],
    config: WeightedMajorityConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Return the answer group with the largest total weight; ``None`` never votes.

    Ties go to the earliest first occurrence and are all reported in ``tied``; ``scores``
    gives every candidate its group's total weight (log total for ``sum_logprob``).

    >>> pool = [Candidate(text="", answer="7", generated_tokens=1, logprob_sum=-2.0),
    ...         Candidate(text="", answer="7", generated_tokens=1, logprob_sum=-2.0),
    ...         Candidate(text="", answer="8", generated_tokens=1, logprob_sum=-0.1)]
    >>> select_weighted_majority(pool).answer
    '8'
    """
    del rng  # deterministic
    config = config or WeightedMajorityConfig()
    group, firsts = answer_groups(candidates)
    voters = group >= 0
    n_groups = len(firsts)
    if config.weight == "score":
        values = np.array([c.score if c.score is not None else 0.0 for c in candidates])
        totals = np.bincount(group[voters], weights=values[voters], minlength=n_groups)
        floor = 0.0
    else:
        values = np.array(
            [
                c.mean_logprob if config.weight == "mean_logprob" else c.logprob_sum
                for c in candidates
            ],
            dtype=np.float64,
        )
        if config.weight == "mean_logprob":
            totals = np.bincount(group[voters], weights=np.exp(values[voters]), minlength=n_groups)
            floor = 0.0
        else:
            totals = _group_logsumexp(values[voters], group[voters], n_groups)
            floor = -np.inf
    scores = [float(totals[g]) if g >= 0 else floor for g in group.tolist()]
    return selection_from_options(candidates, firsts, [(float(total),) for total in totals], scores)
