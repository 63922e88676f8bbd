"""Batched sampler: one prefill shared by N candidates, decoded together.

``generate`` tokenises the prompt once and runs it through the model once with batch
size 1. The resulting KV cache is repeated along its batch dimension for the N
candidates, which are then decoded in lock-step (they all share the prompt, so no
padding is ever needed). A candidate that finishes (end-of-sequence token, a stop
string, or ``max_new_tokens``) leaves the batch: the cache keeps only the rows still
running, so no step is spent decoding padding.

Log-probabilities are those of the unmodified model: the raw logit of the chosen token
minus the row's ``logsumexp`` (``log_softmax`` at that token), whatever the sampling
processor did to the scores. Sampling draws from ``softmax(processor(raw_logits,
positions))`` with a ``torch.Generator`` seeded from ``seed``; the global RNG is never
touched, so equal inputs give equal outputs.

When the processor is one ``build_processor`` made from temperature, top-k and top-p only,
the rows whose kept set provably lies inside their top-M logits are drawn from those
M tokens (``workers.runtime.truncation``): the same distribution without sorting and
sampling over the whole vocabulary. The remaining rows, and every other processor, go
through the processor over the full vocabulary.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from workers.runtime.truncation import (
    MAX_FAST_TOP_K,
    Truncation,
    describe_processor,
    fast_filter,
)

if TYPE_CHECKING:
    import torch

    from workers.runtime.models import LoadedModel

logger = logging.getLogger(__name__)

FinishReason = Literal["eos", "length", "stop"]
#: ``processor(raw_logits_float32 [B, V], positions [B] int64) -> scores [B, V]``;
#: filtered tokens get ``-inf``. ``positions`` counts the tokens generated so far.
Processor = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

#: Tokens decoded from the end of a sequence, beyond the longest stop string's length,
#: when looking for a stop string that the newest token may have completed.
_STOP_WINDOW_SLACK = 8


@dataclass(frozen=True)
class GeneratedSample:
    """One generated candidate.

    ``token_ids`` are all generated tokens, including the end-of-sequence token or the
    token that completed a stop string; ``token_logprobs`` has one raw-model log-prob
    per token and ``logprob_sum`` is their sum. ``text`` is the decoded generation
    (special tokens skipped), cut just before the first stop string when one was hit.
    ``seconds`` is this sample's share of the call's wall time (proportional to its
    generated tokens; the shares of one call sum to its wall time).
    """

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    generated_tokens: int
    logprob_sum: float
    token_logprobs: tuple[float, ...]
    finish_reason: FinishReason
    seconds: float


def stable_seed(seed: int, index: int) -> int:
    """A seed derived from ``(seed, index)`` that is the same in every process."""
    digest = hashlib.sha256(f"{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**63 - 1)


def _new_cache(model: Any) -> Any:
    """An empty dynamic KV cache laid out for ``model`` (sliding layers included)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers without the ``config`` argument
        return DynamicCache()


def _repeat_cache(cache: Any, repeats: int) -> None:
    """Repeat every cached row ``repeats`` times along the batch dimension, in place."""
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(repeats)
        return
    for layer in cache.layers:  # pragma: no cover - fallback for other cache classes
        layer.keys = layer.keys.repeat_interleave(repeats, dim=0)
        layer.values = layer.values.repeat_interleave(repeats, dim=0)


def _select_cache(cache: Any, indices: torch.Tensor) -> None:
    """Keep only the batch rows ``indices`` of the cache, in place."""
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(indices)
        return
    for layer in cache.layers:  # pragma: no cover - fallback for other cache classes
        layer.keys = layer.keys.index_select(0, indices)
        layer.values = layer.values.index_select(0, indices)


