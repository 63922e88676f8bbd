"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.sampling.beam import (
    BeamSearchConfig,
    DiverseBeamSearchConfig,
    beam_search,
    diverse_beam_search,
)
from strategies.sampling.ead import EADConfig, apply_ead
from strategies.sampling.epsilon import EpsilonConfig, apply_epsilon
from strategies.sampling.eta import EtaConfig, apply_eta
from strategies.sampling.greedy import GreedyConfig, apply_greedy
from strategies.sampling.min_p import MinPConfig, apply_min_p
from strategies.sampling.temperature import TemperatureConfig, apply_temperature
from strategies.sampling.temperature_mix import TemperatureMixConfig, temperature_mix_processor
from strategies.sampling.top_h import TopHConfig, apply_top_h
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p
from strategies.sampling.typical import TypicalConfig, apply_typical

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "greedy",
        "sampler",
        apply_greedy,
        GreedyConfig,
        "Keep only the most likely token (temperature 0).",
    ),
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
        "min_p",
        "sampler",
        apply_min_p,
        MinPConfig,
        "Keep tokens whose probability is at least min_p times the top probability.",
    ),
    Entry(
        "typical_p",
        "sampler",
        apply_typical,
        TypicalConfig,
        "Keep the tokens whose surprisal is closest to the entropy, up to mass typical_p.",
    ),
    Entry(
        "epsilon",
        "sampler",
        apply_epsilon,
        EpsilonConfig,
        "Keep tokens whose probability is at least epsilon.",
    ),
    Entry(
        "eta",
        "sampler",
        apply_eta,
        EtaConfig,
        "Keep tokens above min(epsilon, sqrt(epsilon) * exp(-entropy)).",
    ),
    Entry(
        "top_h",
        "sampler",
        apply_top_h,
        TopHConfig,
        "Keep the most likely tokens while their entropy stays within alpha of the pool's.",
    ),
    Entry(
        "ead",
        "sampler",
        apply_ead,
        EADConfig,
        "Exploratory annealed decoding: a temperature that falls with the position.",
    ),
    Entry(
        "temperature_mix",
        "sampler",
        temperature_mix_processor,
        TemperatureMixConfig,
        "Give sample i of a pool the temperature temperatures[i % len(temperatures)].",
    ),
    Entry(
        "beam_search",
        "sampler",
        beam_search,
        BeamSearchConfig,
        "Beam search with length-normalised scores (HF's rules).",
    ),
    Entry(
        "diverse_beam_search",
        "sampler",
        diverse_beam_search,
        DiverseBeamSearchConfig,
        "Group beam search with a Hamming diversity penalty between groups.",
    ),
)
