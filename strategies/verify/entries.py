"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.verify.math import MathAnswerConfig, verify_math

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "math",
        "verifier",
        verify_math,
        MathAnswerConfig,
        "Extract the final answer and compare it with the gold answer as math.",
    ),
)
