"""Stable hashes of configs: the keys that let sample pools be found again and reused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from strategies.sampling.decoding import DecodingConfig

__all__ = ["config_hash", "pool_key"]


def _as_dict(cfg: object) -> dict[str, Any]:
    """Return ``cfg`` as a plain dict (a dataclass instance via ``asdict``, or a mapping)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise TypeError(f"expected a dataclass instance or a mapping, got {type(cfg).__name__}")


def _sha256_of_json(value: object) -> str:
    """Return the sha256 hex digest of ``value`` as canonical (sorted, compact) JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(cfg: object) -> str:
    """Return the sha256 hex digest of a config's sorted, compact JSON.

    ``cfg`` is a dataclass instance (serialised with ``dataclasses.asdict``) or a plain
    mapping; key order never changes the hash.

    >>> config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})
    True
    """
    return _sha256_of_json(_as_dict(cfg))


def pool_key(model: str, prompt_scheme: str, decoding: DecodingConfig, seed: int) -> str:
    """Return the key of a sample pool: sha256 of the sorted JSON of exactly these four values.

    The number of samples N is deliberately not part of the key: a pool grows when a
    later run asks for more samples with the same model, prompt scheme, decoding and seed,
    and the first N samples of a larger pool are exactly a smaller pool.

    >>> a = pool_key("smollm-135m", "direct", DecodingConfig(temperature=0.7), 0)
    >>> a == pool_key("smollm-135m", "direct", DecodingConfig(temperature=0.7), 0)
    True
    >>> a == pool_key("smollm-135m", "direct", DecodingConfig(temperature=0.7), 1)
    False
    """
    payload = {
        "model": model,
        "prompt_scheme": prompt_scheme,
        # Only non-default settings (beyond the original four) identify a pool, so
        # adding a decoding option never changes the keys of existing pools.
        "decoding": decoding.key_fields(),
        "seed": seed,
    }
    return _sha256_of_json(payload)
