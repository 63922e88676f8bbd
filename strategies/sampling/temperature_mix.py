"""Temperature-mix pools: sample i of a pool uses ``temperatures[i % len(temperatures)]``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_int, check_number
from strategies.sampling.base import Processor, check_batch
from strategies.sampling.temperature import MAX_TEMPERATURE

__all__ = [
    "TemperatureMixConfig",
    "apply_row_temperatures",
    "check_temperatures",
    "temperature_mix_processor",
]


def check_temperatures(name: str, temperatures: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless it is a non-empty tuple of valid temperatures."""
    if not isinstance(temperatures, tuple) or not temperatures:
        raise ValueError(f"{name} must be a non-empty tuple of temperatures, got {temperatures!r}")
    for value in temperatures:
        check_number(f"each of {name}", value, 0.0, MAX_TEMPERATURE, low_open=True)


@dataclass(frozen=True, kw_only=True)
class TemperatureMixConfig:
    """Cycle through ``temperatures`` by sample index, so one pool mixes several temperatures."""

    temperatures: tuple[float, ...] = (0.6, 0.8, 1.0)

    def __post_init__(self) -> None:
        check_temperatures("temperatures", self.temperatures)

    def temperature_for_sample(self, index: int) -> float:
        """Return the temperature of sample ``index`` (``temperatures[index % len]``).

        >>> TemperatureMixConfig(temperatures=(0.5, 1.0)).temperature_for_sample(3)
        1.0
        """
        check_int("index", index, 0)
        return float(self.temperatures[index % len(self.temperatures)])

    def temperatures_for(self, sample_indices: Sequence[int]) -> torch.Tensor:
        """Return a float32 ``[B]`` tensor of the temperatures of the given sample indices.

        >>> TemperatureMixConfig(temperatures=(0.5, 1.0)).temperatures_for([0, 1, 2])
        tensor([0.5000, 1.0000, 0.5000])
        """
        values = [self.temperature_for_sample(index) for index in sample_indices]
        return torch.tensor(values, dtype=torch.float32)


def apply_row_temperatures(
    scores: torch.Tensor, positions: torch.Tensor, temperatures: torch.Tensor
) -> torch.Tensor:
    """Return ``scores`` with row b divided by ``temperatures[b]`` (a new tensor).

    >>> import torch
    >>> apply_row_temperatures(torch.ones(2, 2), torch.zeros(2, dtype=torch.long),
    ...                        torch.tensor([0.5, 2.0]))
    tensor([[2.0000, 2.0000],
            [0.5000, 0.5000]])
    """
    check_batch(scores, positions)
    if temperatures.shape != (scores.shape[0],):
        raise ValueError(
            f"temperatures must have shape [{scores.shape[0]}], got {tuple(temperatures.shape)}"
        )
    if not bool((temperatures > 0).all()):
        raise ValueError("temperatures must all be > 0 (use greedy decoding for 0)")
    return scores / temperatures.to(device=scores.device, dtype=scores.dtype)[:, None]


def temperature_mix_processor(
    config: TemperatureMixConfig, sample_indices: Sequence[int]
) -> Processor:
    """Return a processor for a batch whose row b holds sample ``sample_indices[b]``.

    >>> import torch
    >>> process = temperature_mix_processor(TemperatureMixConfig(temperatures=(0.5, 1.0)), [0, 1])
    >>> process(torch.ones(2, 2), torch.zeros(2, dtype=torch.long))
    tensor([[2., 2.],
            [1., 1.]])
    """
    temperatures = config.temperatures_for(sample_indices)

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Divide each row by its sample's temperature."""
        return apply_row_temperatures(scores, positions, temperatures)

    return process
