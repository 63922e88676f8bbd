"""The lean step: the same logits as transformers, for prompts, single tokens and drafts."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import torch

from strategies.sampling import DecodingConfig, build_processor
from workers.runtime import forward, lean
from workers.runtime.engine import generate, generate_many
from workers.runtime.kv_cache import RowCache
from workers.runtime.models import LoadedModel
from workers.runtime.speculative import greedy_speculative

from .helpers import hf_greedy

PROMPTS = ("What is 12 + 30?", "Hi", "Name three colours and a number.")


def _reference_logits(loaded: LoadedModel, ids: list[int]) -> torch.Tensor:
    """transformers' logits at every position of ``ids`` (one forward pass)."""
    with torch.inference_mode():
        return loaded.model(input_ids=torch.tensor([ids])).logits[0].float()


def _without_lean(loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forward, "LEAN_DECODE", False)


def test_it_is_built_for_llama_models_only(tiny: LoadedModel) -> None:
    step = lean.for_model(tiny)
    assert isinstance(step, lean.LlamaStep)
    assert lean.for_model(tiny) is step  # once per model object
    assert step.packed == (
        torch.backends.mkldnn.is_available() and tiny.device.type == "cpu"
    )


def test_it_declines_models_it_does_not_reproduce(tiny: LoadedModel) -> None:
    model = copy.deepcopy(tiny.model)
    model.config.hidden_act = "gelu"
    assert lean.unsupported_reason(model) == "activation gelu"
    assert lean.for_model(dataclasses.replace(tiny, model=model)) is None

    class Wrapped:
        config = tiny.model.config

    assert lean.unsupported_reason(Wrapped()) == "architecture Wrapped"


def test_it_rebuilds_when_the_model_changes_dtype(tiny: LoadedModel) -> None:
    model = copy.deepcopy(tiny.model)
    loaded = dataclasses.replace(tiny, model=model)
    first = lean.for_model(loaded)
    model.to(torch.bfloat16)
    second = lean.for_model(dataclasses.replace(loaded, dtype=torch.bfloat16))
    assert first is not None and second is not None and second is not first
    assert second.dtype == torch.bfloat16


