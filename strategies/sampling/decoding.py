"""Decoding settings for one pool of samples, and the processor chain they imply."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from strategies.sampling._checks import check_int, check_number
from strategies.sampling.base import Processor, check_batch
from strategies.sampling.ead import EADConfig, apply_ead
from strategies.sampling.epsilon import EpsilonConfig, apply_epsilon
from strategies.sampling.eta import EtaConfig, apply_eta
from strategies.sampling.min_p import MinPConfig, apply_min_p
from strategies.sampling.temperature import MAX_TEMPERATURE, TemperatureConfig, apply_temperature
from strategies.sampling.temperature_mix import (
    TemperatureMixConfig,
    apply_row_temperatures,
    check_temperatures,
)
from strategies.sampling.top_h import TopHConfig, apply_top_h
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p
from strategies.sampling.typical import TypicalConfig, apply_typical

__all__ = ["MAX_NEW_TOKENS", "DecodingConfig", "build_processor", "build_row_processor"]

#: Upper bound on ``max_new_tokens``.
MAX_NEW_TOKENS = 8192

#: Fields that are always part of a pool key (the config's original fields).
ALWAYS_KEYED = ("temperature", "top_p", "top_k", "max_new_tokens")
_EAD_FIELDS = ("ead_tau_max", "ead_tau_min", "ead_decay", "ead_warmup")


@dataclass(frozen=True, kw_only=True)
class DecodingConfig:
    """How to turn logits into tokens: temperature (0 = greedy), top-k (0 = off), top-p.

    Optional filters, all off by default: ``min_p`` (0), ``typical_p`` (1), ``epsilon_cutoff``
    and ``eta_cutoff`` (0), Top-H (``top_h_alpha`` 0; ``top_h_n`` candidates, probabilities
    at ``temperature``; it may be combined with top-k/top-p, which then truncate further),
    EAD (``ead``; it replaces the temperature, which must stay 1.0) and ``temperature_mix``
    (sample i uses ``temperature_mix[i % len]``; ``temperature`` is then ignored but must be
    > 0). With ``temperature`` 0 (greedy) every filter is ignored, as in HF.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    min_p: float = 0.0
    typical_p: float = 1.0
    epsilon_cutoff: float = 0.0
    eta_cutoff: float = 0.0
    top_h_alpha: float = 0.0
    top_h_n: int = 100
    ead: bool = False
    ead_tau_max: float = 1.2
    ead_tau_min: float = 0.1
    ead_decay: float = 25.0
    ead_warmup: int = 10
    temperature_mix: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        t, p, k, m = self.temperature, self.top_p, self.top_k, self.max_new_tokens
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise ValueError(f"temperature must be a finite number, got {t!r}")
        if not 0 <= t <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be >= 0 and <= {MAX_TEMPERATURE}, got {t!r}")
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
            raise ValueError(f"top_p must be a finite number, got {p!r}")
        if not 0 < p <= 1:
            raise ValueError(f"top_p must be > 0 and <= 1, got {p!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 disables), got {k!r}")
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= MAX_NEW_TOKENS:
            raise ValueError(
                f"max_new_tokens must be an integer between 1 and {MAX_NEW_TOKENS}, got {m!r}"
            )
        self._check_filters()
        self._check_combinations()

    def _check_filters(self) -> None:
        check_number("min_p", self.min_p, 0.0, 1.0)
        check_number("typical_p", self.typical_p, 0.0, 1.0, low_open=True)
        check_number("epsilon_cutoff", self.epsilon_cutoff, 0.0, 1.0, high_open=True)
        check_number("eta_cutoff", self.eta_cutoff, 0.0, 1.0, high_open=True)
        check_number("top_h_alpha", self.top_h_alpha, 0.0, 1.0)
        check_int("top_h_n", self.top_h_n, 1)
        if not isinstance(self.ead, bool):
            raise ValueError(f"ead must be True or False, got {self.ead!r}")
        check_number("ead_tau_max", self.ead_tau_max, 0.0, MAX_TEMPERATURE, low_open=True)
        check_number("ead_tau_min", self.ead_tau_min, 0.0, MAX_TEMPERATURE, low_open=True)
        if self.ead_tau_min > self.ead_tau_max:
            raise ValueError(
                f"ead_tau_min must be <= ead_tau_max, got {self.ead_tau_min!r} > "
                f"{self.ead_tau_max!r}"
            )
        check_number("ead_decay", self.ead_decay, 0.0, math.inf, low_open=True, high_open=True)
        check_int("ead_warmup", self.ead_warmup, 0)
        if self.temperature_mix != ():
            check_temperatures("temperature_mix", self.temperature_mix)

    def _check_combinations(self) -> None:
        defaults = _defaults()
        if self.top_h_alpha == 0 and self.top_h_n != defaults["top_h_n"]:
            raise ValueError("top_h_n only applies with Top-H: set top_h_alpha > 0 or leave it")
        if not self.ead:
            changed = [name for name in _EAD_FIELDS if getattr(self, name) != defaults[name]]
            if changed:
                raise ValueError(f"{', '.join(changed)} only apply with ead=True")
        elif self.temperature != 1.0:
            raise ValueError(
                f"ead requires temperature == 1.0 (EAD replaces the temperature), "
                f"got temperature={self.temperature!r}"
            )
        elif self.temperature_mix:
            raise ValueError("ead and temperature_mix both set the temperature; choose one")
        if self.temperature_mix and self.temperature == 0:
            raise ValueError(
                "temperature must be > 0 with temperature_mix (greedy decoding has no "
                "temperature to mix)"
            )

    @property
    def is_greedy(self) -> bool:
        """True when ``temperature`` is 0: take the argmax, no sampling and no warpers.

        >>> DecodingConfig(temperature=0).is_greedy
        True
        """
        return self.temperature == 0

    def sample_temperature(self, index: int) -> float:
        """Return the temperature sample ``index`` is drawn at (see ``temperature_mix``).

        >>> DecodingConfig(temperature_mix=(0.5, 1.0)).sample_temperature(2)
        0.5
        """
        if self.temperature_mix:
            mix = TemperatureMixConfig(temperatures=self.temperature_mix)
            return mix.temperature_for_sample(index)
        return float(self.temperature)

    def key_fields(self) -> dict[str, Any]:
        """Return the fields that identify a pool: the original four, plus any non-default.

        Leaving defaults out keeps the key of every pool made before a field was added.

        >>> DecodingConfig(min_p=0.1).key_fields()
        {'temperature': 1.0, 'top_p': 1.0, 'top_k': 0, 'max_new_tokens': 256, 'min_p': 0.1}
        """
        defaults = _defaults()
        return {
            name: value
            for name, value in dataclasses.asdict(self).items()
            if name in ALWAYS_KEYED or value != defaults[name]
        }


