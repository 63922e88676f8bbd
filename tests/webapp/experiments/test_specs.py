"""A strategy row's pool: its recipe keeps the names, keys and sizes rows have had."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.recipe import BEAM_DECODERS, SINGLE_CALL_SCHEMES, TEST_SCHEME
from webapp.experiments import specs
from webapp.experiments.specs import StrategySpec

MODEL, N, MAX_NEW_TOKENS = "smollm-135m", 4, 32

# Computed by ``StrategySpec`` before it built a ``PoolRecipe``: (row, seed, pool name,
# key, stored decoder, stored prompt config, pool size for N = 4).
ROWS: dict[str, tuple[StrategySpec, int, str, str, dict[str, Any], dict[str, Any], int]] = {
    "direct greedy": (
        StrategySpec(temperature=0.0), 0, "direct",
        "31676d9468c8514e0b7ca1d025500b7749c3b4647f5f2347391cfe1c7dd7a950", {}, {}, 1,
    ),
    "chain of thought with a config": (
        StrategySpec(temperature=0.7, top_p=0.9, prompt_scheme="chain_of_thought",
                     prompt_config={"position": "before"}, sampling={"min_p": 0.05}),
        7, "chain_of_thought:8bd11c9e049d16e6",
        "a97251fb75be120eb9a1e755a13a0e98f702dd70a5dc43c7635682eede09a2d0",
        {}, {"position": "before"}, 4,
    ),
    "beam search": (
        StrategySpec(temperature=1.0, decoder="beam_search", decoder_config={
            "num_beams": 4, "length_penalty": 0.5, "early_stopping": "never"}),
        0, "direct|beam_search:30d0f33f7b3c7400",
        "6effd61880acf74ad66d7c8430b1ffa3e6c348c0e1c41d5831f93d290972d26b",
        {"name": "beam_search",
         "config": {"num_beams": 4, "length_penalty": 0.5, "early_stopping": "never"}},
        {}, 4,
    ),
    "diverse beam search": (
        StrategySpec(temperature=1.0, prompt_scheme="few_shot", prompt_config={"k": 2},
                     decoder="diverse_beam_search",
                     decoder_config={"num_beams": 6, "num_beam_groups": 3}),
        3, "few_shot:1ddca3d1f7a33ce8|diverse_beam_search:4d2bca34d3f8c0a6",
        "06ff3b86c900910e8349ae73ccadc82de29b85bfdf63ca169b6d2152ade4fcd6",
        {"name": "diverse_beam_search", "config": {"num_beams": 6, "num_beam_groups": 3}},
        {"k": 2}, 4,
    ),
    "adaptive": (
        StrategySpec(temperature=0.7, decoder="adaptive_consistency",
                     decoder_config={"max_samples": 8, "threshold": 0.9}),
        0, "direct|adaptive_consistency:08c48dac1d76d895",
        "348ad93e3143c7514ab2a28bb7366cf00b0afe327f800f7bad2d40757636dc82",
        {"name": "adaptive_consistency", "config": {"max_samples": 8, "threshold": 0.9}},
        {}, 4,
    ),
    "sequential with the matched budget": (
        StrategySpec(temperature=0.7, prompt_scheme="sequential",
                     prompt_config={"max_rounds": 3}),
        0, "sequential:ba485a306ee5204d",
        "07e2cdf584047a96bee4097e3cc6b354da4a9f64e144532aa79ac9998f74d429",
        {}, {"max_rounds": 3, "budget_tokens": 128}, 3,
    ),
    "temperature mix": (
        StrategySpec(temperature=1.0, sampling={"temperature_mix": [0.5, 1.3]}),
        1, "direct", "6550dd5de7e72599ad5266179ba33db300782cfcb5cdcf119db91e1868f847f4",
        {}, {}, 4,
    ),
}


@pytest.mark.parametrize("name", ROWS)
def test_it_builds_the_pool_rows_have_always_had(name: str) -> None:
    spec, seed, pool_scheme, key, decoder, prompt_config, size = ROWS[name]
    row = spec.for_experiment(N, MAX_NEW_TOKENS)
    recipe = spec.recipe(MODEL, N, MAX_NEW_TOKENS, seed)
    assert row.pool_scheme() == recipe.pool_scheme() == pool_scheme
    assert recipe.key() == key
    assert row.pool_decoder() == recipe.pool_decoder() == decoder
    assert dict(row.prompt_config) == recipe.scheme_config == prompt_config
    assert row.pool_size(N, MAX_NEW_TOKENS) == recipe.pool_size(N) == size
    assert recipe.decoding == row.decoding(MAX_NEW_TOKENS)


def test_it_keeps_an_explicit_sequential_budget() -> None:
    spec = StrategySpec(temperature=0.7, prompt_scheme="sequential",
                        prompt_config={"budget_tokens": 20})
    assert spec.for_experiment(N, MAX_NEW_TOKENS) is spec
    assert spec.recipe(MODEL, N, MAX_NEW_TOKENS, 0).scheme_config == {"budget_tokens": 20}
    assert spec.scheme_config().max_rounds == 64


def test_it_checks_the_row_when_it_builds_its_recipe() -> None:
    spec = StrategySpec(temperature=0.0, decoder="adaptive_consistency")
    with pytest.raises(ValueError, match="needs sampling"):
        spec.recipe(MODEL, N, MAX_NEW_TOKENS, 0)
    with pytest.raises(ValueError, match="unknown decoder"):
        StrategySpec(temperature=1.0, decoder="greedy").for_experiment(N, MAX_NEW_TOKENS)
    with pytest.raises(ValueError, match="max_rounds"):
        StrategySpec(temperature=0.7, prompt_scheme="sequential",
                     prompt_config={"max_rounds": 0}).for_experiment(N, MAX_NEW_TOKENS)


def test_it_keeps_the_shared_constants_in_one_place() -> None:
    from workers.runtime import schemes

    assert specs.SINGLE_CALL_SCHEMES is schemes.SINGLE_CALL_SCHEMES is SINGLE_CALL_SCHEMES
    assert specs.BEAM_DECODERS is schemes.BEAM_DECODERS is BEAM_DECODERS
    assert specs.TEST_SCHEME == schemes.TEST_SCHEME == TEST_SCHEME
    assert specs.test_decoding(16).key_fields() == {
        "temperature": 0.8, "top_p": 0.95, "top_k": 0, "max_new_tokens": 16
    }
