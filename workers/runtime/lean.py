"""A lean forward for Llama-family models: prefill and decode steps in few ops.

transformers runs a step through its module tree: per layer a dozen modules, the rotary
embedding, separate q/k/v and gate/up projections, the cache interface and the
attention dispatcher, about 40 tensor ops and much Python per layer. At one row per step
(greedy baselines, multi-call schemes, judges) that overhead costs a third of the step
on a CPU. ``LlamaStep`` runs the same computation with weights prepared once per loaded
model (``for_model``):

* q, k and v are one projection, and so are gate and up; RMSNorm's weight is folded
  into the projection that follows it;
* one-token steps of a few rows (up to 4 in fp32, 5 in bf16) run whole in
  ``workers.runtime.gemv``'s compiled step where it is built (streaming AVX-512 dot
  products, every norm, rotation, cache write and attention of the 30 layers in one
  call): those steps are bound by how fast the weights are read, which it does 1.3x
  faster than oneDNN, and the eager step's ~35 small ops per layer are gone. Other
  few-token calls (speculative verify steps) multiply projection by projection through
  the same kernel;
* otherwise, on CPU, every projection is prepacked for oneDNN (``torch.ops.mkldnn``,
  the kernels inductor uses on CPU), with the residual add fused into the output and down
  projections. Over SmolLM2-135M's projections on a 2-core AVX-512 CPU, packed weights
  ran a step's matmuls 1.2x (1 row) to 2.9x (16 rows) faster than ``F.linear`` in fp32
  and up to 1.9x in bf16. Elsewhere (CUDA, or a CPU without oneDNN) plain ``F.linear``;
* the rotary embedding is one complex multiplication per step (q and k rows reordered
  so each rotary pair is adjacent), and attention one ``scaled_dot_product_attention``
  over the ``RowCache`` columns (grouped-query heads in place, no mask when no row is
  left-padded); a one-token step over many rows (from 2 in bf16, 32 in fp32) attends
  with two batched matmuls and a float32 softmax instead, as transformers' eager
  attention does, since the fused CPU kernel is several times slower there
  (``explicit_attention``).

A prefill whose prompt begins as one run before on this step did takes that start's
keys and values from ``self.prefixes`` (``workers.runtime.prefixes``) and runs only the
rest, its queries masked to see the columns up to their own.

Only a model this module recognises takes this path (``for_model`` returns None
otherwise, and the engine runs the model itself): ``LlamaForCausalLM`` with SiLU, no
biases, default rotary embeddings and one attention kind. Its logits are transformers'
up to float rounding (the tests hold them to 1e-4 in fp32); greedy decoding is checked
token for token against transformers' ``generate``, and sampling against the model's
own forward. ``STRATLAB_LEAN_DECODE=0`` turns it off (``workers.runtime.forward``).

The prepared weights are a second copy of the projections (the model's own stay for
scoring and for transformers' ``generate``): about the model's size again in memory,
built in about a second for SmolLM2-135M, once per worker process.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import ctypes
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from workers.runtime import gemv
from workers.runtime.prefixes import PrefixStore

if TYPE_CHECKING:
    import torch

    from workers.runtime.gemv import Gemv
    from workers.runtime.kv_cache import RowCache
    from workers.runtime.models import LoadedModel

logger = logging.getLogger(__name__)

#: Architectures whose decode step ``LlamaStep`` reproduces.
SUPPORTED = frozenset({"LlamaForCausalLM"})
#: Rows the packed weights are laid out for (oneDNN picks blocking by it); measured
#: at least as fast as a 1-row layout at 1 row, and faster at 16 and 64 rows.
PACK_ROWS = 64

#: Steps of at most this many rows (by weight dtype) multiply through
#: ``workers.runtime.gemv`` where it is built. SmolLM2-135M's whole step on a 2-core
#: AVX-512 CPU, oneDNN -> gemv, in ms: fp32 1 row 28.5 -> 17.7, 2 rows 34.2 -> 21.2,
#: 3 rows 31.4 -> 24.6, 4 rows 31.7 -> 26.2, 5 rows 31.0 -> 30.4, 8 rows 36.8 -> 44.3;
#: bf16 with AVX-512 BF16 1 row 19.9 -> 11.2, 2 rows 24.6 -> 15.1, 3 rows 22.6 -> 16.3,
#: 4 rows 22.8 -> 19.0, 5 rows 22.3 -> 19.6, 6 rows 23.6 -> 22.8, 8 rows 25.0 -> 31.1
#: (without it, widening bf16 to float32 first: 2 rows 24.1 -> 20.0, 4 rows 23.7 -> 26.4).
GEMV_ROWS = {"torch.float32": 4, "torch.bfloat16": 5}
GEMV_ROWS_WIDENED_BF16 = 2
#: From how many rows a one-token step uses explicit attention (``explicit_attention``).
EXPLICIT_ROWS_HALF = 2
EXPLICIT_ROWS_FP32 = 32

_STEPS: weakref.WeakKeyDictionary[Any, LlamaStep | None] = weakref.WeakKeyDictionary()


def explicit_attention(rows: int, dtype: Any) -> bool:
    """Whether a one-token step over ``rows`` rows attends with two batched matmuls and a
    float32 softmax (``LlamaStep._explicit_attention``) instead of PyTorch's fused CPU
    kernel. That kernel works in blocks of query positions; with one query per row it
    measured, over SmolLM2's 30 layers at 41-130 cached columns on a 2-core AVX-512 CPU,
    2-8x slower in bfloat16 from 4 rows on (5 ms against 0.6 ms per layer at 64 rows),
    and 1.1-1.3x slower in float32 from 32 rows; at one row it is the faster one."""
    import torch

    if rows >= EXPLICIT_ROWS_FP32:
        return True
    return dtype != torch.float32 and rows >= EXPLICIT_ROWS_HALF


def _text_config(model: Any) -> Any:
    config = model.config
    text = getattr(config, "get_text_config", None)
    return text() if callable(text) else config


def unsupported_reason(model: Any) -> str | None:
    """Why ``LlamaStep`` cannot run ``model`` (None when it can)."""
    if type(model).__name__ not in SUPPORTED:
        return f"architecture {type(model).__name__}"
    config = _text_config(model)
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act}"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "biases"
    if int(getattr(config, "pretraining_tp", 1) or 1) != 1:
        return "pretraining_tp"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    kind = (rope or {}).get("rope_type", (rope or {}).get("type", "default"))
    if kind != "default":
        return f"rope type {kind}"
    if set(getattr(config, "layer_types", None) or ["full_attention"]) != {"full_attention"}:
        return "mixed attention layers"
    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rotary is None or not hasattr(rotary, "inv_freq"):
        return "no rotary embedding module"
    return None


def for_model(loaded: LoadedModel) -> LlamaStep | None:
    """The lean step of ``loaded``'s model, built once per model object; None when the
    model is not one it reproduces."""
    model = loaded.model
    step = _STEPS.get(model, False)
    if step is False or (step is not None and not step.matches(model)):
        reason = unsupported_reason(model)
        if reason is None:
            step = LlamaStep(model)
        else:
            logger.debug("lean decode step not used for %s: %s", loaded.name, reason)
            step = None
        _STEPS[model] = step
    return step  # type: ignore[return-value]


def forget_prompts() -> int:
    """Empty every lean step's store of earlier prompts (after an allocation failure:
    the batch's memory matters more); the bytes they held."""
    freed = 0
    for step in list(_STEPS.values()):
        if step is not None:
            freed += step.prefixes.bytes
            step.prefixes.clear()
    return freed


