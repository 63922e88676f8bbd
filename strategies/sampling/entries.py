"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p

ENTRIES: tuple[Entry, ...] = (
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
)
