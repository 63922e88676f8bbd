"""The verifier registry entries: names, frozen configs, and the uniform call shape."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from strategies.verify.entries import ENTRIES
from strategies.verify.result import VerifierResult

UNIFORM = {"math", "exact", "regex", "choice"}


def test_it_registers_the_verifiers() -> None:
    assert {entry.name for entry in ENTRIES} == UNIFORM | {"self_eval", "judge", "unit_tests"}
    assert all(entry.kind == "verifier" and entry.description for entry in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_it_has_frozen_hashable_default_configs(entry: object) -> None:
    config = entry.config_class()  # type: ignore[attr-defined]
    assert dataclasses.is_dataclass(config) and not isinstance(config, type)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config, dataclasses.fields(config)[0].name, None)
    text = json.dumps(dataclasses.asdict(config), sort_keys=True)
    assert len(hashlib.sha256(text.encode()).hexdigest()) == 64


@pytest.mark.parametrize(
    ("name", "text", "reference"),
    [
        ("math", "2 + 2 = 4. The answer is 4.", "4"),
        ("exact", "Paris", "paris"),
        ("regex", "The answer is 4.", "4"),
        ("choice", "The answer is (B).", "B"),
    ],
)
def test_it_calls_every_uniform_verifier_the_same_way(name: str, text: str, reference: str) -> None:
    entry = next(e for e in ENTRIES if e.name == name)
    result = entry.function(text, reference, entry.config_class())
    assert isinstance(result, VerifierResult)
    assert result.passed is True and result.score == 1.0 and result.detail
