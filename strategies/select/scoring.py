"""Score any selector's choice against the truth, so the web layer treats all alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from strategies.select.majority import MajorityResult, expected_accuracy
from strategies.types import Candidate
from strategies.verify.math import canonical_answer, is_equivalent

__all__ = ["selected_correctness"]


def _judge_by_candidates(candidates: Sequence[Candidate]) -> Callable[[str], bool]:
    """Judge an answer by the verdicts already stored on candidates with the same answer."""
    verdicts: dict[str, bool] = {}
    for candidate in candidates:
        key = canonical_answer(candidate.answer)
        if key is None:
            continue
        if candidate.is_correct is None:
            raise ValueError("candidates need is_correct set, or pass gold=")
        verdicts[key] = verdicts.get(key, False) or candidate.is_correct

    def judge(answer: str) -> bool:
        return verdicts.get(canonical_answer(answer) or "", False)

    return judge


def selected_correctness(
    candidates: Sequence[Candidate],
    selection: int | MajorityResult | None,
    *,
    gold: str | None = None,
    lenient: bool = False,
) -> float:
    """Return the (expected) correctness in [0, 1] of a selector's output.

    ``selection`` is a candidate index (from ``select_first`` and the like), a
    ``MajorityResult`` (ties earn ``1/|tied|`` credit) or ``None`` (nothing chosen: 0).
    Correctness comes from ``gold`` when given, else from the candidates' ``is_correct``.

    >>> pool = [Candidate(text="", answer="7", is_correct=False),
    ...         Candidate(text="", answer="8", is_correct=True)]
    >>> selected_correctness(pool, 1), selected_correctness(pool, None)
    (1.0, 0.0)
    >>> from strategies.select.majority import majority_vote
    >>> selected_correctness(pool, majority_vote(["7", "8"]), gold="8")
    0.5
    """
    if selection is None:
        return 0.0
    if isinstance(selection, MajorityResult):
        if gold is not None:
            return expected_accuracy(selection.tied, gold, lenient=lenient)
        return expected_accuracy(selection.tied, _judge_by_candidates(candidates))
    if not 0 <= selection < len(candidates):
        raise ValueError(f"selection {selection} is out of range for {len(candidates)} candidates")
    chosen = candidates[selection]
    if gold is not None:
        return 1.0 if is_equivalent(chosen.answer, gold, lenient=lenient) else 0.0
    if chosen.is_correct is None:
        raise ValueError("the chosen candidate has no is_correct verdict; pass gold=")
    return 1.0 if chosen.is_correct else 0.0
