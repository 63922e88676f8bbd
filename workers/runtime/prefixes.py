"""Prompts' keys and values, kept for the prompts after them that begin the same way.

The prompts of an experiment share their start: the chat template's system turn, the
task's instructions, few-shot examples (hundreds of tokens), a judge's rubric. A
prefill runs every prompt token through every layer, and a token's keys and values
depend only on the tokens up to it; so where a prompt begins as an earlier one did, the
lean step (``workers.runtime.lean``) takes that start's keys and values from the earlier
prompt and runs only the rest (what vLLM and SGLang call prefix caching).

``PrefixStore`` keeps whole prompts, most recently used last, within a byte budget
(``STRATLAB_PREFIX_CACHE_MB``, 256 by default, 0 turns it off): a prompt larger than the
budget is not kept, and older prompts leave to make room. After an allocation failure
every store is emptied (``lean.forget_prompts``) and the engine tries the failed work
again at its size before halving the batch. A lookup compares the new
prompt with every kept one (slice comparisons, a binary search per prompt). A prompt
kept whole (the same problem sampled again, a pool grown) gets its keys, values and
last logits back as they were; otherwise at most all but its last token are reused.

The keys and values of a reused start are those the earlier prompt computed, which are
a full prefill's up to float rounding only: a few kernels' results for a position
depend on how many positions they run over (PyTorch's fused attention splits its work
by the sequence length, and vector loops leave a different tail). So a sample's tokens
may depend, at the rounding of its logits, on which prompts the worker ran before, as
they may on the rows that share its batch (``workers.runtime.engine``); the tests hold
the logits to a full prefill's within 1e-4 in float32. ``STRATLAB_PREFIX_CACHE_MB=0``
gives the prefill that depends on the prompt alone.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

#: The byte budget of each lean step's store (``STRATLAB_PREFIX_CACHE_MB``; 0: off).
MEGABYTES = float(os.environ.get("STRATLAB_PREFIX_CACHE_MB", "256"))

#: Keys and values ``[1, KV, T, D]`` per layer.
Layers = list[tuple["torch.Tensor", "torch.Tensor"]]


def shared_start(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """How many leading tokens ``a`` and ``b`` share, at most ``limit``."""
    low, high = 0, min(len(a), len(b), limit)
    if list(a[:high]) == list(b[:high]):
        return high
    while low < high:  # a[:low] == b[:low], and the answer is at most high
        middle = (low + high + 1) // 2
        if list(a[:middle]) == list(b[:middle]):
            low = middle
        else:
            high = middle - 1
    return low


class Kept(NamedTuple):
    """A kept prompt: its keys and values, last logits and size in bytes."""

    layers: Layers
    logits: torch.Tensor
    size: int


class PrefixStore:
    """Whole prompts' keys and values, least recently used out first.

    Not locked: a worker process decodes one batch at a time (Celery's solo pool)."""

    def __init__(self, limit_bytes: int | None = None) -> None:
        self.limit = int(MEGABYTES * 2**20) if limit_bytes is None else limit_bytes
        self._entries: OrderedDict[tuple[int, ...], Kept] = OrderedDict()
        self.bytes = 0
        #: Prefills that reused a start, and the tokens they did not run.
        self.hits = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def whole(self, prompt_ids: Sequence[int]) -> Kept | None:
        """The prompt itself, when it is kept (never while the store is off)."""
        if not self.limit:
            return None
        kept = self._entries.get(tuple(prompt_ids))
        if kept is not None:
            self._entries.move_to_end(tuple(prompt_ids))
            self.hits += 1
            self.reused_tokens += len(prompt_ids)
        return kept

    def longest(self, prompt_ids: Sequence[int]) -> tuple[int, Layers | None]:
        """The most tokens of ``prompt_ids`` (all but its last at most) a kept prompt
        begins with, and that prompt's keys and values (None when no token is shared, or
        while the store is off)."""
        if not self.limit:
            return 0, None
        best, found, key = 0, None, None
        limit = len(prompt_ids) - 1
        for stored, kept in self._entries.items():
            if best >= limit:
                break
            shared = shared_start(stored, prompt_ids, limit)
            if shared > best:
                best, found, key = shared, kept.layers, stored
        if key is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            self.reused_tokens += best
        return best, found

    def add(self, prompt_ids: Sequence[int], layers: Layers, logits: torch.Tensor) -> bool:
        """Keep a prompt's keys and values (each layer's ``[1, KV, T, D]``) and last
        logits, none to be written to afterwards, unless it alone is over the budget (or
        it is kept already); whether they were kept."""
        key = tuple(prompt_ids)
        # Without the autograd graph of a prefill run outside no_grad (tests do).
        layers = [(keys.detach(), values.detach()) for keys, values in layers]
        logits = logits.detach()
        size = logits.nbytes + sum(keys.nbytes + values.nbytes for keys, values in layers)
        if size > self.limit:
            return False
        if key in self._entries:
            self._entries.move_to_end(key)
            return False
        while self._entries and self.bytes + size > self.limit:
            _, dropped = self._entries.popitem(last=False)
            self.bytes -= dropped.size
        self._entries[key] = Kept(layers, logits, size)
        self.bytes += size
        return True

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
