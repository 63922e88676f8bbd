"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.select.first import FirstConfig, select_first
from strategies.select.majority import MajorityConfig, majority_vote

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "first",
        "selector",
        select_first,
        FirstConfig,
        "Take the first candidate (a single-sample baseline).",
    ),
    Entry(
        "majority",
        "selector",
        majority_vote,
        MajorityConfig,
        "Self-consistency: the most common answer; ties go to the earliest.",
    ),
)
