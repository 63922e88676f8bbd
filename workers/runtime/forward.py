"""Model calls shared by the engine and the speculative decoder.

``prefill`` runs a prompt at batch size 1 through the model's own attention path (the
same numerics as transformers' ``generate``); ``forward_rows`` runs a decode step over
rows of a ``RowCache`` with an explicit boolean attention mask (a dict of masks for
models that mix sliding-window and full attention layers).
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any

from workers.runtime import lean

if TYPE_CHECKING:
    import torch

    from workers.runtime.kv_cache import RowCache
    from workers.runtime.models import LoadedModel


#: ``STRATLAB_LEAN_DECODE=0`` runs every decode step through the model itself (to compare).
LEAN_DECODE = os.environ.get("STRATLAB_LEAN_DECODE", "1") != "0"

_LOGITS_TO_KEEP: dict[type, bool] = {}


def _accepts_logits_to_keep(model: Any) -> bool:
    """Whether ``model.forward`` can skip computing logits for all prompt positions."""
    kind = type(model)
    if kind not in _LOGITS_TO_KEEP:
        try:
            _LOGITS_TO_KEEP[kind] = "logits_to_keep" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            _LOGITS_TO_KEEP[kind] = False
    return _LOGITS_TO_KEEP[kind]


def sliding_window(model: Any) -> int | None:
    """The sliding window of a model mixing sliding and full attention layers, or None."""
    config = model.config
    text = getattr(config, "get_text_config", None)
    if callable(text):
        config = text()
    layer_types = getattr(config, "layer_types", None) or ()
    window = getattr(config, "sliding_window", None)
    if window and "sliding_attention" in layer_types:
        return int(window)
    return None


def _lean(loaded: LoadedModel) -> lean.LlamaStep | None:
    """The lean step that runs ``loaded`` (None: the model runs itself). It declines
    sliding-window models, so ``forward_rows``'s window never reaches it."""
    return lean.for_model(loaded) if LEAN_DECODE else None


def prefill(loaded: LoadedModel, prompt_ids: list[int]) -> tuple[Any, torch.Tensor]:
    """Run a prompt through the model (batch 1): its ``DynamicCache`` (or the lean step's
    equivalent) and last logits."""
    import torch
    from transformers import DynamicCache

    step = _lean(loaded)
    if step is not None:
        return step.prefill(prompt_ids)
    model = loaded.model
    extra = {"logits_to_keep": 1} if _accepts_logits_to_keep(model) else {}
    # A plain DynamicCache keeps every position of every layer (sliding layers included),
    # which the copy into the row cache needs.
    cache = DynamicCache()
    out = model(
        input_ids=torch.tensor([prompt_ids], dtype=torch.long, device=loaded.device),
        past_key_values=cache,
        use_cache=True,
        **extra,
    )
    return out.past_key_values, out.logits[:, -1, :].float()


def forward_rows(
    loaded: LoadedModel,
    cache: RowCache,
    ids: torch.Tensor,
    positions: torch.Tensor,
    start: int,
    stop: int,
    window: int | None,
) -> torch.Tensor:
    """Logits ``[rows, width, V]`` (float32) of ``ids`` for cache rows ``[start, stop)``.

    A model ``workers.runtime.lean`` reproduces goes through its lean step; any other
    through the model itself.
    """
    step = _lean(loaded)
    if step is not None:
        return step(cache, ids, positions, start, stop)
    mask: Any = cache.attention_mask(ids.shape[1], start, stop)
    if window is not None:
        mask = {"full_attention": mask, "sliding_attention": cache.sliding_mask(mask, window)}
    out = loaded.model(
        input_ids=ids,
        position_ids=positions,
        attention_mask=mask,
        past_key_values=cache.view(start, stop),
        use_cache=True,
    )
    return out.logits.float()
