"""Exact temperature + top-k + top-p sampling on the top-M logits only.

The engine's processors see the whole vocabulary: top-p sorts all V logits of every
row at every step, then ``softmax`` and ``multinomial`` run over V again. When the
processor is the chain ``build_processor`` makes from temperature, top-k and top-p
only, the kept set can be found from the M largest logits plus one ``logsumexp`` over
the row, and sampling only needs the kept tokens: the same distribution for a small
part of the cost.

Top-p (HF's rule, see ``strategies.sampling.top_p``) keeps a token when the probability
mass of the tokens ranked strictly above it is below ``top_p``. With the exact
normaliser (``logsumexp`` over the whole row, or over the top-k survivors) that mass is
an exclusive cumulative sum over the sorted top-M probabilities. A row takes the fast
path only when its decision is unambiguous: no cumulative mass within ``MARGIN`` of
``top_p`` (far above the float32 rounding of the full path's cumulative sum), the kept
set ends inside the top M, no tie straddles the boundary, and the row is finite. Every
other row goes through the full processor, so the filtered distribution is always the
one the full path would produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: Rows whose nucleus boundary lies within this much probability mass of ``top_p`` use
#: the full path. On 2,260 real SmolLM2 rows the full path's float32 cumulative sum
#: (``softmax`` then ``cumsum`` over 49,152 sorted probabilities; on CPU ``cumsum``
#: accumulates in float64) differed from the exact sum by at most 1.3e-8 near the
#: boundary, so a 1e-5 gap decides the same way with a thousandfold safety factor. A
#: 1e-3 gap sent 18% of those rows (long tails of tiny tokens straddle any wide margin)
#: to the full path, 1e-5 sends 1%.
MARGIN = 1e-5
#: How many top logits the fast path looks at when only top-p truncates.
DEFAULT_TOP_M = 64
#: Above this top-k the fast path is not worth it (``topk`` of k+1 values per row).
MAX_FAST_TOP_K = 1024


@dataclass(frozen=True)
class Truncation:
    """A processor made only of temperature, then top-k (0 = off), then top-p (1 = off).

    ``top_k`` is already raised to its ``min_tokens_to_keep``; top-p keeps at least one
    token (its default), which the rule keeps anyway.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    @property
    def is_truncating(self) -> bool:
        """Whether any token can be filtered out (top-k or top-p is on)."""
        return self.top_k > 0 or self.top_p < 1.0


def describe_processor(processor: Any) -> Truncation | None:
    """The ``Truncation`` equivalent to ``processor``, or None when it is anything else.

    Recognises the ``ProcessorChain`` that ``strategies.sampling.build_processor`` returns
    for configs using temperature, top-k and top-p only. Any other processor gives None:
    the engine then runs the processor itself, which is always correct.
    """
    from strategies.sampling.decoding import ProcessorChain

    if not isinstance(processor, ProcessorChain) or not processor.is_basic:
        return None
    config = processor.config
    if config.is_greedy:
        return None
    return Truncation(
        temperature=float(config.temperature),
        top_k=int(config.top_k),
        top_p=float(config.top_p),
    )


def fast_filter(
    logits: torch.Tensor, spec: Truncation, top_m: int = DEFAULT_TOP_M
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The filtered distribution of each row over its top-M tokens.

    Returns ``(token ids [B, M'], probabilities [B, M'] float32, ok [B] bool)``: for rows
    with ``ok`` the probabilities (zero for filtered tokens) are exactly the full path's
    ``softmax(processor(logits))`` restricted to those tokens, whose complement it gives
    zero. Rows without ``ok`` must take the full path. Requires ``spec.is_truncating``.
    """
    import torch

    rows, vocab = logits.shape
    scores = logits / spec.temperature if spec.temperature != 1.0 else logits
    k = min(spec.top_k, vocab) if spec.top_k > 0 else 0
    m = min(k + 1 if k else top_m, vocab)
    values, ids = torch.topk(scores, m, dim=-1)
    ok = torch.isfinite(values[:, 0])
    if k:
        if k < vocab:
            # A tie with the k-th value beyond it would keep tokens outside the top M.
            ok &= values[:, k] < values[:, k - 1]
        values = values.clone()
        values[:, k:] = -torch.inf
        normaliser = torch.logsumexp(values, dim=-1, keepdim=True)
    else:
        normaliser = torch.logsumexp(scores, dim=-1, keepdim=True)
    ok &= torch.isfinite(normaliser.squeeze(-1))
    if spec.top_p < 1.0:
        mass = torch.exp(values.double() - normaliser.double())
        above = torch.cumsum(mass, dim=-1) - mass  # mass ranked strictly above each token
        keep = above < spec.top_p
        ok &= (keep == (above < spec.top_p - MARGIN)).all(dim=-1)
        ok &= (keep == (above < spec.top_p + MARGIN)).all(dim=-1)
        total = above[:, -1] + mass[:, -1]
        if not k or k == vocab:
            # The kept set must end inside the top M (top-k already bounds it otherwise).
            ok &= (total >= spec.top_p + MARGIN) | (m == vocab)
        # No tie between the last kept and the first dropped token.
        kept = keep.sum(dim=-1)
        inside = kept < m
        last = values.gather(-1, (kept - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
        first_out = values.gather(-1, kept.clamp(max=m - 1).unsqueeze(-1)).squeeze(-1)
        ok &= ~inside | (first_out < last)
        values = values.masked_fill(~keep, -torch.inf)
    probs = torch.softmax(values, dim=-1)
    return ids, probs, ok