def _accepts_logits_to_keep(model: Any) -> bool:
    """Whether ``model.forward`` can skip computing logits for all prompt positions."""
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _sample_full(
    logits: torch.Tensor,
    step: int,
    processor: Processor | None,
    spec: Truncation | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw one token per row from ``softmax(processor(logits))`` over the whole vocabulary.

    Rows whose processed scores are all filtered (or not finite) take the raw argmax.
    A non-truncating ``spec`` (temperature only) replaces the processor's copy and scaling.
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
        # All filtered (or NaN): fall back to the raw argmax for those rows.
        probs = torch.where(bad.unsqueeze(-1), torch.zeros_like(probs), probs)
        rows = bad.nonzero(as_tuple=True)[0]
        probs[rows, torch.argmax(logits[rows], dim=-1)] = 1.0
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def _choose(
    logits: torch.Tensor,
    step: int,
    processor: Processor | None,
    spec: Truncation | None,
    greedy: bool,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row; return (token ids [B], raw log-probs of them [B]).

    With a truncating ``spec`` the rows whose kept set is provably inside their top-M
    logits are drawn from it (``truncation.fast_filter``), the others from the full path;
    both give the distribution ``softmax(processor(logits))``.
    """
    import torch

    if greedy:
        chosen = torch.argmax(logits, dim=-1)
    elif spec is not None and spec.is_truncating and spec.top_k <= MAX_FAST_TOP_K:
        ids, probs, ok = fast_filter(logits, spec)
        if bool(ok.all()):
            pick = torch.multinomial(probs, num_samples=1, generator=generator)
            chosen = ids.gather(-1, pick).squeeze(-1)
        else:
            chosen = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
            fast = ok.nonzero(as_tuple=True)[0]
            if fast.numel():
                pick = torch.multinomial(probs[fast], num_samples=1, generator=generator)
                chosen[fast] = ids[fast].gather(-1, pick).squeeze(-1)
            slow = (~ok).nonzero(as_tuple=True)[0]
            chosen[slow] = _sample_full(logits[slow], step, processor, None, generator)
    else:
        chosen = _sample_full(logits, step, processor, spec, generator)
    # The raw log-prob of one token needs the row's logsumexp, not a full log_softmax.
    normaliser = torch.logsumexp(logits, dim=-1)
    chosen_logprobs = logits.gather(-1, chosen.unsqueeze(-1)).squeeze(-1) - normaliser
    return chosen, chosen_logprobs


def _find_stop(text: str, stop_strings: Sequence[str]) -> int:
    """Index of the earliest stop string in ``text``, or -1."""
    hits = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(hits) if hits else -1


def generate(
    loaded: LoadedModel,
    prompt_text: str,
    *,
    n: int,
    processor: Processor | None,
    greedy: bool,
    max_new_tokens: int,
    seed: int,
    stop_strings: Sequence[str] = (),
) -> list[GeneratedSample]:
    """Generate ``n`` candidates continuing ``prompt_text`` (already rendered).

    The prompt is prefilled once (batch size 1) and its KV cache shared by the ``n``
    rows. Each row stops on any of ``loaded.eos_token_ids`` ("eos"), on a stop string
    ("stop") or after ``max_new_tokens`` tokens ("length"), and then leaves the batch.
    ``greedy`` takes the argmax of the raw logits (the processor is ignored);
    otherwise tokens are drawn from ``softmax(processor(logits, positions))``.
    Samples are returned in row order 0..n-1.
    """
    import torch

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    started = time.perf_counter()
    model = loaded.model
    tokenizer = loaded.tokenizer
    device = loaded.device
    eos = set(loaded.eos_token_ids)
    stops = tuple(s for s in stop_strings if s)
    stop_window = max((len(s) for s in stops), default=0) + _STOP_WINDOW_SLACK

    spec = None if greedy else describe_processor(processor)
    prompt_ids = loaded.encode_prompt(prompt_text)
    if not prompt_ids:
        raise ValueError("the prompt encodes to no tokens")
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) % (2**64))

    tokens: list[list[int]] = [[] for _ in range(n)]
    logprobs: list[list[float]] = [[] for _ in range(n)]
    finish: list[FinishReason | None] = [None] * n
    stop_at: list[int] = [-1] * n
    active = list(range(n))  # sample index of each batch row

    with torch.inference_mode():
        cache = _new_cache(model)
        extra = {"logits_to_keep": 1} if _accepts_logits_to_keep(model) else {}
        out = model(
            input_ids=torch.tensor([prompt_ids], dtype=torch.long, device=device),
            past_key_values=cache,
            use_cache=True,
            **extra,
        )
        cache = out.past_key_values
        logits = out.logits[:, -1, :].float()
        if n > 1:
            _repeat_cache(cache, n)
            logits = logits.repeat(n, 1)
        step = 0
        while True:
            chosen_t, chosen_lp_t = _choose(logits, step, processor, spec, greedy, generator)
            chosen = chosen_t.tolist()
            chosen_lp = chosen_lp_t.double().tolist()
            keep: list[int] = []
            for row, sample in enumerate(active):
                token = int(chosen[row])
                tokens[sample].append(token)
                logprobs[sample].append(float(chosen_lp[row]))
                if token in eos:
                    finish[sample] = "eos"
                    continue
                if stops:
                    window = tokenizer.decode(
                        tokens[sample][-stop_window:], skip_special_tokens=True
                    )
                    if _find_stop(window, stops) >= 0:
                        finish[sample] = "stop"
                        continue
                if len(tokens[sample]) >= max_new_tokens:
                    finish[sample] = "length"
                    continue
                keep.append(row)
            if not keep:
                break
            if len(keep) < len(active):
                _select_cache(cache, torch.tensor(keep, dtype=torch.long, device=device))
                active = [active[row] for row in keep]
            next_ids = torch.tensor(
                [[int(chosen[row])] for row in keep], dtype=torch.long, device=device
            )
            out = model(input_ids=next_ids, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            step += 1

    texts: list[str] = []
    for sample in range(n):
        text = tokenizer.decode(tokens[sample], skip_special_tokens=True)
        if finish[sample] == "stop":
            stop_at[sample] = _find_stop(text, stops)
            if stop_at[sample] >= 0:
                text = text[: stop_at[sample]]
        texts.append(text)

    wall = time.perf_counter() - started
    total_tokens = sum(len(t) for t in tokens)
    samples = [
        GeneratedSample(
            text=texts[i],
            token_ids=tuple(tokens[i]),
            prompt_tokens=len(prompt_ids),
            generated_tokens=len(tokens[i]),
            logprob_sum=math.fsum(logprobs[i]),
            token_logprobs=tuple(logprobs[i]),
            finish_reason=finish[i] or "length",
            seconds=wall * len(tokens[i]) / total_tokens if total_tokens else wall / n,
        )
        for i in range(n)
    ]
    logger.debug(
        "generated %d x %d tokens (prompt %d) in %.2f s: %.1f tok/s",
        n,
        max(len(t) for t in tokens),
        len(prompt_ids),
        wall,
        total_tokens / wall if wall > 0 else 0.0,
    )
    return samples


def generate_many(
    loaded: LoadedModel,
    prompts: list[str],
    *,
    n: int,
    processor: Processor | None,
    greedy: bool,
    max_new_tokens: int,
    seed: int,
    stop_strings: Sequence[str] = (),
) -> list[list[GeneratedSample]]:
    """``generate`` for each prompt in turn; prompt ``i`` uses ``stable_seed(seed, i)``."""
    return [
        generate(
            loaded,
            prompt,
            n=n,
            processor=processor,
            greedy=greedy,
            max_new_tokens=max_new_tokens,
            seed=stable_seed(seed, index),
            stop_strings=stop_strings,
        )
        for index, prompt in enumerate(prompts)
    ]
