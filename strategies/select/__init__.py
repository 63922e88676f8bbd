"""Selectors: choose one answer out of N candidates, and score that choice."""

from __future__ import annotations

from strategies.select.first import FirstConfig, select_first
from strategies.select.majority import (
    MajorityConfig,
    MajorityResult,
    expected_accuracy,
    majority_vote,
)
from strategies.select.scoring import selected_correctness

__all__ = [
    "FirstConfig",
    "MajorityConfig",
    "MajorityResult",
    "expected_accuracy",
    "majority_vote",
    "select_first",
    "selected_correctness",
]
