"""Shared helpers of the runtime tests: transformers' greedy output, forward-call shapes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from workers.runtime import lean
from workers.runtime.models import LoadedModel


def hf_greedy(loaded: LoadedModel, prompt: str, max_new_tokens: int) -> list[int]:
    """transformers' own greedy ``generate`` for one prompt: the generated token ids."""
    ids = loaded.encode_prompt(prompt)
    input_ids = torch.tensor([ids])
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=list(loaded.eos_token_ids),
            pad_token_id=loaded.eos_token_ids[0],
        )
    return out[0, len(ids) :].tolist()


@contextmanager
def batch_sizes(model: Any) -> Iterator[list[tuple[int, int]]]:
    """Record ``input_ids.shape`` of every forward call of ``model``: its own forward
    calls and the prefills and steps the lean step (``workers.runtime.lean``) runs."""
    shapes: list[tuple[int, int]] = []

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        shapes.append(tuple(ids.shape))

    original, original_prefill = lean.LlamaStep.__call__, lean.LlamaStep.prefill

    def lean_step(step: lean.LlamaStep, cache: Any, ids: Any, *args: Any) -> Any:
        if step.model_id == id(model):
            shapes.append(tuple(ids.shape))
        return original(step, cache, ids, *args)

    def lean_prefill(step: lean.LlamaStep, prompt_ids: list[int]) -> Any:
        if step.model_id == id(model):
            shapes.append((1, len(prompt_ids)))
        return original_prefill(step, prompt_ids)

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    lean.LlamaStep.__call__ = lean_step  # type: ignore[method-assign]
    lean.LlamaStep.prefill = lean_prefill  # type: ignore[method-assign]
    try:
        yield shapes
    finally:
        handle.remove()
        lean.LlamaStep.__call__ = original  # type: ignore[method-assign]
        lean.LlamaStep.prefill = original_prefill  # type: ignore[method-assign]
