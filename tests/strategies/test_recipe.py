"""A pool's recipe: its key (unchanged from the pools stored so far) and its stored fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strategies.config import pool_key
from strategies.recipe import (
    ADAPTIVE_DECODER,
    BEAM_DECODERS,
    BEAM_FIXED_FIELDS,
    SINGLE_CALL_SCHEMES,
    TEST_SCHEME,
    PoolRecipe,
    generated_tests_decoding,
    generated_tests_recipe,
)
from strategies.sampling.decoding import DecodingConfig

MODEL = "smollm-135m"
MAX_NEW_TOKENS = 32

# Keys, pool names, stored decoders and configs computed by the code before the recipe
# existed (``StrategySpec.for_experiment(4, 32)`` then ``pool_key(model,
# StrategySpec.pool_scheme(), decoding, seed)``): stored pools must keep them.
ROWS: dict[str, tuple[PoolRecipe, str, str]] = {
    "direct greedy": (
        PoolRecipe(model=MODEL, scheme="direct", seed=0,
                   decoding=DecodingConfig(temperature=0.0, max_new_tokens=MAX_NEW_TOKENS)),
        "direct",
        "31676d9468c8514e0b7ca1d025500b7749c3b4647f5f2347391cfe1c7dd7a950",
    ),
    "chain of thought with a config": (
        PoolRecipe(model=MODEL, scheme="chain_of_thought", scheme_config={"position": "before"},
                   decoding=DecodingConfig(temperature=0.7, top_p=0.9, min_p=0.05,
                                           max_new_tokens=MAX_NEW_TOKENS), seed=7),
        "chain_of_thought:8bd11c9e049d16e6",
        "a97251fb75be120eb9a1e755a13a0e98f702dd70a5dc43c7635682eede09a2d0",
    ),
    "beam search with a config": (
        PoolRecipe(model=MODEL, scheme="direct", decoder="beam_search",
                   decoder_config={"num_beams": 4, "length_penalty": 0.5,
                                   "early_stopping": "never"},
                   decoding=DecodingConfig(max_new_tokens=MAX_NEW_TOKENS), seed=0),
        "direct|beam_search:30d0f33f7b3c7400",
        "6effd61880acf74ad66d7c8430b1ffa3e6c348c0e1c41d5831f93d290972d26b",
    ),
    "diverse beam search of few-shot prompts": (
        PoolRecipe(model=MODEL, scheme="few_shot", scheme_config={"k": 2},
                   decoder="diverse_beam_search",
                   decoder_config={"num_beams": 6, "num_beam_groups": 3},
                   decoding=DecodingConfig(max_new_tokens=MAX_NEW_TOKENS), seed=3),
        "few_shot:1ddca3d1f7a33ce8|diverse_beam_search:4d2bca34d3f8c0a6",
        "06ff3b86c900910e8349ae73ccadc82de29b85bfdf63ca169b6d2152ade4fcd6",
    ),
    "adaptive consistency": (
        PoolRecipe(model=MODEL, scheme="direct", decoder=ADAPTIVE_DECODER,
                   decoder_config={"max_samples": 8, "threshold": 0.9},
                   decoding=DecodingConfig(temperature=0.7, max_new_tokens=MAX_NEW_TOKENS),
                   seed=0),
        "direct|adaptive_consistency:08c48dac1d76d895",
        "348ad93e3143c7514ab2a28bb7366cf00b0afe327f800f7bad2d40757636dc82",
    ),
    "sequential with its budget": (
        PoolRecipe(model=MODEL, scheme="sequential",
                   scheme_config={"max_rounds": 3, "budget_tokens": 128},
                   decoding=DecodingConfig(temperature=0.7, max_new_tokens=MAX_NEW_TOKENS),
                   seed=0),
        "sequential:ba485a306ee5204d",
        "07e2cdf584047a96bee4097e3cc6b354da4a9f64e144532aa79ac9998f74d429",
    ),
    "temperature mix": (
        PoolRecipe(model=MODEL, scheme="direct", seed=1,
                   decoding=DecodingConfig(temperature=1.0, temperature_mix=(0.5, 1.3),
                                           max_new_tokens=MAX_NEW_TOKENS)),
        "direct",
        "6550dd5de7e72599ad5266179ba33db300782cfcb5cdcf119db91e1868f847f4",
    ),
    "generated tests": (
        generated_tests_recipe(model=MODEL, max_new_tokens=MAX_NEW_TOKENS, seed=5),
        "generated_tests",
        "026f4c30e001ddcbe851d895fa93264c829a1561d3fc93f5ac6eaa4567ddb420",
    ),
}


@pytest.mark.parametrize("name", ROWS)
def test_it_keeps_the_keys_of_stored_pools(name: str) -> None:
    recipe, pool_scheme, key = ROWS[name]
    assert recipe.pool_scheme() == pool_scheme
    assert recipe.key() == key == pool_key(MODEL, pool_scheme, recipe.decoding, recipe.seed)


@pytest.mark.parametrize("name", ROWS)
def test_it_round_trips_through_a_rows_json_fields(name: str) -> None:
    recipe, _, key = ROWS[name]
    stored = json.loads(json.dumps(recipe.stored_fields()))  # what a JSONField gives back
    assert stored == recipe.stored_fields()
    again = PoolRecipe.from_stored(**stored)
    assert again == recipe and again.key() == key


def test_it_stores_the_fields_a_pool_row_has_held() -> None:
    recipe, pool_scheme, _ = ROWS["beam search with a config"]
    assert recipe.stored_fields() == {
        "model_name": MODEL,
        "scheme": "direct",
        "prompt_scheme": pool_scheme,
        "prompt_config": {},
        "decoding": {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 32},
        "decoder": {"name": "beam_search",
                    "config": {"num_beams": 4, "length_penalty": 0.5, "early_stopping": "never"}},
        "seed": 0,
    }
    mix = ROWS["temperature mix"][0].stored_fields()
    assert mix["decoding"]["temperature_mix"] == [0.5, 1.3] and mix["decoder"] == {}
    assert ROWS["sequential with its budget"][0].stored_fields()["prompt_config"] == {
        "max_rounds": 3, "budget_tokens": 128
    }


def test_it_refuses_a_row_whose_pool_name_is_not_its_recipes() -> None:
    recipe, pool_scheme, _ = ROWS["diverse beam search of few-shot prompts"]
    stored = recipe.stored_fields()
    assert stored["scheme"] == "few_shot" and stored["prompt_scheme"] == pool_scheme
    with pytest.raises(ValueError, match="is not the recipe's"):
        PoolRecipe.from_stored(**{**stored, "prompt_scheme": "few_shot"})


def test_it_reads_a_row_without_config_or_decoder() -> None:
    recipe = PoolRecipe.from_stored(
        model_name=MODEL, scheme="direct", prompt_config=None,
        decoding={"temperature": 0.7, "top_p": 1.0, "top_k": 0, "max_new_tokens": 8},
        decoder=None, seed=3,
    )
    assert recipe.decoder == "sample" and recipe.scheme_config == {}
    assert recipe.decoding == DecodingConfig(temperature=0.7, max_new_tokens=8)


def test_it_drops_the_beam_fields_the_pool_sets() -> None:
    recipe = PoolRecipe(model=MODEL, scheme="direct", decoder="beam_search",
                        decoder_config={"num_beams": 4, "num_return_sequences": 9,
                                        "max_new_tokens": 3},
                        decoding=DecodingConfig(max_new_tokens=MAX_NEW_TOKENS), seed=0)
    assert recipe.decoder_config == {"num_beams": 4}
    config = recipe.beam_config(4)
    assert (config.num_return_sequences, config.max_new_tokens) == (4, MAX_NEW_TOKENS)
    assert set(BEAM_FIXED_FIELDS) == {"num_return_sequences", "max_new_tokens"}


def test_it_refuses_unknown_names() -> None:
    decoding = DecodingConfig()
    with pytest.raises(ValueError, match="unknown prompting scheme 'nope'"):
        PoolRecipe(model=MODEL, scheme="nope", decoding=decoding, seed=0)
    with pytest.raises(ValueError, match="unknown decoder 'greedy'; valid: sample, beam_search"):
        PoolRecipe(model=MODEL, scheme="direct", decoder="greedy", decoding=decoding, seed=0)


def recipe_of(**fields: Any) -> PoolRecipe:
    values: dict[str, Any] = {"model": MODEL, "scheme": "direct", "seed": 0,
                              "decoding": DecodingConfig(temperature=0.7, max_new_tokens=8)}
    return PoolRecipe(**{**values, **fields})


def test_it_tells_greedy_and_batchable_pools() -> None:
    greedy = DecodingConfig(temperature=0.0)
    assert recipe_of(decoding=greedy).is_greedy
    assert not recipe_of().is_greedy
    assert not recipe_of(decoding=greedy, decoder="beam_search").is_greedy
    assert recipe_of().batchable and recipe_of(scheme=TEST_SCHEME).batchable
    assert not recipe_of(scheme="refine").batchable
    assert not recipe_of(decoder=ADAPTIVE_DECODER).batchable
    assert not recipe_of(decoder="beam_search").batchable


@pytest.mark.parametrize(
    ("fields", "n", "size"),
    [
        ({}, 8, 8),
        ({"decoding": DecodingConfig(temperature=0.0)}, 8, 1),
        ({"decoding": DecodingConfig(temperature=0.0), "scheme": "refine"}, 8, 1),
        ({"decoder": "beam_search", "decoder_config": {"num_beams": 8}}, 8, 8),
        ({"decoder": ADAPTIVE_DECODER, "decoder_config": {"max_samples": 5}}, 8, 5),
        ({"scheme": "refine", "scheme_config": {"n": 2, "iterations": 2}}, 8, 6),
        ({"scheme": "sequential", "scheme_config": {"max_rounds": 3, "budget_tokens": 9}}, 8, 3),
        ({"scheme": "plansearch", "scheme_config": {"max_plans": 4}}, 8, 4),
    ],
)
def test_it_says_how_many_samples_the_pool_yields(
    fields: dict[str, Any], n: int, size: int
) -> None:
    assert recipe_of(**fields).pool_size(n) == size


@pytest.mark.parametrize(
    ("fields", "n", "message"),
    [
        ({"decoder": "beam_search", "decoder_config": {"num_beams": 2}}, 4,
         "num_beams must be at least N = 4"),
        ({"decoder": "beam_search", "scheme": "deepening"}, 2, "single-call"),
        ({"decoder": "beam_search", "decoder_config": {"num_beams": 0}}, 1, "num_beams"),
        ({"decoder": ADAPTIVE_DECODER, "scheme": "refine"}, 4, "single-call"),
        ({"decoder": ADAPTIVE_DECODER, "decoding": DecodingConfig(temperature=0.0)}, 4,
         "needs sampling"),
        ({"decoder": ADAPTIVE_DECODER, "decoder_config": {"threshold": 2.0}}, 4, "threshold"),
        ({"scheme": "sequential", "scheme_config": {"max_rounds": 0}}, 4, "max_rounds"),
        ({"scheme": "refine"}, 257, "the refine prompting scheme draws .* at most 256"),
        ({"decoder": ADAPTIVE_DECODER}, 300, "adaptive_consistency draws .* at most 256"),
    ],
)
def test_it_checks_a_pool_of_n(fields: dict[str, Any], n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        recipe_of(**fields).check(n)


def test_it_accepts_the_pools_the_app_makes() -> None:
    for recipe, _, _ in ROWS.values():
        recipe.check(4)
    recipe_of().check(10_000)  # plain sampling: ranges of batches and tasks
    recipe_of(decoding=DecodingConfig(temperature=0.0)).check(10_000)  # one sample
    recipe_of(scheme="refine").check(256)


def test_it_holds_the_decoders_and_codets_test_pool_settings() -> None:
    assert SINGLE_CALL_SCHEMES == ("direct", "chain_of_thought", "few_shot")
    assert BEAM_DECODERS == ("beam_search", "diverse_beam_search")
    assert generated_tests_decoding(16) == DecodingConfig(
        temperature=0.8, top_p=0.95, max_new_tokens=16
    )
    assert generated_tests_recipe(model=MODEL, max_new_tokens=16, seed=2).stored_fields() == {
        "model_name": MODEL, "scheme": TEST_SCHEME, "prompt_scheme": TEST_SCHEME,
        "prompt_config": {},
        "decoding": {"temperature": 0.8, "top_p": 0.95, "top_k": 0, "max_new_tokens": 16},
        "decoder": {}, "seed": 2,
    }
