"""Prompts' keys and values kept for later prompts (``workers.runtime.prefixes``) and the
lean prefill's use of them."""

from __future__ import annotations

import pytest
import torch

from workers.runtime import lean
from workers.runtime.engine import generate
from workers.runtime.models import LoadedModel
from workers.runtime.prefixes import PrefixStore, shared_start

from .helpers import hf_greedy


@pytest.mark.parametrize(
    ("a", "b", "limit", "expected"),
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], 10, 4),
        ([1, 2, 3, 4], [1, 2, 3, 4], 3, 3),
        ([1, 2, 3, 4], [1, 2, 9, 4], 10, 2),
        ([1, 2, 3], [1, 2, 3, 4, 5], 10, 3),
        ([5, 2, 3], [1, 2, 3], 10, 0),
        ([], [1], 10, 0),
        (list(range(1000)), [*range(637), -1, *range(638, 900)], 2000, 637),
    ],
)
def test_the_shared_start_of_two_prompts(
    a: list[int], b: list[int], limit: int, expected: int
) -> None:
    assert shared_start(tuple(a), b, limit) == expected
    assert shared_start(tuple(b), a, limit) == expected


def _layers(tokens: int, fill: float = 1.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two layers' keys and values of ``tokens`` positions: 2 * 2 * tokens * 4 floats."""
    keys = torch.full((1, 1, tokens, 4), float(fill))
    return [(keys, keys.clone()), (keys.clone(), keys.clone())]


def test_the_store_keeps_the_most_recently_used_prompts_within_its_budget() -> None:
    per_token = 2 * 2 * 4 * 4  # bytes: layers x (keys, values) x D x float32
    logits = torch.zeros(1, 8)  # 32 bytes
    store = PrefixStore(limit_bytes=3 * (10 * per_token + 32))
    for first in (1, 2, 3):
        store.add([first] * 10, _layers(10, first), logits)
    assert len(store) == 3 and store.bytes == store.limit

    # [1] * 10 is used, so [2] * 10 is the oldest when [4] * 10 needs room.
    assert store.longest([1] * 6 + [7])[0] == 6
    store.add([4] * 10, _layers(10, 4), logits)
    assert store.whole([2] * 10) is None
    assert store.whole([1] * 10) is not None and store.whole([4] * 10) is not None
    assert store.bytes <= store.limit

    # A prompt larger than the whole budget is not kept, and nothing leaves for it.
    store.add([5] * 40, _layers(40, 5), logits)
    assert len(store) == 3 and store.whole([5] * 40) is None


def test_a_lookup_takes_the_longest_shared_start_and_leaves_the_last_token() -> None:
    store = PrefixStore(limit_bytes=1 << 20)
    logits = torch.zeros(1, 8)
    store.add([1, 2, 3], _layers(3, 1.0), logits)
    store.add([1, 2, 3, 4, 5, 6], _layers(6, 2.0), logits)
    store.add([9, 9], _layers(2, 3.0), logits)

    shared, layers = store.longest([1, 2, 3, 4, 8])
    assert shared == 4 and layers is not None and float(layers[0][0][0, 0, 0, 0]) == 2.0
    # The same prompt as a kept one: all but its last token (whose logits are needed).
    assert store.longest([1, 2, 3, 4, 5, 6])[0] == 5
    assert store.longest([7, 1, 2]) == (0, None)
    assert store.hits == 2 and store.reused_tokens == 9


@pytest.fixture
def step(tiny: LoadedModel) -> lean.LlamaStep:
    """A fresh lean step of the tiny model (its own, empty store)."""
    built = lean.LlamaStep(tiny.model)
    assert built.prefixes.limit > 0  # on by default
    return built


def _prefill(step: lean.LlamaStep, ids: list[int], *, store: bool) -> tuple[list, torch.Tensor]:
    limit = step.prefixes.limit
    if not store:
        step.prefixes.limit = 0
    try:
        prefilled, logits = step.prefill(ids)
    finally:
        step.prefixes.limit = limit
    return [(layer.keys, layer.values) for layer in prefilled.layers], logits


def test_a_prompt_that_begins_as_an_earlier_one_runs_only_the_rest(
    tiny: LoadedModel, step: lean.LlamaStep
) -> None:
    """Its keys, values and last logits are a full prefill's (to float rounding); the
    shared start's keys and values are the earlier prompt's."""
    first = tiny.encode_prompt(tiny.render_prompt("What is 12 + 30?"))
    second = tiny.encode_prompt(tiny.render_prompt("Name a colour."))
    shared = shared_start(tuple(first), second, len(second))
    assert 5 < shared < len(second) - 2  # the chat template's start

    kept, _ = _prefill(step, first, store=True)
    layers, logits = _prefill(step, second, store=True)
    assert step.prefixes.hits == 1 and step.prefixes.reused_tokens == shared
    alone, alone_logits = _prefill(step, second, store=False)

    torch.testing.assert_close(logits, alone_logits, rtol=1e-4, atol=1e-4)
    for (keys, values), (k, v), (kept_keys, _) in zip(layers, alone, kept, strict=True):
        assert keys.shape == k.shape == (1, step.kv_heads, len(second), step.head_dim)
        torch.testing.assert_close(keys, k, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(values, v, rtol=1e-4, atol=1e-4)
        assert torch.equal(keys[:, :, :shared], kept_keys[:, :, :shared])


@pytest.mark.parametrize("new_tokens", [1, 3, 9])
def test_a_prompt_that_extends_an_earlier_one_by_a_few_tokens(
    tiny: LoadedModel, step: lean.LlamaStep, new_tokens: int
) -> None:
    """Few new tokens multiply through the compiled kernel's projections (up to
    ``GEMV_ROWS`` rows) under the offset mask: still a full prefill's logits."""
    first = tiny.encode_prompt(tiny.render_prompt("What is 12 + 30?"))
    longer = first + tiny.tokenizer.encode(" and then 5 more, 6, 7, 8")[:new_tokens]
    assert len(longer) == len(first) + new_tokens

    _prefill(step, first, store=True)
    layers, logits = _prefill(step, longer, store=True)
    assert step.prefixes.reused_tokens == len(first)
    alone, alone_logits = _prefill(step, longer, store=False)

    torch.testing.assert_close(logits, alone_logits, rtol=1e-4, atol=1e-4)
    for (keys, values), (k, v) in zip(layers, alone, strict=True):
        torch.testing.assert_close(keys, k, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(values, v, rtol=1e-4, atol=1e-4)


def test_a_prompt_run_before_gets_its_own_keys_values_and_logits_back(
    tiny: LoadedModel, step: lean.LlamaStep
) -> None:
    """Bit for bit (a pool grown later samples its first candidates as before); the
    logits as a copy the caller may change (processors write into them)."""
    ids = tiny.encode_prompt(tiny.render_prompt("What is 2 + 2?"))
    layers, logits = _prefill(step, ids, store=True)
    again, again_logits = _prefill(step, ids, store=True)

    assert torch.equal(logits, again_logits)
    for (keys, values), (k, v) in zip(layers, again, strict=True):
        assert torch.equal(keys, k) and torch.equal(values, v)
    again_logits.fill_(0)
    assert torch.equal(_prefill(step, ids, store=True)[1], logits)


def test_greedy_decoding_after_prompts_with_the_same_start_matches_transformers(
    tiny: LoadedModel,
) -> None:
    """Through the engine, with the tiny model's own (shared) lean step and its store."""
    store = lean.for_model(tiny).prefixes  # type: ignore[union-attr]
    store.clear()
    hits = store.hits
    prompts = [tiny.render_prompt(q) for q in ("What is 3 * 7?", "Name three colours.")]
    for prompt in prompts:
        tokens = generate(tiny, prompt, n=1, processor=None, greedy=True, max_new_tokens=16, seed=0)
        assert list(tokens[0].token_ids) == hf_greedy(tiny, prompt, 16)
    assert store.hits == hits + 1


def test_the_store_can_be_turned_off(tiny: LoadedModel, step: lean.LlamaStep) -> None:
    step.prefixes.limit = 0
    ids = tiny.encode_prompt(tiny.render_prompt("What is 2 + 2?"))
    step.prefill(ids)
    step.prefill(ids)
    assert len(step.prefixes) == 0 and step.prefixes.hits == 0
