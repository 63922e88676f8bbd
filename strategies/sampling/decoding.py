"""Decoding settings for one pool of samples, and the processor chain they imply."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch

from strategies.sampling.base import Processor, check_batch
from strategies.sampling.temperature import MAX_TEMPERATURE, TemperatureConfig, apply_temperature
from strategies.sampling.top_k import TopKConfig, apply_top_k
from strategies.sampling.top_p import TopPConfig, apply_top_p

__all__ = ["MAX_NEW_TOKENS", "DecodingConfig", "build_processor"]

#: Upper bound on ``max_new_tokens``.
MAX_NEW_TOKENS = 8192


@dataclass(frozen=True, kw_only=True)
class DecodingConfig:
    """How to turn logits into tokens: temperature (0 = greedy), top-k (0 = off), top-p."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256

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

    @property
    def is_greedy(self) -> bool:
        """True when ``temperature`` is 0: take the argmax, no sampling and no warpers.

        >>> DecodingConfig(temperature=0).is_greedy
        True
        """
        return self.temperature == 0


def _clone(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The identity processor: a validated copy of ``scores``."""
    check_batch(scores, positions)
    return scores.clone()


def build_processor(config: DecodingConfig) -> Processor:
    """Return one processor applying temperature -> top-k -> top-p, in HF's order.

    Steps that would do nothing are skipped as HF's ``generate`` skips them: temperature
    1.0, top-k 0 and top-p 1.0. A greedy config gets no warpers at all (HF applies none
    with ``do_sample=False``); the caller takes the argmax of the returned copy.

    >>> import torch
    >>> process = build_processor(DecodingConfig(temperature=0.5, top_k=2))
    >>> process(torch.tensor([[1.0, 2.0, 3.0]]), torch.zeros(1, dtype=torch.long))
    tensor([[-inf, 4., 6.]])
    """
    steps: list[Processor] = []
    if not config.is_greedy:
        if config.temperature != 1.0:
            temperature = TemperatureConfig(temperature=config.temperature)
            steps.append(partial(apply_temperature, config=temperature))
        if config.top_k != 0:
            steps.append(partial(apply_top_k, config=TopKConfig(top_k=config.top_k)))
        if config.top_p < 1.0:
            steps.append(partial(apply_top_p, config=TopPConfig(top_p=config.top_p)))
    if not steps:
        return _clone

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Apply the configured steps in order, each to the previous step's output."""
        for step in steps:
            scores = step(scores, positions)
        return scores

    return process
