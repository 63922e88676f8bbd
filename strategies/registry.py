"""A plain dict from algorithm names to their function and config class.

Each subpackage lists its algorithms in its ``entries.py`` (one ``Entry`` each);
this module joins them. There is no decorator magic. ``get`` raises a
``ValueError`` naming the valid choices.
"""

from __future__ import annotations

from strategies.entry import KINDS, Entry
from strategies.metrics.entries import ENTRIES as METRICS
from strategies.prompting.entries import ENTRIES as PROMPTING
from strategies.sampling.entries import ENTRIES as SAMPLERS
from strategies.select.entries import ENTRIES as SELECTORS
from strategies.verify.entries import ENTRIES as VERIFIERS

__all__ = ["KINDS", "REGISTRY", "Entry", "get", "names"]


def _join(*groups: tuple[Entry, ...]) -> dict[str, Entry]:
    registry: dict[str, Entry] = {}
    for group in groups:
        for entry in group:
            if entry.name in registry:
                raise ValueError(f"strategy name {entry.name!r} is registered twice")
            if entry.kind not in KINDS:
                raise ValueError(f"strategy {entry.name!r} has unknown kind {entry.kind!r}")
            registry[entry.name] = entry
    return registry


REGISTRY: dict[str, Entry] = _join(SAMPLERS, PROMPTING, VERIFIERS, SELECTORS, METRICS)


def get(name: str) -> Entry:
    """Return the entry registered under ``name``; unknown names raise ``ValueError``.

    >>> get("majority").kind
    'selector'
    """
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown strategy {name!r}; valid names: {valid}") from None


def names(kind: str | None = None) -> list[str]:
    """Return the registered names, sorted, optionally only those of one ``kind``.

    >>> names("selector")[:3]
    ['adaptive_consistency', 'b4', 'best_of_majority']
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return sorted(name for name, entry in REGISTRY.items() if kind in (None, entry.kind))
