"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.prompting.direct import DirectConfig, render_direct

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "direct",
        "prompting",
        render_direct,
        DirectConfig,
        "Ask the problem exactly as the dataset states it.",
    ),
)
