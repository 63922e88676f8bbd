"""Config hashes and sample-pool keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from strategies.config import config_hash, pool_key
from strategies.sampling.decoding import DecodingConfig

BASE = {
    "model": "smollm2-135m",
    "prompt_scheme": "direct",
    "decoding": DecodingConfig(temperature=0.7, top_p=0.95),
    "seed": 0,
}


def test_it_gives_the_same_key_for_the_same_inputs() -> None:
    assert pool_key(**BASE) == pool_key(**BASE)  # type: ignore[arg-type]
    assert pool_key(**BASE) == pool_key(  # type: ignore[arg-type]
        "smollm2-135m", "direct", DecodingConfig(top_p=0.95, temperature=0.7), 0
    )


@pytest.mark.parametrize(
    "change",
    [
        {"model": "smollm2-360m"},
        {"prompt_scheme": "cot"},
        {"decoding": DecodingConfig(temperature=0.8, top_p=0.95)},
        {"decoding": DecodingConfig(temperature=0.7, top_p=0.95, top_k=50)},
        {"decoding": DecodingConfig(temperature=0.7, top_p=0.95, max_new_tokens=512)},
        {"seed": 1},
    ],
)
def test_it_changes_the_key_when_any_input_changes(change: dict[str, object]) -> None:
    assert pool_key(**{**BASE, **change}) != pool_key(**BASE)  # type: ignore[arg-type]


def test_it_is_the_sha256_of_the_sorted_json() -> None:
    payload = {
        "decoding": {"max_new_tokens": 256, "temperature": 0.7, "top_k": 0, "top_p": 0.95},
        "model": "smollm2-135m",
        "prompt_scheme": "direct",
        "seed": 0,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert pool_key(**BASE) == hashlib.sha256(text.encode()).hexdigest()  # type: ignore[arg-type]


def test_it_hashes_configs_independently_of_dict_order() -> None:
    assert config_hash({"a": 1, "b": {"y": 2, "x": 3}}) == config_hash(
        {"b": {"x": 3, "y": 2}, "a": 1}
    )
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_it_hashes_a_dataclass_like_its_dict() -> None:
    config = DecodingConfig(top_k=5)
    assert config_hash(config) == config_hash(dataclasses.asdict(config))
    assert len(config_hash(config)) == 64


def test_it_keeps_pool_keys_when_decoding_options_are_added() -> None:
    # A key computed from the original four fields stays the key of the same pool.
    legacy = {"temperature": 0.7, "top_p": 1.0, "top_k": 0, "max_new_tokens": 256}
    assert DecodingConfig(temperature=0.7).key_fields() == legacy
    assert pool_key("m", "direct", DecodingConfig(temperature=0.7), 0) != pool_key(
        "m", "direct", DecodingConfig(temperature=0.7, min_p=0.05), 0
    )


def test_it_rejects_other_objects() -> None:
    with pytest.raises(TypeError):
        config_hash(42)
    with pytest.raises(TypeError):
        config_hash(DecodingConfig)
