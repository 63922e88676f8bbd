"""Verifiers: decide whether a candidate's answer is correct."""

from __future__ import annotations

from strategies.verify.math import (
    MathAnswerConfig,
    canonical_answer,
    extract_answer,
    is_equivalent,
    normalize_answer,
    verify_math,
)

__all__ = [
    "MathAnswerConfig",
    "canonical_answer",
    "extract_answer",
    "is_equivalent",
    "normalize_answer",
    "verify_math",
]
