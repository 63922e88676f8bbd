"""A plain dict from algorithm names to their function and config class.

Add an algorithm by importing it here and adding one ``Entry`` to ``REGISTRY``; there is
no decorator magic. ``get`` raises a ``ValueError`` naming the valid choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strategies.metrics.passk import PassAtKConfig, mean_pass_at_k
from strategies.prompting.direct import DirectConfig, render_direct
from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p
from strategies.select.first import FirstConfig, select_first
from strategies.select.majority import MajorityConfig, majority_vote
from strategies.verify.math import MathAnswerConfig, verify_math

__all__ = ["KINDS", "REGISTRY", "Entry", "get", "names"]

KINDS = ("sampler", "prompting", "verifier", "selector", "metric")


@dataclass(frozen=True)
class Entry:
    """One registered algorithm: its public function and its frozen config class."""

    name: str
    kind: str
    function: Callable[..., Any]
    config_class: type
    description: str


_ENTRIES = (
    Entry(
        "temperature",
        "sampler",
        apply_temperature,
        TemperatureConfig,
        "Divide the logits by a temperature.",
    ),
    Entry(
        "top_k",
        "sampler",
        apply_top_k,
        TopKConfig,
        "Keep the k highest logits (ties with the k-th kept).",
    ),
    Entry(
        "top_p",
        "sampler",
        apply_top_p,
        TopPConfig,
        "Keep the smallest set of tokens whose probability reaches top_p (nucleus).",
    ),
    Entry(
        "direct",
        "prompting",
        render_direct,
        DirectConfig,
        "Ask the problem exactly as the dataset states it.",
    ),
    Entry(
        "math",
        "verifier",
        verify_math,
        MathAnswerConfig,
        "Extract the final answer and compare it with the gold answer as math.",
    ),
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
    Entry(
        "pass_at_k",
        "metric",
        mean_pass_at_k,
        PassAtKConfig,
        "Unbiased pass@k averaged over problems, for k <= n.",
    ),
)

REGISTRY: dict[str, Entry] = {entry.name: entry for entry in _ENTRIES}


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

    >>> names("selector")
    ['first', 'majority']
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return sorted(name for name, entry in REGISTRY.items() if kind in (None, entry.kind))
