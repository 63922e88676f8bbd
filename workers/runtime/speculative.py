"""Greedy decoding with prompt-lookup drafts, verified by the model itself.

Prompt lookup (Saxena 2023, transformers' ``prompt_lookup_num_tokens``) drafts the next
tokens by finding the latest earlier occurrence of the sequence's last few tokens (in the
prompt or the generation so far) and proposing what followed it. The model then runs the
last token and the draft in one forward pass; every drafted token equal to the model's
argmax at its position is accepted, and the model's argmax after the last accepted one is
added, so each pass yields 1 to ``draft + 1`` tokens and the output is the model's own
greedy sequence. No second model is needed (the packaged models have different
tokenizers, so neither can draft for the other).

A draft model sharing the target's tokenizer (``DraftModel``: e.g. a small local model
of the same family, named in ``STRATLAB_DRAFT_MODELS``) can propose instead: it decodes
the draft greedily from its own one-row cache, which keeps the tokens both models agree
on and rolls back the rest. The output is again the target's own greedy sequence.

The cache is a one-row ``RowCache``: rejected drafts leave stale columns past the
accepted length, which the next pass overwrites and the mask never shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workers.runtime.batch import STOP_WINDOW_SLACK, FinishReason, find_stop
from workers.runtime.forward import forward_rows, prefill, sliding_window
from workers.runtime.kv_cache import RowCache, layer_tensors
from workers.runtime.sampler import token_logprobs

if TYPE_CHECKING:
    from workers.runtime.models import LoadedModel


#: Longest and shortest n-gram looked up, longest first. On SmolLM2's greedy answers to
#: arithmetic problems, drafts after a 1-token match were accepted for 0.6 tokens per
#: pass, after a 2-token match for 1.6; a pass verifying a draft costs about 1.5 plain
#: steps on CPU in float32, so 1-token matches do not pay.
MAX_NGRAM = 3
MIN_NGRAM = 2


@dataclass
class SpeculativeStats:
    """Forward passes run, tokens drafted and drafted tokens accepted."""

    passes: int = 0
    drafted: int = 0
    accepted: int = 0


def propose(sequence: Sequence[int], count: int) -> list[int]:
    """Up to ``count`` tokens that followed the latest earlier match of the sequence's tail.

    >>> propose([5, 6, 7, 1, 5, 6], 2)
    [7, 1]
    >>> propose([1, 2, 3], 2)
    []
    """
    length = len(sequence)
    for size in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
        if length <= size:
            continue
        tail = list(sequence[-size:])
        first = tail[0]
        for start in range(length - size - 1, -1, -1):
            if sequence[start] == first and list(sequence[start : start + size]) == tail:
                follow = list(sequence[start + size : start + size + count])
                if follow:
                    return follow
    return []


#: (target tokenizer id, draft tokenizer id) -> (the two tokenizers, same vocabulary);
#: the tokenizers are kept so that their ids cannot be reused by other objects.
_SAME_VOCABULARY: dict[tuple[int, int], tuple[Any, Any, bool]] = {}


def check_draft(target: LoadedModel, draft: LoadedModel) -> None:
    """Raise ``ValueError`` unless ``draft`` can draft for ``target`` (same vocabulary)."""
    key = (id(target.tokenizer), id(draft.tokenizer))
    if key not in _SAME_VOCABULARY:
        same = draft.tokenizer.get_vocab() == target.tokenizer.get_vocab()
        _SAME_VOCABULARY[key] = (target.tokenizer, draft.tokenizer, same)
    if not _SAME_VOCABULARY[key][2]:
        raise ValueError(
            f"draft model {draft.spec.name!r} does not share the tokenizer of "
            f"{target.spec.name!r}; a draft model must use the same vocabulary"
        )


class DraftModel:
    """Greedy drafts from a smaller model with the target's vocabulary.

    Its one-row cache holds the sequence as the draft last saw it; on each call the
    columns past the longest prefix shared with the target's sequence are rolled back
    (the mask never shows them), the new tokens are fed, and ``count`` tokens drafted.
    """

    def __init__(self, draft: LoadedModel, prompt_ids: list[int], capacity: int) -> None:
        self.draft = draft
        self.window = sliding_window(draft.model)
        prompt_cache, _ = prefill(draft, prompt_ids)
        dtype = layer_tensors(prompt_cache)[0][0].dtype
        self.cache = RowCache(
            draft.model, 1, capacity, dtype=dtype, device=draft.device,
            reserved=len(prompt_ids) + 128,
        )
        self.cache.write_prompt(slice(0, 1), prompt_cache, 0)
        self.cache.column = len(prompt_ids)
        self.cached = list(prompt_ids)
        self.trusted = len(prompt_ids)  # a prefix of every later sequence

    def __call__(self, sequence: Sequence[int], count: int) -> list[int]:
        if count <= 0:
            return []
        import torch

        limit = min(len(self.cached), len(sequence) - 1)  # the last token is always fed
        common = min(self.trusted, limit)
        while common < limit and self.cached[common] == sequence[common]:
            common += 1
        self.trusted = len(sequence)
        self.cache.column = common
        self.cached = self.cached[:common]
        feed = list(sequence[common:])
        drafted: list[int] = []
        while True:
            self.cache.reserve(self.cache.column + len(feed))
            ids = torch.tensor([feed], dtype=torch.long, device=self.draft.device)
            positions = torch.arange(
                self.cache.column, self.cache.column + len(feed), device=self.draft.device
            ).unsqueeze(0)
            logits = forward_rows(self.draft, self.cache, ids, positions, 0, 1, self.window)
            self.cache.column += len(feed)
            self.cached.extend(feed)
            drafted.append(int(torch.argmax(logits[0, -1])))
            if len(drafted) == count:
                return drafted
            feed = [drafted[-1]]


def greedy_speculative(
    loaded: LoadedModel,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    draft_tokens: int,
    stop_strings: Sequence[str] = (),
    draft: LoadedModel | None = None,
) -> tuple[list[int], list[float], FinishReason, SpeculativeStats]:
    """The greedy continuation of ``prompt_ids``: tokens, raw log-probs, finish reason, stats.

    Drafts come from prompt lookup, or from ``draft`` (a model with the same tokenizer)
    when given. Stops like the engine: on an end-of-sequence token, a stop string, or
    after ``max_new_tokens`` tokens.
    """
    import torch

    if draft_tokens < 0:
        raise ValueError(f"draft_tokens must be >= 0, got {draft_tokens}")
    with torch.inference_mode():
        proposer: Callable[[Sequence[int], int], list[int]] = propose
        if draft is not None:
            check_draft(loaded, draft)
            proposer = DraftModel(
                draft, prompt_ids, len(prompt_ids) + max_new_tokens + draft_tokens
            )
        return _decode(
            loaded, prompt_ids, max_new_tokens, draft_tokens, tuple(stop_strings), proposer
        )


def _decode(
    loaded: LoadedModel,
    prompt_ids: list[int],
    max_new_tokens: int,
    draft_tokens: int,
    stop_strings: tuple[str, ...],
    proposer: Callable[[Sequence[int], int], list[int]],
) -> tuple[list[int], list[float], FinishReason, SpeculativeStats]:
    import torch

    device = loaded.device
    eos = set(loaded.eos_token_ids)
    stops = tuple(s for s in stop_strings if s)
    window_chars = max((len(s) for s in stops), default=0) + STOP_WINDOW_SLACK
    window = sliding_window(loaded.model)
    stats = SpeculativeStats()

    prompt_cache, logits = prefill(loaded, prompt_ids)
    dtype = layer_tensors(prompt_cache)[0][0].dtype
    cache = RowCache(
        loaded.model,
        1,
        len(prompt_ids) + max_new_tokens + draft_tokens,
        dtype=dtype,
        device=device,
        reserved=len(prompt_ids) + 128,
    )
    cache.write_prompt(slice(0, 1), prompt_cache, 0)
    del prompt_cache
    cache.column = len(prompt_ids)
    stats.passes += 1

    tokens: list[int] = []
    logprobs: list[float] = []

    def emit(token: int, logprob: float) -> FinishReason | None:
        tokens.append(token)
        logprobs.append(logprob)
        if token in eos:
            return "eos"
        if stops:
            text = loaded.tokenizer.decode(tokens[-window_chars:], skip_special_tokens=True)
            if find_stop(text, stops) >= 0:
                return "stop"
        if len(tokens) >= max_new_tokens:
            return "length"
        return None

    first = torch.argmax(logits, dim=-1)
    finish = emit(int(first), float(token_logprobs(logits, first)))
    while finish is None:
        remaining = max_new_tokens - len(tokens)
        draft = proposer(prompt_ids + tokens, min(draft_tokens, remaining - 1))
        inputs = [tokens[-1], *draft]
        start = len(prompt_ids) + len(tokens) - 1
        ids = torch.tensor([inputs], dtype=torch.long, device=device)
        positions = torch.arange(start, start + len(inputs), device=device).unsqueeze(0)
        cache.reserve(cache.column + len(inputs))
        rows = forward_rows(loaded, cache, ids, positions, 0, 1, window)[0]
        best = torch.argmax(rows, dim=-1)
        best_lp = token_logprobs(rows, best).tolist()
        best_ids = best.tolist()
        stats.passes += 1
        stats.drafted += len(draft)
        accepted = 0
        while accepted < len(draft) and draft[accepted] == best_ids[accepted]:
            accepted += 1
        stats.accepted += accepted
        cache.column += accepted + 1
        for j in range(accepted + 1):
            finish = emit(best_ids[j], best_lp[j])
            if finish is not None:
                break
    return tokens, logprobs, finish, stats