def _defaults() -> dict[str, Any]:
    """Return each field's default value."""
    return {
        field.name: field.default
        for field in dataclasses.fields(DecodingConfig)
        if field.default is not dataclasses.MISSING
    }


def _clone(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The identity processor: a validated copy of ``scores``."""
    check_batch(scores, positions)
    return scores.clone()


def _steps(config: DecodingConfig, row_temperatures: torch.Tensor | None) -> list[Processor]:
    """Return the enabled steps: EAD, Top-H, then HF's warpers in HF's order."""
    if config.is_greedy:
        return []
    steps: list[Processor] = []
    if config.ead:
        ead = EADConfig(
            tau_max=config.ead_tau_max,
            tau_min=config.ead_tau_min,
            decay=config.ead_decay,
            warmup=config.ead_warmup,
        )
        steps.append(partial(apply_ead, config=ead))
    if config.top_h_alpha > 0:
        top_h = TopHConfig(
            alpha=config.top_h_alpha, top_n=config.top_h_n, temperature=config.temperature
        )
        steps.append(partial(apply_top_h, config=top_h, temperatures=row_temperatures))
    if row_temperatures is not None:
        steps.append(partial(apply_row_temperatures, temperatures=row_temperatures))
    elif config.temperature != 1.0:
        temperature = TemperatureConfig(temperature=config.temperature)
        steps.append(partial(apply_temperature, config=temperature))
    if config.top_k != 0:
        steps.append(partial(apply_top_k, config=TopKConfig(top_k=config.top_k)))
    if config.top_p < 1.0:
        steps.append(partial(apply_top_p, config=TopPConfig(top_p=config.top_p)))
    if config.min_p > 0:
        steps.append(partial(apply_min_p, config=MinPConfig(min_p=config.min_p)))
    if config.typical_p < 1.0:
        steps.append(partial(apply_typical, config=TypicalConfig(typical_p=config.typical_p)))
    if config.epsilon_cutoff > 0:
        epsilon = EpsilonConfig(epsilon=config.epsilon_cutoff)
        steps.append(partial(apply_epsilon, config=epsilon))
    if config.eta_cutoff > 0:
        steps.append(partial(apply_eta, config=EtaConfig(epsilon=config.eta_cutoff)))
    return steps


@dataclass(frozen=True)
class ProcessorChain:
    """The processor ``build_processor`` returns: the config's steps applied in order.

    It keeps the ``config`` it was built from, so a decoder may take an equivalent
    faster path for chains it recognises (e.g. temperature, top-k and top-p only).
    """

    config: DecodingConfig
    steps: tuple[Processor, ...]

    def __call__(self, scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Apply the configured steps in order (a validated copy when there are none)."""
        if not self.steps:
            return _clone(scores, positions)
        for step in self.steps:
            scores = step(scores, positions)
        return scores

    @property
    def is_basic(self) -> bool:
        """True when only temperature, top-k and top-p act (HF's three common warpers)."""
        defaults = DecodingConfig()
        basic = {"temperature", "top_p", "top_k", "max_new_tokens"}
        return all(
            getattr(self.config, f.name) == getattr(defaults, f.name)
            for f in dataclasses.fields(DecodingConfig)
            if f.name not in basic
        )


def _chain(steps: list[Processor]) -> Processor:
    """Return one processor applying ``steps`` in order (the identity copy when empty)."""
    if not steps:
        return _clone

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Apply the configured steps in order, each to the previous step's output."""
        for step in steps:
            scores = step(scores, positions)
        return scores

    return process


def build_processor(config: DecodingConfig) -> Processor:
    """Return one processor applying the config's steps in HF's order.

    Custom processors come first, as HF runs ``logits_processor=[...]`` before its warpers:
    EAD, then Top-H; then temperature -> top-k -> top-p -> min-p -> typical -> epsilon ->
    eta. Steps that would do nothing are skipped as HF's ``generate`` skips them. A greedy
    config gets no steps at all (HF applies no warpers with ``do_sample=False``); the
    caller takes the argmax of the returned copy. A ``temperature_mix`` config needs
    ``build_row_processor``.

    >>> import torch
    >>> process = build_processor(DecodingConfig(temperature=0.5, top_k=2))
    >>> process(torch.tensor([[1.0, 2.0, 3.0]]), torch.zeros(1, dtype=torch.long))
    tensor([[-inf, 4., 6.]])
    """
    if config.temperature_mix:
        raise ValueError(
            "temperature_mix gives each sample its own temperature: "
            "use build_row_processor(config, sample_indices)"
        )
    return ProcessorChain(config=config, steps=tuple(_steps(config, None)))


def build_row_processor(config: DecodingConfig, sample_indices: Sequence[int]) -> Processor:
    """Return the processor for a batch whose row b holds sample ``sample_indices[b]``.

    With ``temperature_mix`` each row is scaled (and Top-H computed) at its own sample's
    temperature; otherwise this is ``build_processor(config)`` with a batch-size check.

    >>> import torch
    >>> process = build_row_processor(DecodingConfig(temperature_mix=(0.5, 1.0)), [0, 1])
    >>> process(torch.ones(2, 2), torch.zeros(2, dtype=torch.long))
    tensor([[2., 2.],
            [1., 1.]])
    """
    indices = list(sample_indices)
    for index in indices:
        check_int("sample index", index, 0)
    if config.temperature_mix:
        mix = TemperatureMixConfig(temperatures=config.temperature_mix)
        inner = _chain(_steps(config, mix.temperatures_for(indices)))
    else:
        inner = build_processor(config)

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Check the batch matches the sample indices, then run the chain."""
        check_batch(scores, positions)
        if scores.shape[0] != len(indices):
            raise ValueError(
                f"the batch has {scores.shape[0]} rows but {len(indices)} sample indices"
            )
        return inner(scores, positions)

    return process
