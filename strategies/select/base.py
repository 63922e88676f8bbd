"""The uniform selector interface: every selector returns a ``Selection`` (ALGORITHMS §7-§12).

Each selector has the signature
``select_<name>(candidates, config=None, *, rng=None) -> Selection``; ``selection_credit``
scores any of them the same way, giving ``1/|tied|`` credit to ties.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from strategies.types import Candidate
from strategies.verify.grouping import group_answers
from strategies.verify.structure import canonical_answer

__all__ = [
    "Selection",
    "Selector",
    "answer_groups",
    "answer_groups_of",
    "check_seed",
    "rank_options",
    "seeded_rng",
    "selection_credit",
    "selection_from_candidates",
    "selection_from_options",
]

#: Relative and absolute tolerance under which two ranking scores count as tied.
TIE_REL_TOL = 1e-9
TIE_ABS_TOL = 1e-12


@dataclass(frozen=True)
class Selection:
    """A selector's choice.

    ``index`` is the chosen candidate (``None``: abstain, e.g. every answer is ``None``),
    ``tied`` one representative candidate per option tied for first place (it includes
    ``index``; ``()`` when abstaining), ``scores`` the per-candidate ranking score where
    the selector has one, and ``ranking`` candidate indices best first, one per distinct
    option (answer group or cluster), for top-k submissions.
    """

    index: int | None
    answer: str | None
    tied: tuple[int, ...]
    scores: tuple[float, ...] | None = None
    ranking: tuple[int, ...] = ()


#: ``select_<name>(candidates, config=None, *, rng=None) -> Selection``.
Selector = Callable[..., Selection]

ABSTAIN = Selection(index=None, answer=None, tied=())


def selection_credit(selection: Selection, candidates: Sequence[Candidate]) -> float | None:
    """Return the expected correctness: the mean ``is_correct`` over ``selection.tied``.

    Abstaining earns 0.0; the result is ``None`` when a candidate it needs is unjudged.

    >>> pool = [Candidate(text="", answer="7", is_correct=False),
    ...         Candidate(text="", answer="8", is_correct=True)]
    >>> selection_credit(Selection(index=0, answer="7", tied=(0, 1)), pool)
    0.5
    >>> selection_credit(Selection(index=None, answer=None, tied=()), pool)
    0.0
    """
    if selection.index is None:
        if any(candidate.is_correct is None for candidate in candidates):
            return None
        return 0.0
    tied = selection.tied or (selection.index,)
    verdicts = [candidates[index].is_correct for index in tied]
    if any(verdict is None for verdict in verdicts):
        return None
    return sum(1.0 for verdict in verdicts if verdict) / len(verdicts)


def answer_groups(
    candidates: Sequence[Candidate], *, exact: bool = False
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Return each candidate's answer-group id (``-1`` for no answer) and each group's first index.

    Groups are numbered in order of first occurrence. Equivalent answers form one group
    (``strategies.verify.grouping.group_answers``, ALGORITHMS section 17); with ``exact``,
    only equal voting keys (``canonical_answer``) do, as for programs, whose answers are
    already normalised.

    >>> pool = [Candidate(text="", answer=a) for a in ("7", None, "8", "7.0", "x = 7")]
    >>> groups, firsts = answer_groups(pool)
    >>> groups.tolist(), firsts
    ([0, -1, 1, 0, 0], (0, 2))
    """
    return answer_groups_of([candidate.answer for candidate in candidates], exact=exact)


def answer_groups_of(
    answers: Sequence[str | None], *, exact: bool = False
) -> tuple[np.ndarray, tuple[int, ...]]:
    """``answer_groups`` of the answers themselves.

    The groups depend only on the distinct answers in order of first occurrence, so a
    caller with many repeated answers may group those and spread the ids.

    >>> answer_groups_of(["7", "7", None, "8"], exact=True)[0].tolist()
    [0, 0, -1, 1]
    """
    if not exact:
        return group_answers(answers)
    ids: dict[str, int] = {}
    firsts: list[int] = []
    group = np.full(len(answers), -1, dtype=np.int64)
    for index, text in enumerate(answers):
        answer = canonical_answer(text)
        if answer is None:
            continue
        if answer not in ids:
            ids[answer] = len(firsts)
            firsts.append(index)
        group[index] = ids[answer]
    return group, tuple(firsts)


