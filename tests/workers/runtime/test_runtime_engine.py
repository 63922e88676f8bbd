"""The batched sampler, exercised on the tiny random model."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import scipy.stats
import torch

from strategies.sampling import DecodingConfig, build_processor
from strategies.types import Candidate
from tests.workers.runtime.helpers import batch_sizes, hf_greedy
from workers.runtime.engine import generate, generate_many, stable_seed
from workers.runtime.models import LoadedModel
from workers.runtime.sampler import WIDE_TOP_M
from workers.runtime.truncation import describe_processor, fast_filter

PROMPT = "Name three colours."
#: Scale of the final norm in the ``peaked`` model (sharpens its next-token distribution).
PEAK_SCALE = 5.5
#: Scale of the final norm in the ``broad`` model (a nucleus wider than the top M).
BROAD_SCALE = 4.0
#: The statistical test draws ``SEEDS`` x ``ROWS`` first tokens.
SEEDS = 4
ROWS = 500


def _prompt(tiny: LoadedModel) -> str:
    return tiny.render_prompt(PROMPT)


def _no_eos(tiny: LoadedModel) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A processor that only forbids end-of-sequence tokens."""

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        scores[:, list(tiny.eos_token_ids)] = -math.inf
        return scores

    return process


def _forcing(
    by_position: dict[int, int], default: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A processor that allows only token ``by_position[p]`` at generated position ``p``."""

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = scores if default is None else default(scores)
        for row, position in enumerate(positions.tolist()):
            if position in by_position:
                out[row] = -math.inf
                out[row, by_position[position]] = 0.0
        return out

    return process


def _sample(tiny: LoadedModel, **kwargs: Any) -> list[Candidate]:
    options: dict[str, Any] = {
        "n": 4,
        "processor": None,
        "greedy": False,
        "max_new_tokens": 12,
        "seed": 7,
    }
    options.update(kwargs)
    return generate(tiny, _prompt(tiny), **options)


def test_it_matches_hf_greedy_generate_token_for_token(tiny: LoadedModel) -> None:
    ids = tiny.encode_prompt(_prompt(tiny))
    expected = hf_greedy(tiny, _prompt(tiny), 24)

    [sample] = generate(
        tiny, _prompt(tiny), n=1, processor=None, greedy=True, max_new_tokens=24, seed=0
    )

    assert list(sample.token_ids) == expected
    assert sample.prompt_tokens == len(ids)
    assert sample.generated_tokens == len(expected)


#: Prompts of different lengths for the comparisons with transformers.
PROMPTS = (
    "Name three colours.",
    "Hi",
    "Write a short poem about the sea, the wind and a lighthouse keeper at night.",
    "What is 12 + 30?",
)


def test_it_matches_hf_greedy_generate_for_several_prompts(tiny: LoadedModel) -> None:
    prompts = [tiny.render_prompt(text) for text in PROMPTS]
    expected = [hf_greedy(tiny, prompt, 20) for prompt in prompts]

    alone = [
        generate(tiny, p, n=1, processor=None, greedy=True, max_new_tokens=20, seed=0)[0]
        for p in prompts
    ]
    batched = generate_many(
        tiny, prompts, n=1, processor=None, greedy=True, max_new_tokens=20, seed=0
    )

    assert [list(s.token_ids) for s in alone] == expected
    assert [list(samples[0].token_ids) for samples in batched] == expected


def test_it_records_logprobs_of_the_unmodified_model(tiny: LoadedModel) -> None:
    def sharpen(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        scores = scores / 0.3
        kth = torch.topk(scores, 5, dim=-1).values[:, -1:]
        return scores.masked_fill(scores < kth, -math.inf)

    samples = _sample(tiny, n=3, processor=sharpen, max_new_tokens=10)
    prompt_ids = tiny.encode_prompt(_prompt(tiny))

    for sample in samples:
        full = torch.tensor([prompt_ids + list(sample.token_ids)])
        with torch.inference_mode():
            logp = torch.log_softmax(tiny.model(input_ids=full).logits[0].float(), dim=-1)
        start = len(prompt_ids) - 1
        per_token = [float(logp[start + j, token]) for j, token in enumerate(sample.token_ids)]
        assert sample.logprob_sum == pytest.approx(sum(per_token), abs=1e-4)
        assert sample.token_logprobs == pytest.approx(per_token, abs=1e-4)
        assert sample.logprob_sum == pytest.approx(sum(sample.token_logprobs), abs=1e-9)


def test_it_repeats_samples_for_the_same_seed(tiny: LoadedModel) -> None:
    first = _sample(tiny, seed=11)
    second = _sample(tiny, seed=11)

    assert [s.token_ids for s in first] == [s.token_ids for s in second]
    assert [s.text for s in first] == [s.text for s in second]
    assert [s.logprob_sum for s in first] == [s.logprob_sum for s in second]


def test_it_draws_different_samples_for_different_seeds(tiny: LoadedModel) -> None:
    first = _sample(tiny, seed=11)
    other = _sample(tiny, seed=12)

    assert [s.token_ids for s in first] != [s.token_ids for s in other]
    assert len({s.token_ids for s in first}) > 1  # the n candidates differ too


def test_it_leaves_the_global_rng_alone(tiny: LoadedModel) -> None:
    before = torch.get_rng_state()
    _sample(tiny, n=2, max_new_tokens=4)
    assert torch.equal(before, torch.get_rng_state())


def test_it_cuts_text_at_a_stop_string(tiny: LoadedModel) -> None:
    forced = tiny.tokenizer.encode(" alpha beta STOP gamma delta", add_special_tokens=False)
    processor = _forcing(dict(enumerate(forced)))

    [sample] = _sample(tiny, n=1, processor=processor, stop_strings=("STOP",), max_new_tokens=30)

    assert sample.finish_reason == "stop"
    assert sample.text == " alpha beta "
    assert "gamma" not in tiny.tokenizer.decode(list(sample.token_ids))
    assert sample.generated_tokens < len(forced)


def test_it_stops_at_max_new_tokens_with_reason_length(tiny: LoadedModel) -> None:
    samples = _sample(tiny, n=3, processor=_no_eos(tiny), max_new_tokens=5)

    assert [s.finish_reason for s in samples] == ["length"] * 3
    assert [s.generated_tokens for s in samples] == [5, 5, 5]
    assert all(len(s.token_logprobs) == 5 for s in samples)


def test_it_stops_on_eos_and_drops_finished_rows_from_the_batch(tiny: LoadedModel) -> None:
    eos = tiny.eos_token_ids[0]
    no_eos = _no_eos(tiny)

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        scores = no_eos(scores, positions)
        if int(positions[0]) in (1, 3):  # the first batch row ends here
            scores[0] = -math.inf
            scores[0, eos] = 0.0
        return scores

    with batch_sizes(tiny.model) as shapes:
        samples = _sample(tiny, n=4, processor=process, max_new_tokens=6)

    prompt_len = samples[0].prompt_tokens
    assert shapes == [(1, prompt_len), (4, 1), (3, 1), (3, 1), (2, 1), (2, 1)]
    # Sample 0 ends at position 1; the last live row (sample 3) takes its batch row and
    # ends at position 3. Samples are returned in sample order whatever the rows were.
    assert [s.finish_reason for s in samples] == ["eos", "length", "length", "eos"]
    assert [s.generated_tokens for s in samples] == [2, 6, 6, 4]
    assert samples[0].token_ids[-1] == eos
    assert samples[3].token_ids[-1] == eos
    assert all(s.prompt_tokens == prompt_len for s in samples)


def test_it_prefills_the_prompt_once_for_all_candidates(tiny: LoadedModel) -> None:
    with batch_sizes(tiny.model) as shapes:
        samples = _sample(tiny, n=8, processor=_no_eos(tiny), max_new_tokens=3)

    assert len(samples) == 8
    assert shapes[0] == (1, samples[0].prompt_tokens)
    assert shapes[1:] == [(8, 1), (8, 1)]


def test_it_falls_back_to_argmax_when_every_token_is_filtered(tiny: LoadedModel) -> None:
    def nothing(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return torch.full_like(scores, -math.inf)

    sampled = _sample(tiny, n=2, processor=nothing, max_new_tokens=6)
    [greedy] = _sample(tiny, n=1, greedy=True, max_new_tokens=6)

    assert [s.token_ids for s in sampled] == [greedy.token_ids, greedy.token_ids]


def test_it_apportions_wall_time_across_samples(tiny: LoadedModel) -> None:
    eos = tiny.eos_token_ids[0]
    no_eos = _no_eos(tiny)

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        scores = no_eos(scores, positions)
        if int(positions[0]) == 2:
            scores[0] = -math.inf
            scores[0, eos] = 0.0
        return scores

    started = time.perf_counter()
    samples = _sample(tiny, n=3, processor=process, max_new_tokens=9)
    wall = time.perf_counter() - started

    total = sum(s.seconds for s in samples)
    assert 0 < total <= wall
    assert total == pytest.approx(wall, rel=0.2, abs=0.02)
    rates = [s.seconds / s.generated_tokens for s in samples]
    assert rates == pytest.approx([rates[0]] * 3)
    assert samples[0].seconds < samples[1].seconds


def test_it_generates_many_prompts_with_per_problem_seeds(tiny: LoadedModel) -> None:
    prompts = [tiny.render_prompt("one"), tiny.render_prompt("two")]
    options: dict[str, Any] = {
        "n": 2,
        # Top-k: over the random model's nearly flat full distribution, a last-bit logit
        # difference between batch sizes could move a token boundary past the draw.
        "processor": build_processor(DecodingConfig(top_k=20)),
        "greedy": False,
        "max_new_tokens": 5,
    }

    many = generate_many(tiny, prompts, seed=5, **options)

    assert len(many) == 2
    for index, prompt in enumerate(prompts):
        alone = generate(tiny, prompt, seed=stable_seed(5, index), **options)
        assert [s.token_ids for s in many[index]] == [s.token_ids for s in alone]
    assert stable_seed(5, 0) == stable_seed(5, 0) != stable_seed(5, 1)


def test_it_rejects_empty_requests(tiny: LoadedModel) -> None:
    with pytest.raises(ValueError, match="n must be"):
        _sample(tiny, n=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        _sample(tiny, max_new_tokens=0)


def _scaled(tiny: LoadedModel, scale: float) -> LoadedModel:
    """A copy of the tiny model whose logits are scaled by ``scale``."""
    model = copy.deepcopy(tiny.model)
    with torch.no_grad():
        model.model.norm.weight.mul_(scale)
    return dataclasses.replace(tiny, model=model)


@pytest.fixture(scope="module")
def peaked(tiny: LoadedModel) -> LoadedModel:
    """A copy of the tiny model whose logits are scaled up, like a trained model's."""
    return _scaled(tiny, PEAK_SCALE)


def _first_token_counts(
    loaded: LoadedModel, processor: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> Counter[int]:
    counts: Counter[int] = Counter()
    for seed in range(SEEDS):
        samples = generate(
            loaded,
            _prompt(loaded),
            n=ROWS,
            processor=processor,
            greedy=False,
            max_new_tokens=1,
            seed=seed,
        )
        counts.update(s.token_ids[0] for s in samples)
    return counts


def _chi_square_p(counts: Counter[int], probs: torch.Tensor) -> float:
    """Goodness of fit of ``counts`` to ``probs``; tokens expected < 5 times are pooled."""
    total = sum(counts.values())
    expected = probs.double() * total
    big = (expected >= 5).nonzero(as_tuple=True)[0].tolist()
    observed = [counts.get(token, 0) for token in big]
    wanted = [float(expected[token]) for token in big]
    rest_observed = total - sum(observed)
    rest_expected = total - sum(wanted)
    if rest_expected >= 5:
        observed.append(rest_observed)
        wanted.append(rest_expected)
    else:
        assert rest_observed <= 5
        wanted = [w * sum(observed) / sum(wanted) for w in wanted]
    assert len(wanted) >= 5  # enough categories for the test to mean something
    return float(scipy.stats.chisquare(observed, wanted).pvalue)


@pytest.mark.parametrize("path", ["fast", "full"])
def test_it_samples_next_tokens_from_the_processed_distribution(
    peaked: LoadedModel, path: str
) -> None:
    config = DecodingConfig(temperature=0.8, top_p=0.9)
    built = build_processor(config)
    ids = torch.tensor([peaked.encode_prompt(_prompt(peaked))])
    with torch.inference_mode():
        logits = peaked.model(input_ids=ids).logits[:, -1, :].float()
    probs = torch.softmax(built(logits.clone(), torch.zeros(1, dtype=torch.long)), dim=-1)[0]
    spec = describe_processor(built)
    assert spec is not None
    assert bool(fast_filter(logits, spec)[2].all())  # the fast path decides this row
    assert 5 <= int((probs > 0).sum()) <= 60  # a nucleus of a few tokens

    # An opaque wrapper is not recognised, so the engine runs it over the full vocabulary.
    processor = built if path == "fast" else (lambda s, p: built(s, p))
    counts = _first_token_counts(peaked, processor)

    assert set(counts) <= set((probs > 0).nonzero(as_tuple=True)[0].tolist())
    assert _chi_square_p(counts, probs) > 0.001


@pytest.fixture(scope="module")
def broad(tiny: LoadedModel) -> LoadedModel:
    """Like ``peaked`` but flatter: a top-p 0.9 nucleus of about a hundred tokens."""
    return _scaled(tiny, BROAD_SCALE)


def test_it_samples_wide_nuclei_from_the_processed_distribution(broad: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=0.8, top_p=0.9))
    ids = torch.tensor([broad.encode_prompt(_prompt(broad))])
    with torch.inference_mode():
        logits = broad.model(input_ids=ids).logits[:, -1, :].float()
    probs = torch.softmax(processor(logits.clone(), torch.zeros(1, dtype=torch.long)), dim=-1)[0]
    spec = describe_processor(processor)
    assert spec is not None
    assert not bool(fast_filter(logits, spec)[2].all())  # wider than the default top M
    assert bool(fast_filter(logits, spec, top_m=WIDE_TOP_M)[2].all())  # the wide path
    assert 64 < int((probs > 0).sum()) <= 1000

    counts = _first_token_counts(broad, processor)

    assert set(counts) <= set((probs > 0).nonzero(as_tuple=True)[0].tolist())
    assert _chi_square_p(counts, probs) > 0.001


def test_it_keeps_logprobs_exact_on_the_fast_path(peaked: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=0.8, top_p=0.9))
    samples = generate(
        peaked, _prompt(peaked), n=3, processor=processor, greedy=False, max_new_tokens=8, seed=3
    )
    prompt_ids = peaked.encode_prompt(_prompt(peaked))
    for sample in samples:
        full = torch.tensor([prompt_ids + list(sample.token_ids)])
        with torch.inference_mode():
            logp = torch.log_softmax(peaked.model(input_ids=full).logits[0].float(), dim=-1)
        start = len(prompt_ids) - 1
        per_token = [float(logp[start + j, token]) for j, token in enumerate(sample.token_ids)]
        assert sample.token_logprobs == pytest.approx(per_token, abs=1e-4)


def test_it_repeats_fast_path_samples_for_the_same_seed(peaked: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=0.8, top_p=0.9))

    def run(seed: int) -> list[tuple[int, ...]]:
        samples = generate(
            peaked,
            _prompt(peaked),
            n=6,
            processor=processor,
            greedy=False,
            max_new_tokens=10,
            seed=seed,
        )
        return [s.token_ids for s in samples]

    assert run(4) == run(4)
    assert run(4) != run(5)
