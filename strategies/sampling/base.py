"""The processor contract shared by every logits processor in this package."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["Processor", "check_batch", "check_min_tokens_to_keep"]

#: A logits processor: ``(scores [B, V] float, positions [B] int64) -> new scores [B, V]``.
#: ``positions`` holds the number of tokens each row has generated so far; processors that
#: do not depend on it (temperature, top-k, top-p) still accept it so that all share one
#: signature. Filtered tokens get ``-inf``; the input is never modified.
Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_batch(scores: torch.Tensor, positions: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``scores`` is float ``[B, V]`` and ``positions`` int ``[B]``."""
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape [B, V], got {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point tensor, got {scores.dtype}")
    if positions.shape != (scores.shape[0],):
        raise ValueError(
            f"positions must have shape [{scores.shape[0]}], got {tuple(positions.shape)}"
        )
    if positions.is_floating_point() or positions.is_complex():
        raise ValueError(f"positions must be an integer tensor, got {positions.dtype}")


def check_min_tokens_to_keep(value: int) -> None:
    """Raise ``ValueError`` unless ``min_tokens_to_keep`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"min_tokens_to_keep must be an integer >= 1, got {value!r}")
