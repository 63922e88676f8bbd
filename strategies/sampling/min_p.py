"""Min-p truncation (HF ``MinPLogitsWarper``): keep tokens with p >= min_p * max p."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_number
from strategies.sampling.base import check_batch, check_min_tokens_to_keep

__all__ = ["MinPConfig", "apply_min_p"]


@dataclass(frozen=True, kw_only=True)
class MinPConfig:
    """Keep tokens whose probability is at least ``min_p`` times the row's top probability."""

    min_p: float = 0.05
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        check_number("min_p", self.min_p, 0.0, 1.0)
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def apply_min_p(scores: torch.Tensor, positions: torch.Tensor, config: MinPConfig) -> torch.Tensor:
    """Return a copy of ``scores`` with tokens below ``min_p * max_j p_j`` set to -inf.

    The ``min_tokens_to_keep`` most likely tokens always survive; ``min_p = 0`` keeps all.

    >>> import torch
    >>> logits = torch.tensor([[0.6, 0.3, 0.1]]).log()
    >>> apply_min_p(logits, torch.zeros(1, dtype=torch.long), MinPConfig(min_p=0.4)).isinf()
    tensor([[False, False,  True]])
    """
    check_batch(scores, positions)
    probs = scores.softmax(dim=-1)
    remove = probs < config.min_p * probs.amax(dim=-1, keepdim=True)
    keep = min(config.min_tokens_to_keep, scores.shape[-1])
    top = torch.topk(probs, keep, dim=-1).indices
    remove = remove.scatter(-1, top, False)
    return scores.masked_fill(remove, float("-inf"))
