"""The prompting registry entries: names and frozen, serialisable default configs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from strategies.prompting.entries import ENTRIES
from strategies.types import Problem

NAMES = {
    "direct",
    "chain_of_thought",
    "few_shot",
    "verbalized",
    "plansearch",
    "refine",
    "deepening",
    "sequential",
    "generated_tests",
}


def test_it_registers_the_prompting_schemes() -> None:
    assert {entry.name for entry in ENTRIES} == NAMES
    assert all(entry.kind == "prompting" and entry.description for entry in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_it_has_frozen_serialisable_default_configs(entry: object) -> None:
    config = entry.config_class()  # type: ignore[attr-defined]
    assert entry.config_class.__dataclass_params__.frozen  # type: ignore[attr-defined]
    json.dumps(dataclasses.asdict(config), sort_keys=True)


@pytest.mark.parametrize("name", ["direct", "chain_of_thought", "few_shot"])
def test_it_renders_with_the_registered_builders(name: str) -> None:
    entry = next(e for e in ENTRIES if e.name == name)
    prompt = entry.function(Problem(prompt="What is 3 + 4?", answer="7"), entry.config_class())
    assert "What is 3 + 4?" in prompt