def _packs(device: Any, dtype: Any) -> bool:
    """Whether projections are prepacked for oneDNN on this device and dtype."""
    import torch

    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return dtype == torch.float32


class _Projection:
    """``x @ weight.T``, optionally with the residual add fused in, packed or plain; steps
    of at most ``GEMV_ROWS`` rows (for the weight's dtype) go through
    ``workers.runtime.gemv`` when it is built."""

    def __init__(self, weight: torch.Tensor, packed: bool, kernel: Gemv | None = None) -> None:
        import torch

        self.packed = packed
        self.out_features = weight.shape[0]
        self.gemv = kernel if kernel is not None and kernel.supports(weight) else None
        self.row_major = weight if self.gemv is not None else None
        self.gemv_rows = 0
        if self.gemv is not None:
            self.gemv_rows = GEMV_ROWS.get(str(weight.dtype), 0)
            if weight.dtype == torch.bfloat16 and not self.gemv.bf16_pairs:
                self.gemv_rows = GEMV_ROWS_WIDENED_BF16
        if packed:
            self.weight = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), PACK_ROWS)
        else:
            self.weight = weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        if x.shape[0] <= self.gemv_rows:
            return self.gemv(self.row_major, x)  # type: ignore[arg-type]
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, None, "none", [], "")
        return F.linear(x, self.weight)

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + other``."""
        import torch
        import torch.nn.functional as F

        if x.shape[0] <= self.gemv_rows:
            return self.gemv(self.row_major, x, other)  # type: ignore[arg-type]
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.weight, None, "add")
        return other + F.linear(x, self.weight)

    def normed(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """The projection of ``x`` RMS-normalised (RMSNorm whose weight is folded into
        this projection): over its root mean square in float32, cast back to ``x``'s
        dtype, as transformers computes it."""
        import torch.nn.functional as F

        if x.shape[0] <= self.gemv_rows:
            return self.gemv(self.row_major, x, prologue="rms_normed", eps=eps)  # type: ignore[arg-type]
        return self(F.rms_norm(x, (x.shape[-1],), eps=eps))

    def gated_add(self, mixed: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``silu(gate) * up`` of ``mixed = [gate | up]`` through this projection, plus
        ``other``."""
        import torch.nn.functional as F

        if mixed.shape[0] <= self.gemv_rows:
            return self.gemv(self.row_major, mixed, other, prologue="silu_gated")  # type: ignore[arg-type]
        gate, up = mixed.chunk(2, dim=-1)
        return self.add(F.silu(gate) * up, other)


