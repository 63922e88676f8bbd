"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.metrics.passk import PassAtKConfig, mean_pass_at_k

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "pass_at_k",
        "metric",
        mean_pass_at_k,
        PassAtKConfig,
        "Unbiased pass@k averaged over problems, for k <= n.",
    ),
)
