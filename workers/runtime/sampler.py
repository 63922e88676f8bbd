"""Token choice for a batch of rows: greedy, or a draw from ``softmax(processor(logits))``.

Every draw is an inverse-CDF lookup with one uniform number per row: the row's token is
the first whose cumulative probability exceeds ``u`` times the total. That is an exact
draw from the row's distribution, whichever path computed it (the top-M fast path of
``workers.runtime.truncation`` or the processor over the whole vocabulary), and it lets
the engine decide which uniform a row gets: sample ``i`` of a request always uses entry
``i`` of ``step_uniforms(seed, step, ...)``, so its tokens do not depend on how rows are
ordered, batched with other prompts or split after running out of memory, nor on ``n``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from workers.runtime.truncation import MAX_FAST_TOP_K, Truncation, fast_filter

#: Top logits tried for rows whose top-p nucleus does not fit in the default top M.
WIDE_TOP_M = 2048

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


_MASK64 = (1 << 64) - 1


def step_uniforms(seed: int, step: int, count: int) -> torch.Tensor:
    """``count`` float64 uniforms in ``[0, 1)`` for one step of a request (CPU).

    Entry ``i`` is sample ``i``'s draw at ``step``. A CPU generator is seeded from
    ``(seed, step)`` (SplitMix64), and float64 ``rand`` on CPU fills values in order, so
    entry ``i`` is the same whatever ``count``: a sample's tokens depend on its request's
    seed and its index only, not on ``n``, the batch, or the device.

    >>> bool((step_uniforms(7, 3, 8)[:5] == step_uniforms(7, 3, 5)).all())
    True
    """
    import torch

    state = (int(seed) * 0x9E3779B97F4A7C15 + int(step) + 1) & _MASK64
    state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & _MASK64
    generator = torch.Generator()
    generator.manual_seed(state ^ (state >> 31))
    return torch.rand(count, generator=generator, dtype=torch.float64)


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Index drawn from each row of ``probs`` (non-negative, any scale) by ``uniforms``.

    ``uniforms`` are float64 in ``[0, 1)``; the result always has a positive probability.

    >>> import torch
    >>> inverse_cdf(torch.tensor([[0.0, 1.0, 0.0, 3.0]] * 3), torch.tensor([0.0, 0.3, 0.9],
    ...     dtype=torch.float64)).tolist()
    [1, 3, 3]
    """
    import torch

    cdf = probs.double().cumsum(dim=-1)
    total = cdf[:, -1:]
    target = torch.minimum(uniforms.unsqueeze(-1) * total, torch.nextafter(total, total * 0))
    return torch.searchsorted(cdf, target, right=True).squeeze(-1)


def _full_distribution(
    logits: torch.Tensor, step: int, processor: Processor | None, spec: Truncation | None
) -> torch.Tensor:
    """``softmax(processor(logits))`` over the whole vocabulary, one row per row.

    Rows whose processed scores are all filtered (or not finite) put all their mass on
    the raw argmax. A temperature-only ``spec`` replaces the processor's copy and scaling.
    """
    import torch

    if spec is not None and not spec.is_truncating:
        scores = logits / spec.temperature if spec.temperature != 1.0 else logits
    elif processor is not None:
        positions = torch.full((logits.shape[0],), step, dtype=torch.long, device=logits.device)
        scores = processor(logits.clone(), positions).float()
    else:
        scores = logits
    probs = torch.softmax(scores, dim=-1)
    bad = ~torch.isfinite(probs).all(dim=-1) | ~(scores > -math.inf).any(dim=-1)
    if bool(bad.any()):
        probs = torch.where(bad.unsqueeze(-1), torch.zeros_like(probs), probs)
        rows = bad.nonzero(as_tuple=True)[0]
        probs[rows, torch.argmax(logits[rows], dim=-1)] = 1.0
    return probs


def choose_tokens(
    logits: torch.Tensor,
    uniforms: torch.Tensor | None,
    *,
    step: int,
    processor: Processor | None,
    spec: Truncation | None,
    greedy: bool,
    stats: dict[str, int] | None = None,
) -> torch.Tensor:
    """One token per row of float32 ``logits``: the argmax, or a draw with ``uniforms``.

    With a truncating ``spec`` the rows whose kept set provably lies in their top-M
    logits are drawn from those (``truncation.fast_filter``); the rows whose nucleus is
    wider try the top ``WIDE_TOP_M``, and the rest use the full distribution. All give
    ``softmax(processor(logits))``. ``stats`` (optional) counts the rows of each path.
    """
    import torch

    if greedy:
        return torch.argmax(logits, dim=-1)
    assert uniforms is not None
    if spec is None or not spec.is_truncating or spec.top_k > MAX_FAST_TOP_K:
        _count(stats, "full", logits.shape[0])
        return inverse_cdf(_full_distribution(logits, step, processor, spec), uniforms)
    ids, probs, ok = fast_filter(logits, spec)
    if bool(ok.all()):
        _count(stats, "fast", logits.shape[0])
        return _pick(ids, probs, uniforms)
    chosen = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    fast = ok.nonzero(as_tuple=True)[0]
    if fast.numel():
        chosen[fast] = _pick(ids[fast], probs[fast], uniforms[fast])
    slow = (~ok).nonzero(as_tuple=True)[0]
    _count(stats, "fast", int(fast.numel()))
    if spec.top_k == 0 and ids.shape[-1] < min(WIDE_TOP_M, logits.shape[-1]):
        # Flat rows: a nucleus wider than the top M often fits in the top WIDE_TOP_M, still
        # far cheaper to find than the full path's sort of the whole vocabulary.
        ids, probs, ok = fast_filter(logits[slow], spec, top_m=WIDE_TOP_M)
        wide = ok.nonzero(as_tuple=True)[0]
        if wide.numel():
            chosen[slow[wide]] = _pick(ids[wide], probs[wide], uniforms[slow[wide]])
        _count(stats, "wide", int(wide.numel()))
        slow = slow[~ok]
    if slow.numel():
        full = _full_distribution(logits[slow], step, processor, None)
        chosen[slow] = inverse_cdf(full, uniforms[slow])
    _count(stats, "full", int(slow.numel()))
    return chosen


def _pick(ids: torch.Tensor, probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """The token ids drawn from the top-M distributions ``probs`` over ``ids``."""
    return ids.gather(-1, inverse_cdf(probs, uniforms).unsqueeze(-1)).squeeze(-1)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Raw log-probability of ``tokens`` under ``logits`` (``log_softmax`` at the token).

    The whole ``log_softmax`` and a gather: on a CPU it measured 1.4x (1 row) to 2.4x
    (64 rows of a 49,152-token vocabulary) faster than ``logsumexp`` alone."""
    import torch

    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _count(stats: dict[str, int] | None, key: str, value: int) -> None:
    if stats is not None:
        stats[key] = stats.get(key, 0) + value
