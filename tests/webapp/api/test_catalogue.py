"""The strategy catalogue lists every registered algorithm with its config fields, and
its bounds agree with the configs' own validation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from strategies import registry
from strategies.sampling import DecodingConfig
from tests.webapp.api.conftest import token_client
from webapp.api.catalogue import catalogue
from webapp.experiments.config_forms import config_fields

GROUPS = {"samplers": "sampler", "schemes": "prompting", "verifiers": "verifier",
          "selectors": "selector"}


def by_name(group: str) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in catalogue()[group]}


@pytest.mark.django_db
def test_the_endpoint_serves_the_catalogue(owner: Any) -> None:
    body = token_client(owner).get("/api/v1/catalogue/").json()
    assert set(body) == {"samplers", "decoding", "decoders", "schemes", "verifiers",
                         "selectors"}
    assert body["selectors"] == catalogue()["selectors"]


@pytest.mark.parametrize(("group", "kind"), GROUPS.items())
def test_it_lists_every_registered_entry_with_all_its_fields(group: str, kind: str) -> None:
    entries = by_name(group)
    assert set(entries) == set(registry.names(kind))
    for name, entry in entries.items():
        config_class = registry.get(name).config_class
        fields = [f.name for f in dataclasses.fields(config_class)]
        assert [f["name"] for f in entry["fields"]] == fields
        settable = {f["name"] for f in entry["fields"] if f["settable"]}
        if name not in ("beam_search", "diverse_beam_search"):
            assert settable == set(config_fields(config_class)), name


def test_types_and_defaults_come_from_the_dataclass() -> None:
    majority = {f["name"]: f for f in by_name("selectors")["weighted_majority"]["fields"]}
    assert majority["weight"]["type"] == "choice"
    assert majority["weight"]["choices"] == ["mean_logprob", "sum_logprob", "score"]
    bom = {f["name"]: f for f in by_name("selectors")["best_of_majority"]["fields"]}
    assert bom["alpha"]["nullable"] and bom["alpha"]["default"] is None
    mix = {f["name"]: f for f in catalogue()["decoding"]["fields"]}["temperature_mix"]
    assert mix["type"] == "array" and mix["items"] == {"type": "number"}
    beams = {f["name"]: f for f in by_name("decoders")["beam_search"]["fields"]}
    assert beams["early_stopping"]["choices"] == [False, True, "never"]
    assert not beams["num_return_sequences"]["settable"]


def test_bounds_say_what_the_configs_accept() -> None:
    decoding = {f["name"]: f for f in catalogue()["decoding"]["fields"]}
    assert (decoding["top_p"]["exclusiveMinimum"], decoding["top_p"]["maximum"]) == (0.0, 1.0)
    assert decoding["top_k"]["minimum"] == 0 and "maximum" not in decoding["top_k"]
    adaptive = {f["name"]: f for f in by_name("decoders")["adaptive_consistency"]["fields"]}
    assert (adaptive["threshold"]["exclusiveMinimum"], adaptive["threshold"]["maximum"]) == (
        0.5, 1.0)
    codet = {f["name"]: f for f in by_name("selectors")["codet"]["fields"]}
    assert (codet["test_samples"]["minimum"], codet["test_samples"]["maximum"]) == (1, 100)
    # EAD's settings apply only with ead on: no bounds on their own.
    assert not {"minimum", "exclusiveMinimum"} & set(decoding["ead_decay"])


def _classes() -> list[tuple[str, type, list[dict[str, Any]]]]:
    out = [("decoding", DecodingConfig, catalogue()["decoding"]["fields"])]
    for group in GROUPS:
        for entry in catalogue()[group]:
            out.append((entry["name"], registry.get(entry["name"]).config_class,
                        entry["fields"]))
    return out


def accepts(config_class: type, name: str, value: Any) -> bool:
    try:
        config_class(**{name: value})
    except (TypeError, ValueError):
        return False
    return True


def test_every_bound_is_the_edge_of_what_validation_accepts() -> None:
    checked = 0
    for _, config_class, fields in _classes():
        for field in fields:
            name, integer = field["name"], field["type"] == "integer"
            step_down = (lambda v: v - 1) if integer else (lambda v: math.nextafter(v, -math.inf))
            step_up = (lambda v: v + 1) if integer else (lambda v: math.nextafter(v, math.inf))
            if "minimum" in field:
                assert accepts(config_class, name, field["minimum"]), (config_class, name)
                assert not accepts(config_class, name, step_down(field["minimum"]))
                checked += 1
            if "maximum" in field:
                assert accepts(config_class, name, field["maximum"]), (config_class, name)
                assert not accepts(config_class, name, step_up(field["maximum"]))
                checked += 1
            if "exclusiveMinimum" in field:
                assert not accepts(config_class, name, field["exclusiveMinimum"])
                assert accepts(config_class, name, step_up(field["exclusiveMinimum"]))
                checked += 1
            if "exclusiveMaximum" in field:
                assert not accepts(config_class, name, field["exclusiveMaximum"])
                assert accepts(config_class, name, step_down(field["exclusiveMaximum"]))
                checked += 1
    assert checked > 60
