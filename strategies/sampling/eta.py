"""Eta truncation (HF ``EtaLogitsWarper``): an entropy-dependent probability floor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from strategies.sampling._checks import check_number
from strategies.sampling.base import check_batch, check_min_tokens_to_keep
from strategies.sampling.epsilon import keep_above

__all__ = ["EtaConfig", "apply_eta", "eta_threshold"]


@dataclass(frozen=True, kw_only=True)
class EtaConfig:
    """Keep tokens with ``p >= min(epsilon, sqrt(epsilon) * exp(-H(p)))`` (0 disables)."""

    epsilon: float = 1e-3
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, 0.0, 1.0, high_open=True)
        check_min_tokens_to_keep(self.min_tokens_to_keep)


def eta_threshold(scores: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Return each row's ``eta = min(eps, sqrt(eps) * exp(-H))`` as ``[B, 1]`` (H in nats).

    The entropy uses ``xlogy`` so that tokens of probability 0 (``-inf`` logits) add 0.

    >>> import torch
    >>> eta_threshold(torch.zeros(1, 4), 0.04)  # H = ln 4, so sqrt(0.04) / 4 = 0.05 > 0.04
    tensor([[0.0400]])
    """
    probs = scores.softmax(dim=-1)
    entropy = -torch.special.xlogy(probs, probs).sum(dim=-1, keepdim=True)
    eps = torch.tensor(epsilon, dtype=scores.dtype, device=scores.device)
    return torch.minimum(eps, math.sqrt(epsilon) * torch.exp(-entropy))


def apply_eta(scores: torch.Tensor, positions: torch.Tensor, config: EtaConfig) -> torch.Tensor:
    """Return a copy of ``scores`` with every token of probability below eta at -inf.

    >>> import torch
    >>> logits = torch.tensor([[0.9, 0.0999, 0.0001]]).log()
    >>> apply_eta(logits, torch.zeros(1, dtype=torch.long), EtaConfig()).isinf()
    tensor([[False, False,  True]])
    """
    check_batch(scores, positions)
    if config.epsilon == 0:
        return scores.clone()
    eta = eta_threshold(scores, config.epsilon)
    return keep_above(scores, scores.softmax(dim=-1), eta, config.min_tokens_to_keep)
