"""Top-k truncation (HF ``TopKLogitsWarper``): keep logits >= the k-th largest."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from strategies.sampling.base import check_batch, check_min_tokens_to_keep

__all__ = ["TopKConfig", "apply_top_k"]


@dataclass(frozen=True, kw_only=True)
class TopKConfig:
    """Keep the ``top_k`` highest logits per row (ties with the k-th are kept; 0 disables)."""

    top_k: int = 50
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        k = self.top_k
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 disables), got {k!r}")
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def apply_top_k(scores: torch.Tensor, positions: torch.Tensor, config: TopKConfig) -> torch.Tensor:
    """Return a copy of ``scores`` with every logit below the row's k-th largest set to -inf.

    Like HF, ``k`` is raised to ``min_tokens_to_keep``, capped at the vocabulary size, and
    a logit equal to the k-th largest survives, so ties can keep more than k tokens.

    >>> import torch
    >>> apply_top_k(torch.tensor([[1.0, 3.0, 3.0, 2.0]]), torch.zeros(1, dtype=torch.long),
    ...             TopKConfig(top_k=1))
    tensor([[-inf, 3., 3., -inf]])
    """
    check_batch(scores, positions)
    if config.top_k == 0:
        return scores.clone()
    k = min(max(config.top_k, config.min_tokens_to_keep), scores.shape[-1])
    kth_largest = torch.topk(scores, k, dim=-1).values[..., -1:]
    return scores.masked_fill(scores < kth_largest, float("-inf"))