@pytest.mark.parametrize("text", PROMPTS)
def test_its_prefill_matches_transformers_logits(
    tiny: LoadedModel, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole prefill (reused starts: ``test_runtime_prefixes``)."""
    ids = tiny.encode_prompt(tiny.render_prompt(text))
    step = lean.for_model(tiny)
    assert step is not None
    monkeypatch.setattr(step.prefixes, "limit", 0)

    prefilled, logits = step.prefill(ids)

    expected = _reference_logits(tiny, ids)[-1:]
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert len(prefilled.layers) == tiny.model.config.num_hidden_layers
    assert prefilled.layers[0].keys.shape == (1, 2, len(ids), 16)


def _attention_kind(monkeypatch: pytest.MonkeyPatch, step: lean.LlamaStep, kind: str) -> None:
    """One-token steps run whole in the compiled kernel (``fused``, where it is built), or
    eagerly with explicit attention (``explicit``) or PyTorch's fused kernel (``sdpa``)."""
    if kind == "fused":
        if step.fused_rows == 0:
            pytest.skip("the compiled step is not built on this machine")
        return
    monkeypatch.setattr(step, "fused_rows", 0)
    rows = 1 if kind == "explicit" else 10**9
    monkeypatch.setattr(lean, "EXPLICIT_ROWS_FP32", rows)
    monkeypatch.setattr(lean, "EXPLICIT_ROWS_HALF", rows)


ATTENTION_KINDS = ["fused", "explicit", "sdpa"]


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_its_steps_match_transformers_for_padded_rows_and_several_tokens(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Rows of different prompt lengths (left-padded), then a 3-token step per row: each
    row's logits are those of transformers on its own sequence, whichever attention the
    one-token step takes."""
    step = lean.for_model(tiny)
    assert step is not None
    _attention_kind(monkeypatch, step, kind)
    prompts = [tiny.encode_prompt(tiny.render_prompt(t)) for t in PROMPTS]
    width = max(len(p) for p in prompts)
    cache = RowCache(tiny.model, len(prompts), width + 8, dtype=tiny.dtype, device=tiny.device)
    for row, ids in enumerate(prompts):
        prefilled, _ = step.prefill(ids)
        cache.write_prompt(slice(row, row + 1), prefilled, width - len(ids))
    cache.column = width
    new = torch.tensor([[11, 12, 13], [21, 22, 23], [31, 32, 33]])
    positions = torch.tensor([[len(p) + i for i in range(3)] for p in prompts])

    with torch.inference_mode():
        logits = step(cache, new[:, :1], positions[:, :1], 0, 3)
        cache.column += 1
        more = step(cache, new[:, 1:], positions[:, 1:], 0, 3)

    for row, ids in enumerate(prompts):
        expected = _reference_logits(tiny, ids + new[row].tolist())[-3:]
        got = torch.cat([logits[row], more[row]])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_it_decodes_greedily_like_transformers_and_like_the_models_own_forward(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = tiny.render_prompt(PROMPTS[0])
    lean_tokens = generate(
        tiny, prompt, n=1, processor=None, greedy=True, max_new_tokens=24, seed=0
    )[0].token_ids
    _without_lean(tiny, monkeypatch)
    own = generate(tiny, prompt, n=1, processor=None, greedy=True, max_new_tokens=24, seed=0)

    assert list(lean_tokens) == hf_greedy(tiny, prompt, 24)
    assert lean_tokens == own[0].token_ids


def test_its_samples_equal_those_of_the_models_own_forward(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seeds draw the same samples through either path, with the same
    log-probabilities up to float rounding, across padded multi-prompt batches."""
    processor = build_processor(DecodingConfig(temperature=0.8, top_p=0.95))
    prompts = [tiny.render_prompt(t) for t in PROMPTS]
    options: dict[str, Any] = {
        "n": 4, "processor": processor, "greedy": False, "max_new_tokens": 12, "seed": 5
    }
    fast = generate_many(tiny, prompts, **options)
    _without_lean(tiny, monkeypatch)
    slow = generate_many(tiny, prompts, **options)

    for got, want in zip(fast, slow, strict=True):
        assert [s.token_ids for s in got] == [s.token_ids for s in want]
        for a, b in zip(got, want, strict=True):
            assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)


def test_speculative_decoding_through_it_keeps_the_greedy_output(tiny: LoadedModel) -> None:
    """Drafts are verified by multi-token lean steps; the output is plain greedy's."""
    ids = tiny.encode_prompt(tiny.render_prompt("Repeat: one two three one two three"))
    tokens, _, _, _ = greedy_speculative(tiny, ids, max_new_tokens=20, draft_tokens=4)
    plain = generate(
        tiny, tiny.render_prompt("Repeat: one two three one two three"),
        n=1, processor=None, greedy=True, max_new_tokens=20, seed=0,
    )
    assert tokens == list(plain[0].token_ids)


def test_plain_projections_give_the_packed_ones_results(tiny: LoadedModel) -> None:
    """The path for CUDA and CPUs without oneDNN computes the same residual add."""
    weight = torch.randn(48, 64)
    x, other = torch.randn(3, 64), torch.randn(3, 48)
    plain = lean._Projection(weight, packed=False)
    expected = x @ weight.T
    torch.testing.assert_close(plain(x), expected)
    torch.testing.assert_close(plain.add(x, other), expected + other)
    if lean._packs(torch.device("cpu"), torch.float32):
        packed = lean._Projection(weight, packed=True)
        torch.testing.assert_close(packed(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(packed.add(x, other), expected + other, rtol=1e-5, atol=1e-5)


def test_it_follows_transformers_in_bfloat16(tiny: LoadedModel) -> None:
    """In bf16 the logits agree to bf16 precision (the roundings differ in order)."""
    model = copy.deepcopy(tiny.model).to(torch.bfloat16)
    loaded = dataclasses.replace(tiny, model=model, dtype=torch.bfloat16)
    ids = loaded.encode_prompt(loaded.render_prompt(PROMPTS[2]))
    step = lean.for_model(loaded)
    assert step is not None and step.dtype == torch.bfloat16

    _, logits = step.prefill(ids)

    expected = _reference_logits(loaded, ids)[-1:]
    assert (logits - expected).abs().max() < 0.05 * expected.abs().max()
    assert int(logits.argmax()) == int(expected.argmax())


def test_the_attention_kind_follows_rows_and_dtype() -> None:
    assert not lean.explicit_attention(1, torch.float32)
    assert not lean.explicit_attention(1, torch.bfloat16)
    assert lean.explicit_attention(lean.EXPLICIT_ROWS_HALF, torch.bfloat16)
    assert not lean.explicit_attention(lean.EXPLICIT_ROWS_FP32 - 1, torch.float32)
    assert lean.explicit_attention(lean.EXPLICIT_ROWS_FP32, torch.float32)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_its_bfloat16_steps_over_padded_rows_follow_transformers(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Several bf16 rows, left-padded, one token each: every row's logits agree with
    transformers on its own sequence to bf16 precision (a random model's logits are too
    flat for its argmax to survive bf16 rounding)."""
    model = copy.deepcopy(tiny.model).to(torch.bfloat16)
    loaded = dataclasses.replace(tiny, model=model, dtype=torch.bfloat16)
    step = lean.for_model(loaded)
    assert step is not None
    _attention_kind(monkeypatch, step, kind)
    prompts = [loaded.encode_prompt(loaded.render_prompt(t)) for t in PROMPTS]
    width = max(len(p) for p in prompts)
    cache = RowCache(model, len(prompts), width + 2, dtype=loaded.dtype, device=loaded.device)
    for row, ids in enumerate(prompts):
        prefilled, _ = step.prefill(ids)
        cache.write_prompt(slice(row, row + 1), prefilled, width - len(ids))
    cache.column = width
    new = torch.tensor([[11], [21], [31]])
    positions = torch.tensor([[len(p)] for p in prompts])

    with torch.inference_mode():
        logits = step(cache, new, positions, 0, 3)

    for row, ids in enumerate(prompts):
        expected = _reference_logits(loaded, ids + new[row].tolist())[-1]
        got = logits[row, 0]
        assert (got - expected).abs().max() < 0.05 * expected.abs().max()
