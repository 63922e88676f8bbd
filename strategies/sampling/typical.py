"""Locally typical sampling (HF ``TypicalLogitsWarper``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_number
from strategies.sampling.base import check_batch, check_min_tokens_to_keep

__all__ = ["TypicalConfig", "apply_typical"]


@dataclass(frozen=True, kw_only=True)
class TypicalConfig:
    """Keep the tokens whose surprisal is closest to the entropy, up to mass ``typical_p``."""

    typical_p: float = 0.9
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        check_number("typical_p", self.typical_p, 0.0, 1.0, low_open=True)
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def apply_typical(
    scores: torch.Tensor, positions: torch.Tensor, config: TypicalConfig
) -> torch.Tensor:
    """Return a copy of ``scores`` keeping each row's locally typical set; the rest is -inf.

    Tokens are sorted by ``|-log p_i - H(p)|`` (entropy in nats, ``p = 0`` adding 0);
    the shortest prefix whose mass reaches ``typical_p`` is kept, together with every token
    scoring no worse than the last one of that prefix (HF's tie rule). ``typical_p = 1``
    keeps everything (HF rejects 1; this package treats it as "off").

    >>> import torch
    >>> logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    >>> config = TypicalConfig(typical_p=0.2)  # H = 1.14 nats; -log 0.3 = 1.20 is closest
    >>> apply_typical(logits, torch.zeros(1, dtype=torch.long), config).isinf()
    tensor([[ True, False,  True,  True]])
    """
    check_batch(scores, positions)
    if config.typical_p >= 1.0:
        return scores.clone()
    log_probs = torch.log_softmax(scores, dim=-1)
    entropy = -(log_probs * log_probs.exp()).nansum(dim=-1, keepdim=True)
    shifted = (-log_probs - entropy).abs()
    sorted_shifted, sorted_indices = torch.sort(shifted, descending=False, dim=-1)
    cumulative = scores.gather(-1, sorted_indices).softmax(dim=-1).cumsum(dim=-1)
    last = (cumulative < config.typical_p).sum(dim=-1).clamp(max=scores.shape[-1] - 1)
    sorted_remove = sorted_shifted > sorted_shifted.gather(-1, last[:, None])
    sorted_remove[..., : config.min_tokens_to_keep] = False
    remove = sorted_remove.scatter(-1, sorted_indices, sorted_remove)
    return scores.masked_fill(remove, float("-inf"))
