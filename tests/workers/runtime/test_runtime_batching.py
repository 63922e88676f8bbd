"""Several prompts in one batch: left padding, per-prompt seeds and processors, splits."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pytest
import torch

from strategies.sampling import DecodingConfig, build_processor
from strategies.types import Candidate
from tests.workers.runtime.helpers import batch_sizes, hf_greedy
from workers.runtime import batch
from workers.runtime.batch import Request
from workers.runtime.engine import generate, generate_batch, generate_many, stable_seed
from workers.runtime.models import LoadedModel

TEXTS = (
    "Hi",
    "Write a short poem about the sea, the wind and a lighthouse keeper at night.",
    "What is 12 + 30?",
)


def _prompts(loaded: LoadedModel) -> list[str]:
    return [loaded.render_prompt(text) for text in TEXTS]


def _tokens(samples: list[Candidate]) -> list[tuple[int, ...]]:
    return [s.token_ids for s in samples]


def _reference_logprobs(loaded: LoadedModel, prompt: str, tokens: tuple[int, ...]) -> list[float]:
    """Raw log-probs of ``tokens`` after ``prompt`` from one full forward pass."""
    ids = loaded.encode_prompt(prompt)
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([ids + list(tokens)])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[len(ids) - 1 + j, token]) for j, token in enumerate(tokens)]


OPTIONS: dict[str, Any] = {"n": 3, "greedy": False, "max_new_tokens": 10}
# Tests that compare batch layouts truncate with top-k: the random models' distributions
# are nearly flat over 49,152 tokens, where a last-bit difference between two layouts'
# logits moves some token's cumulative-probability boundary past the uniform drawn.


def test_it_decodes_several_prompts_in_one_batch(tiny: LoadedModel) -> None:
    prompts = _prompts(tiny)
    lengths = [len(tiny.encode_prompt(p)) for p in prompts]
    assert len(set(lengths)) == 3  # left padding is exercised

    with batch_sizes(tiny.model) as shapes:
        generate_many(tiny, prompts, processor=_no_eos(tiny), seed=1, **OPTIONS)

    assert shapes[:3] == [(1, length) for length in lengths]  # one prefill per prompt
    assert shapes[3:] == [(9, 1)] * 9  # then all 3 x 3 rows decode together


def test_it_gives_each_prompt_the_samples_it_gets_alone(tiny: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=0.9, top_k=20, top_p=0.9))
    prompts = _prompts(tiny)

    together = generate_many(tiny, prompts, processor=processor, seed=5, **OPTIONS)
    split = generate_many(tiny, prompts, processor=processor, seed=5, max_batch_rows=2, **OPTIONS)

    for index, prompt in enumerate(prompts):
        alone = generate(tiny, prompt, processor=processor, seed=stable_seed(5, index), **OPTIONS)
        assert _tokens(together[index]) == _tokens(alone)
        assert _tokens(split[index]) == _tokens(alone)
        assert [s.finish_reason for s in together[index]] == [s.finish_reason for s in alone]
    assert len({s.token_ids for samples in together for s in samples}) > 3


def test_it_records_exact_logprobs_for_left_padded_rows(tiny: LoadedModel) -> None:
    prompts = _prompts(tiny)
    many = generate_many(tiny, prompts, processor=None, seed=2, **OPTIONS)

    for prompt, samples in zip(prompts, many, strict=True):
        for sample in samples:
            assert sample.prompt_tokens == len(tiny.encode_prompt(prompt))
            expected = _reference_logprobs(tiny, prompt, sample.token_ids)
            assert sample.token_logprobs == pytest.approx(expected, abs=1e-4)
            assert sample.generated_tokens == len(sample.token_ids) == len(expected)


def test_it_mixes_processors_and_greedy_rows_in_one_batch(tiny: LoadedModel) -> None:
    prompts = _prompts(tiny)[:2]
    top_p = build_processor(DecodingConfig(temperature=0.8, top_k=10, top_p=0.9))
    min_p = build_processor(DecodingConfig(top_k=10, min_p=0.05))
    # Two pools of the same problems decode together, each with its own seeds.
    pools = [(top_p, 11), (min_p, 22)]
    requests = [
        Request(
            prompt_text=prompt,
            n=3,
            processor=processor,
            greedy=False,
            seed=stable_seed(seed, index),
            max_new_tokens=8,
        )
        for processor, seed in pools
        for index, prompt in enumerate(prompts)
    ]
    requests.append(dataclasses.replace(requests[0], greedy=True, n=2))

    with batch_sizes(tiny.model) as shapes:
        mixed = generate_batch(tiny, requests)

    assert shapes[len(requests)] == (13, 1)  # 4 x 3 sampled rows + 1 greedy row
    for request, samples in zip(requests, mixed, strict=True):
        [alone] = generate_batch(tiny, [request])
        assert _tokens(samples) == _tokens(alone)
    [greedy] = generate(
        tiny, prompts[0], n=1, processor=None, greedy=True, max_new_tokens=8, seed=0
    )
    assert _tokens(mixed[-1]) == [greedy.token_ids, greedy.token_ids]


def test_it_takes_per_prompt_processors_seeds_and_greedy_flags(tiny: LoadedModel) -> None:
    prompts = _prompts(tiny)
    processors = [
        build_processor(DecodingConfig(top_k=5)),
        build_processor(DecodingConfig(top_k=8, typical_p=0.9)),
        None,
    ]
    many = generate_many(
        tiny,
        prompts,
        processor=None,
        seed=0,
        processors=processors,
        greedy_per_prompt=[False, False, True],
        seeds=[7, 8, 9],
        **OPTIONS,
    )

    for index, prompt in enumerate(prompts):
        alone = generate(
            tiny,
            prompt,
            n=3,
            processor=processors[index],
            greedy=index == 2,
            max_new_tokens=10,
            seed=7 + index,
        )
        assert _tokens(many[index]) == _tokens(alone)
    assert len(set(_tokens(many[2]))) == 1  # greedy: n identical candidates


def test_it_splits_a_request_larger_than_the_batch(tiny: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=1.2, top_k=10))
    prompt = _prompts(tiny)[0]

    with batch_sizes(tiny.model) as shapes:
        split = generate(
            tiny,
            prompt,
            n=7,
            processor=processor,
            greedy=False,
            max_new_tokens=4,
            seed=3,
            max_batch_rows=3,
        )
    whole = generate(tiny, prompt, n=7, processor=processor, greedy=False, max_new_tokens=4, seed=3)

    assert _tokens(split) == _tokens(whole)
    assert max(rows for rows, width in shapes if width == 1) == 3
    assert sum(1 for rows, width in shapes if width > 1) == 3  # one prefill per batch


def test_it_grows_the_cache_as_samples_get_longer(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = _no_eos_until(tiny, 6)
    options = {**OPTIONS, "max_new_tokens": 14}
    expected = generate_many(tiny, _prompts(tiny), processor=processor, seed=8, **options)
    monkeypatch.setattr(batch, "INITIAL_TOKENS", 2)

    grown = generate_many(tiny, _prompts(tiny), processor=processor, seed=8, **options)

    assert [[s.token_ids for s in g] for g in grown] == [[s.token_ids for s in g] for g in expected]
    assert {s.finish_reason for g in grown for s in g} == {"eos", "length"}


def test_it_keeps_the_first_samples_when_n_grows(tiny: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=0.9, top_k=10))
    prompt = _prompts(tiny)[1]
    options = {"processor": processor, "greedy": False, "max_new_tokens": 8, "seed": 9}

    few = generate(tiny, prompt, n=3, **options)
    more = generate(tiny, prompt, n=8, **options)

    assert _tokens(more)[:3] == _tokens(few)
    assert len(set(_tokens(more))) > 3


def test_it_apportions_batch_time_to_every_sample(tiny: LoadedModel) -> None:
    many = generate_many(tiny, _prompts(tiny), processor=None, seed=4, **OPTIONS)

    samples = [s for group in many for s in group]
    assert all(s.seconds > 0 for s in samples)
    rates = [s.seconds / s.generated_tokens for s in samples]
    assert rates == pytest.approx([rates[0]] * len(rates))


def test_it_rejects_per_prompt_lists_of_the_wrong_length(tiny: LoadedModel) -> None:
    with pytest.raises(ValueError, match="seeds has 1 entries for 3 prompts"):
        generate_many(tiny, _prompts(tiny), processor=None, seed=0, seeds=[1], **OPTIONS)
    with pytest.raises(ValueError, match="max_batch_rows"):
        generate_many(tiny, _prompts(tiny), processor=None, seed=0, max_batch_rows=0, **OPTIONS)


def _no_eos_until(loaded: LoadedModel, position: int) -> Any:
    """Forbid end-of-sequence before ``position``; make it likely from there on."""
    eos = list(loaded.eos_token_ids)

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if int(positions[0]) < position:
            scores[:, eos] = -math.inf
        else:  # probability 1/3
            scores[:, eos] = -math.inf
            scores[:, eos[0]] = torch.logsumexp(scores, dim=-1) - math.log(2.0)
        return scores

    return process


def _no_eos(loaded: LoadedModel) -> Any:
    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        scores[:, list(loaded.eos_token_ids)] = -math.inf
        return scores

    return process


# --- A model mixing sliding-window and full attention layers -----------------------


@pytest.fixture(scope="module")
def sliding(tiny: LoadedModel) -> LoadedModel:
    """A tiny random Gemma 3 (sliding window of 6 tokens) with the tiny model's tokenizer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    eos = tiny.eos_token_ids[0]
    config = Gemma3TextConfig(
        vocab_size=len(tiny.tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=6,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512,
        initializer_range=0.2,
        eos_token_id=eos,
        pad_token_id=eos,
        bos_token_id=1,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Gemma3ForCausalLM(config).eval()
    return dataclasses.replace(tiny, model=model)


def test_it_applies_sliding_windows_to_sliding_layers(sliding: LoadedModel) -> None:
    prompts = _prompts(sliding)
    processor = build_processor(DecodingConfig(temperature=0.9, top_k=20))
    many = generate_many(sliding, prompts, processor=processor, seed=6, **OPTIONS)

    for prompt, samples in zip(prompts, many, strict=True):
        for sample in samples:
            expected = _reference_logprobs(sliding, prompt, sample.token_ids)
            assert sample.token_logprobs == pytest.approx(expected, abs=1e-4)
    for index, prompt in enumerate(prompts):
        alone = generate(
            sliding, prompt, processor=processor, seed=stable_seed(6, index), **OPTIONS
        )
        assert _tokens(alone) == _tokens(many[index])


def test_it_decodes_sliding_window_models_greedily_like_transformers(
    sliding: LoadedModel,
) -> None:
    for prompt in _prompts(sliding):
        expected = hf_greedy(sliding, prompt, 20)
        for draft in (0, 4):
            [sample] = generate(
                sliding,
                prompt,
                n=1,
                processor=None,
                greedy=True,
                max_new_tokens=20,
                seed=0,
                speculative_tokens=draft,
            )
            assert list(sample.token_ids) == expected


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_it_runs_batches_on_cuda_in_bfloat16(tiny: LoadedModel) -> None:
    model = dataclasses.replace(
        tiny,
        model=copy.deepcopy(tiny.model).to("cuda", torch.bfloat16),
        device=torch.device("cuda"),
        dtype=torch.bfloat16,
    )
    processor = build_processor(DecodingConfig(temperature=0.8, top_p=0.9))
    many = generate_many(model, _prompts(model), processor=processor, seed=1, **OPTIONS)
    again = generate_many(model, _prompts(model), processor=processor, seed=1, **OPTIONS)

    assert [_tokens(s) for s in many] == [_tokens(s) for s in again]
    assert all(math.isfinite(s.logprob_sum) for group in many for s in group)
