"""The uniform result of every ``verify_<name>(text, reference, config)`` verifier."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VerifierResult"]


@dataclass(frozen=True)
class VerifierResult:
    """Extracted answer, verdict (``None``: could not decide), optional score, and why.

    >>> VerifierResult(answer="7", passed=True, score=1.0, detail="exact match").passed
    True
    """

    answer: str | None
    passed: bool | None
    score: float | None
    detail: str