class _Layer:
    """One layer's prompt keys and values ``[1, KV, T, D]`` (``layer_tensors`` reads them)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys = keys
        self.values = values


class _Prefilled:
    """A prefilled prompt, shaped like the ``DynamicCache`` ``RowCache.write_prompt`` takes."""

    def __init__(self, layers: list[_Layer]) -> None:
        self.layers = layers


def _interleave_halves(weight: torch.Tensor, heads: int, dim: int) -> torch.Tensor:
    """Rows of a q or k projection reordered per head: ``i, i + dim/2`` become
    ``2i, 2i + 1``, so rotary pairs sit side by side (one complex number each)."""
    return (
        weight.view(heads, 2, dim // 2, -1).transpose(1, 2).reshape(heads * dim, -1)
    )


class LlamaStep:
    """Prefill and decode steps of a Llama-family model over a ``RowCache``.

    Built from the model's own weights on the model's device and dtype; ``matches``
    tells whether it still describes the model (same device, dtype and embedding).

    Two rewrites keep the per-layer work to a handful of ops, exact in real arithmetic:

    * RMSNorm's weight is folded into the projections that follow it (their columns
      scaled once at build time, in float32), and gate and up are one projection;
    * q and k rows are reordered so that each rotary pair ``(i, i + d/2)`` is adjacent:
      the rotation is one complex multiplication. Keys are cached in that order (only
      this class reads them); attention scores are unchanged, since q and k share it.
    """

    def __init__(self, model: Any) -> None:
        import torch

        started = time.perf_counter()
        config = _text_config(model)
        inner = model.model
        embed = inner.embed_tokens.weight
        self.device = embed.device
        self.dtype = embed.dtype
        self._embed_ref = embed.data_ptr()
        self.model_id = id(model)
        self.heads = heads = int(config.num_attention_heads)
        self.kv_heads = kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        self.head_dim = dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
        self.hidden = int(config.hidden_size)
        self.intermediate = int(config.intermediate_size)
        self.eps = float(config.rms_norm_eps)
        self.packed = _packs(self.device, self.dtype)
        kernel = gemv.kernel() if self.device.type == "cpu" else None
        rotary = inner.rotary_emb
        self.inv_freq = rotary.inv_freq.to(device=self.device, dtype=torch.float32)
        self.rope_scale = float(getattr(rotary, "attention_scaling", 1.0))
        self.embed = embed

        def folded(weight: torch.Tensor, norm: torch.Tensor) -> _Projection:
            scaled = (weight.float() * norm.float()[None, :]).to(self.dtype)
            return _Projection(scaled.contiguous(), self.packed, kernel)

        self.layers: list[tuple[_Projection, ...]] = []
        with torch.no_grad():
            for layer in inner.layers:
                attn, mlp = layer.self_attn, layer.mlp
                qkv = torch.cat(
                    [
                        _interleave_halves(attn.q_proj.weight, heads, dim),
                        _interleave_halves(attn.k_proj.weight, kv_heads, dim),
                        attn.v_proj.weight,
                    ]
                )
                norm1 = layer.input_layernorm.weight
                norm2 = layer.post_attention_layernorm.weight
                gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
                self.layers.append(
                    (
                        folded(qkv, norm1),
                        _Projection(attn.o_proj.weight, self.packed, kernel),
                        folded(gate_up, norm2),
                        _Projection(mlp.down_proj.weight, self.packed, kernel),
                    )
                )
            self.head = folded(model.lm_head.weight, inner.norm.weight)
        projections = [p for layer in self.layers for p in layer] + [self.head]
        #: One-token steps over at most this many rows run whole in ``gemv.c`` (0: never).
        self.fused_rows = 0
        self._kernel = kernel
        if kernel is not None and all(p.gemv is not None for p in projections):
            self.fused_rows = self.head.gemv_rows
            pointers = [p.row_major.data_ptr() for p in projections]  # type: ignore[union-attr]
            self._weights = (ctypes.c_void_p * len(pointers))(*pointers)
        #: Earlier prompts' keys and values, for prompts that begin the same way.
        self.prefixes = PrefixStore()
        self.build_seconds = time.perf_counter() - started
        logger.info(
            "lean decode step for %s (%s, %s, %s weights) built in %.2f s",
            type(model).__name__,
            self.device,
            str(self.dtype).removeprefix("torch."),
            "oneDNN-packed" if self.packed else "plain",
            self.build_seconds,
        )

    def matches(self, model: Any) -> bool:
        """Whether the model still has the device, dtype and embedding this was built on."""
        embed = model.model.embed_tokens.weight
        return (
            embed.device == self.device
            and embed.dtype == self.dtype
            and embed.data_ptr() == self._embed_ref
        )

    def _rotation(self, positions: torch.Tensor) -> torch.Tensor:
        """Complex rotations ``[T, 1, head_dim / 2]`` of float positions ``[T, 1]``."""
        import torch

        angles = positions * self.inv_freq
        magnitude = torch.full_like(angles, self.rope_scale)
        return torch.polar(magnitude, angles).unsqueeze(1)

    def _qkv(
        self, mixed: torch.Tensor, rotation: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rotated queries ``[T, H, D]`` and keys ``[T, KV, D]``, and values, of a fused
        projection ``[T, (H + 2 KV) D]`` (q and k rows in rotary-pair order)."""
        import torch

        tokens = mixed.shape[0]
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        rotated = (heads + kv_heads) * dim
        qk = mixed[:, :rotated].view(tokens, heads + kv_heads, dim // 2, 2)
        if qk.dtype == torch.float32:
            turned = torch.view_as_real(torch.view_as_complex(qk) * rotation)
        else:
            turned = torch.view_as_real(torch.view_as_complex(qk.float()) * rotation)
            turned = turned.to(qk.dtype)
        qk = turned.view(tokens, heads + kv_heads, dim)
        values = mixed[:, rotated:].view(tokens, kv_heads, dim)
        return qk[:, :heads], qk[:, heads:], values

    def _layer(
        self,
        x: torch.Tensor,
        layer: tuple[_Projection, ...],
        rotation: torch.Tensor,
        attend: Any,
    ) -> torch.Tensor:
        """One decoder layer over ``x [T, hidden]``; ``attend(query, keys, values)``
        stores the new keys/values and returns the attention output ``[T, H * D]``."""
        qkv, out, gate_up, down = layer
        query, keys, values = self._qkv(qkv.normed(x, self.eps), rotation)
        x = out.add(attend(query, keys, values), x)
        return down.gated_add(gate_up.normed(x, self.eps), x)

    def _fused(
        self,
        cache: RowCache,
        ids: torch.Tensor,
        positions: torch.Tensor,
        start: int,
        stop: int,
    ) -> torch.Tensor:
        """A one-token step over a few rows run whole by ``gemv.c``'s
        ``stratlab_llama_step``: the same computation as the eager step, without its
        ~35 small ops per layer (logits ``[rows, 1, V]``)."""
        import torch
        import torch.nn.functional as F

        rows = ids.shape[0]
        x = F.embedding(ids.reshape(rows), self.embed).contiguous()
        rotation = self._rotation(positions.reshape(rows, 1).float())
        rotation = torch.view_as_real(rotation).reshape(rows, self.head_dim).contiguous()
        buffer = cache.buffer
        strides = buffer.stride()
        shape = gemv.StepShape(
            len(self.layers), self.hidden, self.heads, self.kv_heads, self.head_dim,
            self.intermediate, self.head.out_features, self.eps,
            int(self.dtype == torch.bfloat16), *strides[:4],
        )
        valid = cache.valid[start:stop] if cache.padded else None
        logits = self._kernel.llama_step(  # type: ignore[union-attr]
            shape, self._weights, x, rotation, buffer[:, start:stop], cache.column, valid
        )
        return logits.view(rows, 1, -1)

    def _explicit_attention(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """One new token per row attending over its cached columns, as transformers' eager
        attention computes it: scores ``q k^T`` in the model's dtype, scaled and softmaxed
        in float32 (``bias`` -inf on padding), weights cast back and applied to the values.

        ``query [rows, H, 1, D]``, ``keys``/``values [rows, KV, columns, D]`` (a view of
        the cache); grouped-query heads share their key/value head without copies.
        """
        import torch

        rows, kv_heads, columns, dim = keys.shape
        group = self.heads // kv_heads
        queries = query.reshape(rows * kv_heads, group, dim)
        scores = torch.bmm(queries, keys.reshape(rows * kv_heads, columns, dim).transpose(1, 2))
        scores = scores.float().mul_(dim**-0.5)
        if bias is not None:
            scores = scores.view(rows, kv_heads, group, columns).add_(bias).view_as(scores)
        weights = torch.softmax(scores, dim=-1).to(values.dtype)
        attended = torch.bmm(weights, values.reshape(rows * kv_heads, columns, dim))
        return attended.view(rows, self.heads * dim)

    def prefill(self, prompt_ids: list[int]) -> tuple[_Prefilled, torch.Tensor]:
        """Run a prompt (batch 1, causal): its keys/values per layer and last logits.

        The keys/values come in the layout ``RowCache.write_prompt`` copies from; they
        are read-only (the store keeps them for later prompts), the logits a copy. Where
        the prompt begins as one in ``self.prefixes`` did, that start's keys and values
        are taken from it and only the rest of the prompt runs.
        """
        import torch
        import torch.nn.functional as F

        kept = self.prefixes.whole(prompt_ids)
        if kept is not None:
            return _Prefilled([_Layer(k, v) for k, v in kept.layers]), kept.logits.clone()
        reused, past = self.prefixes.longest(prompt_ids)
        tokens = len(prompt_ids) - reused
        ids = torch.tensor(prompt_ids[reused:], dtype=torch.long, device=self.device)
        positions = torch.arange(reused, len(prompt_ids), device=self.device, dtype=torch.float32)
        rotation = self._rotation(positions.unsqueeze(-1))
        # Query i (position reused + i) sees the columns up to its own.
        mask = None
        if past is not None:
            mask = torch.ones(tokens, len(prompt_ids), dtype=torch.bool, device=self.device)
            mask = mask.tril(diagonal=reused)
        layers: list[_Layer] = []

        def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> Any:
            keys = keys.transpose(0, 1).unsqueeze(0)  # [1, KV, T, D]
            values = values.transpose(0, 1).unsqueeze(0)
            if past is None:
                keys, values = keys.contiguous(), values.contiguous()
            else:
                earlier_keys, earlier_values = past[len(layers)]
                keys = torch.cat([earlier_keys[:, :, :reused], keys], dim=2)
                values = torch.cat([earlier_values[:, :, :reused], values], dim=2)
            layers.append(_Layer(keys, values))
            attended = F.scaled_dot_product_attention(
                query.transpose(0, 1).unsqueeze(0),
                keys,
                values,
                attn_mask=mask,
                is_causal=mask is None,
                scale=self.head_dim**-0.5,
                enable_gqa=self.kv_heads != self.heads,
            )
            return attended[0].transpose(0, 1).reshape(tokens, -1)

        x = F.embedding(ids, self.embed)
        for layer in self.layers:
            x = self._layer(x, layer, rotation, attend)
        last = x[-1:]
        logits = self.head.normed(last, self.eps).float()
        if self.prefixes.add(prompt_ids, [(layer.keys, layer.values) for layer in layers], logits):
            logits = logits.clone()
        return _Prefilled(layers), logits

    def __call__(
        self,
        cache: RowCache,
        ids: torch.Tensor,
        positions: torch.Tensor,
        start: int,
        stop: int,
    ) -> torch.Tensor:
        """Float32 logits ``[rows, width, V]`` of ``ids [rows, width]`` (at ``positions``)
        for cache rows ``[start, stop)``.

        Writes the rows' keys and values from ``cache.column`` on (the caller advances
        it); each new token sees the valid columns before it and the new tokens up to
        itself.
        """
        import torch
        import torch.nn.functional as F

        rows, width = ids.shape
        if width == 1 and rows <= self.fused_rows:
            return self._fused(cache, ids, positions, start, stop)
        tokens = rows * width
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        column = cache.column
        end = column + width
        rotation = self._rotation(positions.reshape(tokens, 1).float())
        mask = None
        if width > 1 or cache.padded:
            mask = cache.attention_mask(width, start, stop)
        buffer = cache.buffer
        explicit = width == 1 and explicit_attention(rows, self.dtype)
        bias = None
        if explicit and mask is not None:
            bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
            bias.masked_fill_(~mask, float("-inf"))
        layer_index = 0

        def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> Any:
            k_cache = buffer[2 * layer_index, start:stop]
            v_cache = buffer[2 * layer_index + 1, start:stop]
            if width == 1:
                k_cache[:, :, column] = keys
                v_cache[:, :, column] = values
                query = query.unsqueeze(2)
            else:
                k_cache[:, :, column:end] = keys.view(rows, width, kv_heads, dim).transpose(1, 2)
                v_cache[:, :, column:end] = values.view(rows, width, kv_heads, dim).transpose(
                    1, 2
                )
                query = query.view(rows, width, heads, dim).transpose(1, 2)
            if explicit:
                return self._explicit_attention(
                    query, k_cache[:, :, :end], v_cache[:, :, :end], bias
                )
            attended = F.scaled_dot_product_attention(
                query,
                k_cache[:, :, :end],
                v_cache[:, :, :end],
                attn_mask=mask,
                scale=dim**-0.5,
                enable_gqa=kv_heads != heads,
            )
            if width > 1:
                attended = attended.transpose(1, 2)
            return attended.reshape(tokens, heads * dim)

        x = F.embedding(ids.reshape(tokens), self.embed)
        for layer in self.layers:
            x = self._layer(x, layer, rotation, attend)
            layer_index += 1
        logits = self.head.normed(x, self.eps).float()
        return logits.view(rows, width, -1)