def _is_close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=TIE_REL_TOL, abs_tol=TIE_ABS_TOL)


def rank_options(keys: Sequence[Sequence[float]]) -> tuple[list[int], list[int]]:
    """Rank options by key (compared component by component, larger first) and find the ties.

    Components within a tiny tolerance count as equal; fully equal keys keep their input
    order, so earlier options win ties. Returns ``(order, tied)``: option positions best
    first, and the positions whose key equals the best one.

    >>> rank_options([(1.0, 0.5), (2.0, 0.0), (2.0, 0.0), (1.0, 0.7)])
    ([1, 2, 3, 0], [1, 2])
    """

    def compare(i: int, j: int) -> int:
        for a, b in zip(keys[i], keys[j], strict=True):
            if not _is_close(a, b):
                return -1 if a > b else 1
        return -1 if i < j else (1 if i > j else 0)

    order = sorted(range(len(keys)), key=functools.cmp_to_key(compare))
    if not order:
        return [], []
    best = keys[order[0]]
    tied = [i for i in order if all(_is_close(a, b) for a, b in zip(keys[i], best, strict=True))]
    return order, sorted(tied)


def selection_from_options(
    candidates: Sequence[Candidate],
    representatives: Sequence[int],
    keys: Sequence[Sequence[float]],
    scores: Sequence[float] | None = None,
) -> Selection:
    """Build a ``Selection`` from options (one representative candidate each) and their keys."""
    if not representatives:
        return Selection(
            index=None,
            answer=None,
            tied=(),
            scores=None if scores is None else tuple(float(s) for s in scores),
        )
    order, tied = rank_options(keys)
    index = representatives[order[0]]
    return Selection(
        index=index,
        answer=candidates[index].answer,
        tied=tuple(representatives[i] for i in tied),
        scores=None if scores is None else tuple(float(s) for s in scores),
        ranking=tuple(representatives[i] for i in order),
    )


def selection_from_candidates(
    candidates: Sequence[Candidate],
    keys: Sequence[Sequence[float]],
    *,
    eligible: Sequence[int] | None = None,
    scores: Sequence[float] | None = None,
) -> Selection:
    """Build a ``Selection`` for a selector that ranks single candidates by ``keys``.

    The best key wins and the lower index breaks exact ties; the ranking keeps the best
    candidate of each answer group (candidates without an answer share one group).
    ``eligible`` limits the choice to some indices (default: all).
    """
    pool = list(range(len(candidates))) if eligible is None else list(eligible)
    group, _ = answer_groups(candidates)
    order, _ = rank_options([keys[i] for i in pool])
    seen: set[int] = set()
    representatives: list[int] = []
    for position in order:
        index = pool[position]
        if int(group[index]) not in seen:
            seen.add(int(group[index]))
            representatives.append(index)
    representatives.sort()
    return selection_from_options(
        candidates, representatives, [keys[i] for i in representatives], scores
    )


def check_seed(seed: int) -> None:
    """Raise ``ValueError`` unless ``seed`` is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def seeded_rng(candidates: Sequence[Candidate], seed: int) -> np.random.Generator:
    """Return a generator seeded by ``seed`` and a digest of the candidates' texts.

    The choice is reproducible, yet differs between problems that share a seed.

    >>> pool = [Candidate(text="a"), Candidate(text="b")]
    >>> int(seeded_rng(pool, 0).integers(1000)) == int(seeded_rng(pool, 0).integers(1000))
    True
    """
    digest = hashlib.sha256("\x00".join(c.text for c in candidates).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
