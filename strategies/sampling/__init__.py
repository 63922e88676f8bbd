"""Logits processors (temperature, top-k, top-p) and the decoding config that chains them."""

from __future__ import annotations

from strategies.sampling.base import Processor
from strategies.sampling.decoding import DecodingConfig, build_processor
from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p

__all__ = [
    "DecodingConfig",
    "Processor",
    "TemperatureConfig",
    "TopKConfig",
    "TopPConfig",
    "apply_temperature",
    "apply_top_k",
    "apply_top_p",
    "build_processor",
]
