"""A preallocated KV cache for batched decoding, with rows that can leave the batch.

transformers' ``DynamicCache`` grows every layer by ``torch.cat`` at every step (a copy of
the whole cache per token) and drops finished rows with ``index_select`` (another full
copy). ``RowCache`` allocates one buffer ``[2 * layers, rows, kv_heads, columns,
head_dim]`` up front: a step writes one column in place, and a finished row is replaced
by a live row moved from the end of the batch (only the moved rows are copied).

Layout: prompts are left-padded to the longest prompt of the batch (column ``c`` of a row
holds its position ``c - pad``), and every row writes its generated tokens in the same
column, so one slice assignment per layer serves the whole batch. ``valid`` marks the
padding out; the engine passes it to the model as a boolean 4-D attention mask, which
transformers forwards to the attention kernel as is (with grouped-query attention, SDPA
then runs on packed queries instead of repeating the keys).

Writes go to fixed columns, so a forward step that fails half-way (out of memory) can be
rerun on fewer rows through ``view``: the rewrite lands in the same places.

Columns are reserved as decoding goes (``reserve``): the buffer starts with room for the
prompts and a few generated tokens and doubles when full, copying only the live rows, so
a call allowing thousands of new tokens whose samples stop early never holds a
worst-case cache.

Each of a prompt's N rows holds its own copy of the prompt's keys/values (copied once,
after the batch-1 prefill). Keeping one shared copy would need a custom attention kernel
(prefix and per-row suffix in one softmax); measured on CPU over 30 layers it saved about
a quarter of the attention time at 64 rows and nothing at 32, a few percent of a step.

The model only calls ``update`` (and ``get_seq_length`` when no position ids are given),
so this class duck-types transformers' cache interface instead of subclassing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def cache_geometry(model: Any) -> tuple[int, int, int]:
    """``(layers, kv_heads, head_dim)`` of a decoder-only transformers model."""
    config = model.config
    text = getattr(config, "get_text_config", None)
    if callable(text):
        config = text()
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return layers, kv_heads, int(head_dim)


class CacheView:
    """Rows ``[start, stop)`` of a ``RowCache``: what one forward call reads and writes."""

    def __init__(self, cache: RowCache, start: int, stop: int) -> None:
        self.cache = cache
        self.start = start
        self.stop = stop

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        layer_idx: int,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new keys/values at the current column; return all visible columns."""
        cache = self.cache
        width = key_states.shape[-2]
        end = cache.column + width
        keys = cache.buffer[2 * layer_idx, self.start : self.stop]
        values = cache.buffer[2 * layer_idx + 1, self.start : self.stop]
        keys[:, :, cache.column : end] = key_states
        values[:, :, cache.column : end] = value_states
        return keys[:, :, :end], values[:, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Columns written before this step (padding included)."""
        return self.cache.column


class RowCache:
    """Keys and values of ``rows`` sequences, ``columns`` positions each, preallocated.

    ``column`` is where the next step writes; ``rows`` is the live batch size (rows
    ``[0, rows)`` of the buffer). ``valid[r, c]`` is False for row ``r``'s left padding.
    """

    def __init__(
        self,
        model: Any,
        rows: int,
        columns: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
        reserved: int | None = None,
    ) -> None:
        """Room for ``columns`` columns, ``reserved`` (default all) of them allocated now."""
        import torch

        layers, kv_heads, head_dim = cache_geometry(model)
        self.layers = layers
        self.capacity = columns
        allocated = columns if reserved is None else min(columns, reserved)
        self.buffer = torch.empty(
            (2 * layers, rows, kv_heads, allocated, head_dim), dtype=dtype, device=device
        )
        self.valid = torch.ones((rows, allocated), dtype=torch.bool, device=device)
        self.rows = rows
        self.columns = allocated
        self.column = 0
        #: Whether any row was written with left padding (attention then needs ``valid``).
        self.padded = False

    def reserve(self, columns: int) -> None:
        """Make sure ``columns`` columns are allocated, doubling the buffer's growth room."""
        import torch

        if columns <= self.columns:
            return
        if columns > self.capacity:
            raise ValueError(f"{columns} columns requested, capacity {self.capacity}")
        grown = min(self.capacity, max(columns, 2 * self.columns))
        old, rows, used = self.buffer, self.rows, self.column
        shape = (old.shape[0], rows, old.shape[2], grown, old.shape[4])
        buffer = torch.empty(shape, dtype=old.dtype, device=old.device)
        buffer[:, :, :, :used] = old[:, :rows, :, :used]
        valid = torch.ones((rows, grown), dtype=torch.bool, device=old.device)
        valid[:, :used] = self.valid[:rows, :used]
        del old
        self.buffer, self.valid, self.columns = buffer, valid, grown

    def view(self, start: int = 0, stop: int | None = None) -> CacheView:
        """The cache object to pass to the model for rows ``[start, stop)``."""
        return CacheView(self, start, self.rows if stop is None else stop)

    def write_prompt(self, rows: slice, prefill: Any, pad: int) -> None:
        """Copy a prompt's prefilled keys/values (batch 1) into ``rows``, after ``pad`` columns.

        ``prefill`` is the ``DynamicCache`` the prompt was run through; every row of the
        slice gets the same prefix (the N candidates of one prompt share it).
        """
        for layer, (keys, values) in enumerate(layer_tensors(prefill)):
            length = keys.shape[-2]
            self.buffer[2 * layer, rows, :, pad : pad + length] = keys
            self.buffer[2 * layer + 1, rows, :, pad : pad + length] = values
        # Padding is masked out, but the kernel still multiplies its values by a zero
        # weight: uninitialised memory (NaN, inf) must not be there.
        self.buffer[:, rows, :, :pad] = 0
        self.valid[rows, :pad] = False
        self.padded = self.padded or pad > 0

    def attention_mask(self, width: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Boolean ``[rows, 1, width, column + width]`` mask for a step of ``width`` tokens.

        Each new token sees the valid columns before it and the new tokens up to itself.
        """
        import torch

        stop = self.rows if stop is None else stop
        end = self.column + width
        valid = self.valid[start:stop, :end]
        if width == 1:
            return valid[:, None, None, :]
        cols = torch.arange(end, device=valid.device)
        queries = torch.arange(self.column, end, device=valid.device)
        causal = cols[None, :] <= queries[:, None]
        return valid[:, None, None, :] & causal[None, None, :, :]

    def sliding_mask(self, mask: torch.Tensor, window: int) -> torch.Tensor:
        """``mask`` restricted to the last ``window`` positions before each query."""
        import torch

        width, end = mask.shape[-2], mask.shape[-1]
        if end <= window:
            return mask
        cols = torch.arange(end, device=mask.device)
        queries = torch.arange(self.column, self.column + width, device=mask.device)
        recent = cols[None, :] > queries[:, None] - window
        return mask & recent[None, None, :, :]

    def keep_rows(self, keep: list[int]) -> list[int]:
        """Keep the live rows ``keep`` (ascending), moving rows from the end into holes.

        Returns the new order: entry ``i`` is the old row now at row ``i``. Only the rows
        that move are copied, and only their written columns.
        """
        import torch

        count = len(keep)
        kept = set(keep)
        holes = [row for row in range(count) if row not in kept]
        movers = [row for row in keep if row >= count]
        order = list(range(count))
        if holes:
            device = self.buffer.device
            dst = torch.tensor(holes, dtype=torch.long, device=device)
            src = torch.tensor(movers, dtype=torch.long, device=device)
            used = self.column
            self.buffer[:, dst, :, :used] = self.buffer[:, src, :, :used]
            self.valid[dst] = self.valid[src]
            for hole, mover in zip(holes, movers, strict=True):
                order[hole] = mover
        self.rows = count
        return order


def layer_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(keys, values)`` of each layer of a transformers ``DynamicCache``."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return [(cache.key_cache[i], cache.value_cache[i]) for i in range(len(cache.key_cache))]
