"""Exploratory Annealed Decoding (EAD): a temperature that falls with position (§3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_int, check_number
from strategies.sampling.base import check_batch
from strategies.sampling.temperature import MAX_TEMPERATURE

__all__ = [
    "DECAY_SCALE",
    "EADConfig",
    "apply_ead",
    "ead_temperature",
    "ead_temperatures",
    "suggest_decay",
]

#: The reference code multiplies ``decay`` by 20: the exponent is ``t / (20 * decay)``.
DECAY_SCALE = 20.0


@dataclass(frozen=True, kw_only=True)
class EADConfig:
    """``tau_t = max(1 + tau_max - exp(t / (20 * decay)), tau_min)``; ``tau = 1`` for t < warmup."""

    tau_max: float = 1.2
    tau_min: float = 0.1
    decay: float = 25.0
    warmup: int = 10

    def __post_init__(self) -> None:
        check_number("tau_max", self.tau_max, 0.0, MAX_TEMPERATURE, low_open=True)
        check_number("tau_min", self.tau_min, 0.0, MAX_TEMPERATURE, low_open=True)
        if self.tau_min > self.tau_max:
            raise ValueError(
                f"tau_min must be <= tau_max, got tau_min={self.tau_min!r} > {self.tau_max!r}"
            )
        check_number("decay", self.decay, 0.0, math.inf, low_open=True, high_open=True)
        check_int("warmup", self.warmup, 0)


def ead_temperature(t: int, config: EADConfig) -> float:
    """Return the EAD temperature after ``t`` generated tokens.

    >>> round(ead_temperature(200, EADConfig()), 4)
    0.7082
    >>> ead_temperature(5, EADConfig())  # warm-up: logits untouched
    1.0
    """
    if t < config.warmup:
        return 1.0
    return max(1.0 + config.tau_max - math.exp(t / (DECAY_SCALE * config.decay)), config.tau_min)


def suggest_decay(length: int, *, tau_max: float = 1.2, tau_min: float = 0.1) -> float:
    """Return the ``decay`` that makes the temperature reach ``tau_min`` at ``length`` tokens.

    The floor is hit at ``t* = 20 * d * ln(1 + tau_max - tau_min)``; solving for ``d``.

    >>> round(suggest_decay(371), 2)
    25.0
    """
    check_int("length", length, 1)
    EADConfig(tau_max=tau_max, tau_min=tau_min)  # validates the pair
    return length / (DECAY_SCALE * math.log(1.0 + tau_max - tau_min))


def ead_temperatures(positions: torch.Tensor, config: EADConfig) -> torch.Tensor:
    """Return ``[B]`` float64 temperatures, one per row, from tokens generated so far."""
    t = positions.to(torch.float64)
    tau = (1.0 + config.tau_max - torch.exp(t / (DECAY_SCALE * config.decay))).clamp(
        min=config.tau_min
    )
    return torch.where(t < config.warmup, torch.ones_like(tau), tau)


def apply_ead(scores: torch.Tensor, positions: torch.Tensor, config: EADConfig) -> torch.Tensor:
    """Return ``scores / tau_t`` per row, with ``t = positions`` (tokens generated so far).

    >>> import torch
    >>> scores = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    >>> apply_ead(scores, torch.tensor([0, 200]), EADConfig())
    tensor([[1.0000, 2.0000],
            [1.4121, 2.8242]])
    """
    check_batch(scores, positions)
    tau = ead_temperatures(positions, config)
    return scores / tau.to(scores.dtype)[:, None]
