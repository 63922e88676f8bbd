"""Temperature scaling of logits (HF ``TemperatureLogitsWarper``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from strategies.sampling.base import check_batch

__all__ = ["MAX_TEMPERATURE", "TemperatureConfig", "apply_temperature"]

#: Upper bound shared with ``DecodingConfig``; higher values give noise, not diversity.
MAX_TEMPERATURE = 5.0


@dataclass(frozen=True, kw_only=True)
class TemperatureConfig:
    """Divide logits by ``temperature`` (strictly positive; use greedy decoding for 0)."""

    temperature: float = 1.0

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise ValueError(f"temperature must be a finite number, got {t!r}")
        if not 0 < t <= MAX_TEMPERATURE:
            raise ValueError(
                f"temperature must be > 0 and <= {MAX_TEMPERATURE} "
                f"(use greedy decoding for 0), got {t!r}"
            )


def apply_temperature(
    scores: torch.Tensor, positions: torch.Tensor, config: TemperatureConfig
) -> torch.Tensor:
    """Return ``scores / temperature`` for every row of the batch (a new tensor).

    >>> import torch
    >>> apply_temperature(torch.tensor([[2.0, 4.0]]), torch.zeros(1, dtype=torch.long),
    ...                   TemperatureConfig(temperature=2.0))
    tensor([[1., 2.]])
    """
    check_batch(scores, positions)
    return scores / config.temperature
