"""Logits processors, the decoding config that chains them, and beam search."""

from __future__ import annotations

from strategies.sampling.base import Processor
from strategies.sampling.beam import (
    BeamHypothesis,
    BeamSearchConfig,
    DiverseBeamSearchConfig,
    beam_search,
    diverse_beam_search,
)
from strategies.sampling.decoding import DecodingConfig, build_processor, build_row_processor
from strategies.sampling.ead import EADConfig, apply_ead, ead_temperature, suggest_decay
from strategies.sampling.epsilon import EpsilonConfig, apply_epsilon
from strategies.sampling.eta import EtaConfig, apply_eta
from strategies.sampling.greedy import GreedyConfig, apply_greedy
from strategies.sampling.min_p import MinPConfig, apply_min_p
from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.temperature_mix import (
    TemperatureMixConfig,
    apply_row_temperatures,
    temperature_mix_processor,
)
from strategies.sampling.top_h import TopHConfig, apply_top_h
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p
from strategies.sampling.typical import TypicalConfig, apply_typical

__all__ = [
    "BeamHypothesis",
    "BeamSearchConfig",
    "DecodingConfig",
    "DiverseBeamSearchConfig",
    "EADConfig",
    "EpsilonConfig",
    "EtaConfig",
    "GreedyConfig",
    "MinPConfig",
    "Processor",
    "TemperatureConfig",
    "TemperatureMixConfig",
    "TopHConfig",
    "TopKConfig",
    "TopPConfig",
    "TypicalConfig",
    "apply_ead",
    "apply_epsilon",
    "apply_eta",
    "apply_greedy",
    "apply_min_p",
    "apply_row_temperatures",
    "apply_temperature",
    "apply_top_h",
    "apply_top_k",
    "apply_top_p",
    "apply_typical",
    "beam_search",
    "build_processor",
    "build_row_processor",
    "diverse_beam_search",
    "ead_temperature",
    "suggest_decay",
    "temperature_mix_processor",
]
