"""Best-of-Majority: the best-rewarded answer among the frequent ones (ALGORITHMS §8)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from strategies.select.base import Selection, answer_groups, rank_options
from strategies.select.best_of_n import reward
from strategies.types import Candidate

__all__ = ["BestOfMajorityConfig", "select_best_of_majority"]

Aggregation = Literal["max", "mean"]


@dataclass(frozen=True, kw_only=True)
class BestOfMajorityConfig:
    """Frequency filter ``π̂(a) >= alpha``, then the ``k`` best answers by group reward.

    ``alpha=None`` means ``max(2/N, 0.05)`` (an answer must appear at least twice).
    ``aggregation`` turns member scores into a group reward: ``max`` (default) or
    ``mean`` (over members that have a score). ``pad`` fills a ranking shorter than
    ``k`` with filtered-out answers, best reward first.
    """

    alpha: float | None = None
    aggregation: Aggregation = "max"
    k: int = 1
    pad: bool = False

    def __post_init__(self) -> None:
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] or None, got {self.alpha!r}")
        if self.aggregation not in ("max", "mean"):
            raise ValueError(f"aggregation must be 'max' or 'mean', got {self.aggregation!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        if not isinstance(self.pad, bool):
            raise ValueError(f"pad must be a bool, got {self.pad!r}")


def _group_reward(rewards: list[float], aggregation: Aggregation) -> float:
    """Aggregate the members' rewards; members without a score count only for ``max``."""
    if aggregation == "max":
        return max(rewards)
    scored = [value for value in rewards if value != -math.inf]
    return sum(scored) / len(scored) if scored else -math.inf


def select_best_of_majority(
    candidates: Sequence[Candidate],
    config: BestOfMajorityConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Keep answers with frequency ``>= alpha`` (else the modes) and rank them by reward.

    ``ranking`` holds up to ``k`` answers (their best-rewarded member each); ``index`` is
    its first. Ties on reward go to the more frequent answer, then the earliest.

    >>> pool = [Candidate(text="", answer=a, score=s)
    ...         for a, s in [("7", 0.4), ("7", 0.5), ("9", 0.99), ("8", 0.3), ("8", 0.2)]]
    >>> selection = select_best_of_majority(pool, BestOfMajorityConfig(k=2))
    >>> selection.answer, [pool[i].answer for i in selection.ranking]
    ('7', ['7', '8'])
    """
    del rng  # deterministic
    config = config or BestOfMajorityConfig()
    n = len(candidates)
    group, firsts = answer_groups(candidates)
    if not firsts:
        return Selection(index=None, answer=None, tied=(), scores=(-math.inf,) * n)
    alpha = config.alpha if config.alpha is not None else max(2 / n, 0.05)
    counts = np.bincount(group[group >= 0], minlength=len(firsts))
    survives = counts / n >= alpha - 1e-12
    if not survives.any():
        survives = counts == counts.max()  # keep the mode(s): never an empty set
    rewards = [reward(candidate) for candidate in candidates]
    members: list[list[int]] = [[] for _ in firsts]
    for index, g in enumerate(group.tolist()):
        if g >= 0:
            members[g].append(index)
    # each group's representative: its best-rewarded member (higher mean logprob, lower index)
    best = []
    for indices in members:
        order, _ = rank_options([(rewards[i], candidates[i].mean_logprob) for i in indices])
        best.append(indices[order[0]])
    group_reward = [_group_reward([rewards[i] for i in m], config.aggregation) for m in members]
    keys = [(group_reward[g], float(counts[g])) for g in range(len(firsts))]
    kept = [g for g in range(len(firsts)) if survives[g]]
    order, tied = rank_options([keys[g] for g in kept])
    ranking = [best[kept[i]] for i in order][: config.k]
    if config.pad and len(ranking) < config.k:
        dropped = [g for g in range(len(firsts)) if not survives[g]]
        extra, _ = rank_options([keys[g] for g in dropped])
        ranking += [best[dropped[i]] for i in extra][: config.k - len(ranking)]
    scores = tuple(group_reward[g] if g >= 0 and survives[g] else -math.inf for g in group.tolist())
    index = ranking[0]
    return Selection(
        index=index,
        answer=candidates[index].answer,
        tied=tuple(sorted(best[kept[i]] for i in tied)),
        scores=scores,
        ranking=tuple(ranking),
    )
