"""Majority vote (self-consistency) over extracted answers, with tie credit (ALGORITHMS §7)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from strategies.select.base import Selection, selection_from_options
from strategies.types import Candidate
from strategies.verify.grouping import group_answers
from strategies.verify.math import is_equivalent

__all__ = [
    "MajorityConfig",
    "MajorityResult",
    "expected_accuracy",
    "majority_vote",
    "select_majority",
]


@dataclass(frozen=True, kw_only=True)
class MajorityConfig:
    """Majority vote has no knobs: equivalent answers form one group (``group_answers``:
    the math equivalence of §17), ``None`` never votes, and ties go to the answer that
    appeared first."""


@dataclass(frozen=True)
class MajorityResult:
    """The outcome of a vote.

    ``answer`` is the winner (``None`` if no answer voted), ``tied`` every answer with the
    top count in order of first occurrence (``answer`` is ``tied[0]``), ``counts`` the
    votes per answer group (keyed by the group's first-seen spelling, in first-seen
    order) and ``index`` the position of the winner's first occurrence.
    """

    answer: str | None
    tied: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    index: int | None = None


def majority_vote(
    answers: Sequence[str | None], config: MajorityConfig | None = None
) -> MajorityResult:
    """Return the most common answer, grouping equivalent answers ("18", "18.0", "x = 18").

    >>> result = majority_vote(["7", None, "8", "x = 7", "8"])
    >>> result.answer, result.tied, result.counts, result.index
    ('7', ('7', '8'), {'7': 2, '8': 2}, 0)
    >>> majority_vote([None, None]).answer is None
    True
    """
    del config  # no settings; accepted so every selector has the same shape
    groups, firsts = group_answers(answers)
    if not firsts:
        return MajorityResult(answer=None)
    counts = np.bincount(groups[groups >= 0], minlength=len(firsts))
    top = int(counts.max())
    tied = [g for g in range(len(firsts)) if counts[g] == top]  # first-seen order
    spelling = [answers[index] or "" for index in firsts]
    return MajorityResult(
        answer=spelling[tied[0]],
        tied=tuple(spelling[g] for g in tied),
        counts={spelling[g]: int(count) for g, count in enumerate(counts)},
        index=firsts[tied[0]],
    )


def select_majority(
    candidates: Sequence[Candidate],
    config: MajorityConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """``majority_vote`` behind the uniform selector interface; scores are the group counts.

    >>> pool = [Candidate(text="", answer=a) for a in ("7", None, "8", "7.0", "8")]
    >>> selection = select_majority(pool)
    >>> selection.index, selection.tied, selection.scores
    (0, (0, 2), (2.0, 0.0, 2.0, 2.0, 2.0))
    """
    del config, rng  # no settings; deterministic
    group, firsts = group_answers([candidate.answer for candidate in candidates])
    counts = np.bincount(group[group >= 0], minlength=len(firsts)).astype(np.float64)
    scores = np.where(group >= 0, counts[np.maximum(group, 0)] if len(firsts) else 0.0, 0.0)
    return selection_from_options(
        candidates, firsts, [(float(count),) for count in counts], scores.tolist()
    )


def expected_accuracy(
    tied: Sequence[str], gold: str | Callable[[str], bool], *, lenient: bool = False
) -> float:
    """Return the expected correctness of breaking the tie uniformly at random.

    That is the fraction of tied answers that are correct: ``1/|tied|`` when the gold is
    one of them. ``gold`` is the gold answer or a function judging one answer.

    >>> expected_accuracy(("7", "8"), "8"), expected_accuracy(("7",), "7")
    (0.5, 1.0)
    """
    if not tied:
        return 0.0
    if callable(gold):
        judge = gold
    else:

        def judge(answer: str) -> bool:
            return is_equivalent(answer, gold, lenient=lenient)

    return sum(1 for answer in tied if judge(answer)) / len(tied)
