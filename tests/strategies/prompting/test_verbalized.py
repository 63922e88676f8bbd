"""Verbalized Sampling: prompts, the parse -> repair -> select pipeline, and pooling (§5)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from strategies.prompting.verbalized import (
    VerbalizedConfig,
    VerbalizedItem,
    argmax_verbalized,
    parse_verbalized,
    render_verbalized,
    sample_verbalized,
    verbalized_pool,
)
from strategies.prompting.verbalized_parse import extract_raw_items, repair_weight
from strategies.types import Problem
from tests.strategies.prompting.doubles import Call, ScriptedGenerator

NO_FLOOR = VerbalizedConfig(tau=0.0)


def texts(items: list[VerbalizedItem]) -> list[str]:
    return [item.text for item in items]


def probs(items: list[VerbalizedItem]) -> list[float]:
    return [round(item.probability, 6) for item in items]


def test_it_renders_the_standard_and_tail_prompts() -> None:
    problem = Problem(prompt="Tell me a joke about cats.", answer=None)
    standard = render_verbalized(problem, VerbalizedConfig(k=4))
    assert "4 different responses" in standard
    assert '"responses"' in standard and '"probability"' in standard
    assert standard.endswith("Tell me a joke about cats.")
    assert "tails" not in standard
    tail = render_verbalized(problem, VerbalizedConfig(tail=True, p_max=0.05))
    assert "below 0.05" in tail


def test_it_parses_fenced_json() -> None:
    reply = (
        'Here you go:\n```json\n{"responses": [{"text": "a", "probability": 0.5},'
        ' {"text": "b", "probability": 0.3}, {"text": "c", "probability": 0.2}]}\n```\nDone.'
    )
    items = parse_verbalized(reply, NO_FLOOR)
    assert texts(items) == ["a", "b", "c"]
    assert probs(items) == [0.5, 0.3, 0.2]


def test_it_removes_trailing_commas() -> None:
    reply = (
        '{"responses": [{"text": "a", "probability": 0.6,}, {"text": "b", "probability": 0.4},],}'
    )
    assert texts(parse_verbalized(reply)) == ["a", "b"]


def test_it_repairs_percentages_and_numeric_strings() -> None:
    reply = (
        '{"responses": [{"text": "a", "probability": "20%"}, {"text": "b", "probability": "0.5"},'
        ' {"text": "c", "probability": " 30 % "}]}'
    )
    assert dict(extract_raw_items(reply)) == {"a": "20%", "b": "0.5", "c": " 30 % "}
    items = parse_verbalized(reply, NO_FLOOR)
    assert texts(items) == ["b", "c", "a"]
    assert probs(items) == [0.5, 0.3, 0.2]


@pytest.mark.parametrize(
    ("raw", "weight"),
    [
        ("70%", 0.7),
        ("0.25", 0.25),
        (0.4, 0.4),
        (1, 1.0),
        (1.7, 1.0),
        (-0.3, 0.0),
        ("150%", 1.0),
        (float("nan"), 0.0),
        (float("inf"), 0.0),
        ("NaN", 0.0),
        ("-inf", 0.0),
        ("about a third", 0.0),
        (None, 0.0),
        (True, 0.0),
        ([0.5], 0.0),
    ],
)
def test_it_repairs_weights(raw: object, weight: float) -> None:
    assert repair_weight(raw) == pytest.approx(weight)


def test_it_zeroes_nan_and_infinite_weights_from_json() -> None:
    reply = (
        '{"responses": [{"text": "a", "probability": NaN}, {"text": "b", "probability": Infinity},'
        ' {"text": "c", "probability": 0.5}, {"text": "d", "probability": "garbage"}]}'
    )
    items = parse_verbalized(reply, VerbalizedConfig(tau=0.0))
    assert dict(zip(texts(items), probs(items), strict=True)) == {
        "c": 1.0,
        "a": 0.0,
        "b": 0.0,
        "d": 0.0,
    }


def test_it_accepts_response_as_an_alias_for_text() -> None:
    reply = (
        '{"responses": [{"response": "x", "probability": 0.7}, {"text": "y", "probability": 0.3}]}'
    )
    assert texts(parse_verbalized(reply)) == ["x", "y"]


def test_it_reads_a_bare_list_and_other_list_keys() -> None:
    assert texts(parse_verbalized('[{"text": "p", "probability": 1}]')) == ["p"]
    assert texts(parse_verbalized('{"items": [{"text": "q", "probability": 1}]}')) == ["q"]


def test_it_falls_back_to_xml() -> None:
    reply = (
        "<responses>\n<response><text>first</text><probability>0.6</probability></response>\n"
        "<response><text>second</text><probability>40%</probability></response>\n</responses>"
    )
    items = parse_verbalized(reply, NO_FLOOR)
    assert texts(items) == ["first", "second"]
    assert probs(items) == [0.6, 0.4]


def test_it_turns_total_garbage_into_a_single_item() -> None:
    items = parse_verbalized("I'd rather tell you a story {about : dragons")
    assert items == [VerbalizedItem("I'd rather tell you a story {about : dragons", 1.0)]
    assert parse_verbalized("   ") == []


def test_it_merges_duplicates_and_drops_empty_texts() -> None:
    reply = (
        '{"responses": [{"text": "a", "probability": 0.2}, {"text": "", "probability": 0.5},'
        ' {"text": "b", "probability": 0.3}, {"text": " a ", "probability": 0.3},'
        ' {"text": "   ", "probability": 0.9}]}'
    )
    items = parse_verbalized(reply, NO_FLOOR)
    assert texts(items) == ["a", "b"]
    assert probs(items) == [0.625, 0.375]


def test_it_accepts_fewer_than_k_items_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    reply = '{"responses": [{"text": "a", "probability": 0.9}, {"text": "b", "probability": 0.1}]}'
    with caplog.at_level(logging.INFO, logger="strategies.prompting.verbalized"):
        items = parse_verbalized(reply, VerbalizedConfig(k=5))
    assert texts(items) == ["a", "b"]
    assert "fewer than k=5" in caplog.text


def test_it_applies_the_floor() -> None:
    weights = [0.4, 0.3, 0.2, 0.05, 0.05]
    reply = str({"responses": [{"text": f"r{i}", "probability": w} for i, w in enumerate(weights)]})
    items = parse_verbalized(reply.replace("'", '"'))
    assert texts(items) == ["r0", "r1", "r2"]
    assert probs(items) == [round(w / 0.9, 6) for w in weights[:3]]


def test_it_relaxes_the_floor_to_min_k_survivors() -> None:
    weights = [0.05, 0.5, 0.1, 0.1, 0.02]
    reply = str({"responses": [{"text": f"r{i}", "probability": w} for i, w in enumerate(weights)]})
    items = parse_verbalized(reply.replace("'", '"'))  # only r1 clears tau = 0.12
    assert texts(items) == ["r1", "r2", "r3"]  # the top 3, ties in original order
    assert probs(items) == [round(0.5 / 0.7, 6), round(0.1 / 0.7, 6), round(0.1 / 0.7, 6)]
    four = parse_verbalized(reply.replace("'", '"'), VerbalizedConfig(min_k_survivors=4))
    assert texts(four) == ["r1", "r2", "r3", "r0"]


def test_it_normalises_in_each_weight_mode() -> None:
    reply = '{"responses": [{"text": "a", "probability": 0.2}, {"text": "b", "probability": 0.6}]}'
    assert probs(parse_verbalized(reply, VerbalizedConfig(tau=0))) == [0.75, 0.25]
    uniform = parse_verbalized(reply, VerbalizedConfig(tau=0, weight_mode="uniform"))
    assert texts(uniform) == ["a", "b"] and probs(uniform) == [0.5, 0.5]  # stable on ties
    softmax = parse_verbalized(reply, VerbalizedConfig(tau=0, weight_mode="softmax"))
    expected = math.exp(0.6) / (math.exp(0.2) + math.exp(0.6))
    assert texts(softmax) == ["b", "a"]
    assert probs(softmax) == [round(expected, 6), round(1 - expected, 6)]


def test_it_falls_back_to_uniform_when_elicited_weights_sum_to_zero() -> None:
    reply = (
        '{"responses": [{"text": "a", "probability": 0}, {"text": "b"},'
        ' {"text": "c", "probability": "?"}]}'
    )
    items = parse_verbalized(reply)
    assert texts(items) == ["a", "b", "c"]
    assert probs(items) == [round(1 / 3, 6)] * 3


def test_it_samples_by_probability_and_takes_the_argmax() -> None:
    items = [VerbalizedItem("a", 0.7), VerbalizedItem("b", 0.2), VerbalizedItem("c", 0.1)]
    rng = np.random.default_rng(0)
    draws = [sample_verbalized(items, rng).text for _ in range(4000)]
    assert draws.count("a") / 4000 == pytest.approx(0.7, abs=0.03)
    assert draws.count("c") / 4000 == pytest.approx(0.1, abs=0.02)
    again = [sample_verbalized(items, np.random.default_rng(5)).text for _ in range(3)]
    assert len(set(again)) == 1  # same seed, same draw
    assert argmax_verbalized(items).text == "a"
    assert argmax_verbalized([VerbalizedItem("x", 0.5), VerbalizedItem("y", 0.5)]).text == "x"
    with pytest.raises(ValueError):
        sample_verbalized([], rng)


def _vs_reply(prompt: str, index: int, call: Call) -> str:
    items = [{"text": f"call{index}-item{j}", "probability": 0.2} for j in range(5)]
    return str({"responses": items}).replace("'", '"')


def test_it_pools_ceil_n_over_k_calls_in_one_request() -> None:
    generator = ScriptedGenerator(_vs_reply, tokens=lambda text, call: 50)
    config = VerbalizedConfig(k=5, pool_mode="items", temperature=0.8, max_new_tokens=300)
    pool = verbalized_pool(generator, "Name a fruit.", 12, config, seed=3)
    assert len(generator.calls) == 1
    call = generator.calls[0]
    assert (call.n, call.temperature, call.max_new_tokens, call.seed) == (3, 0.8, 300, 3)
    assert len(call.prompts) == 1 and call.prompts[0].endswith("Name a fruit.")
    assert [c.text for c in pool] == [f"call{i}-item{j}" for i in range(3) for j in range(5)][:12]
    assert all(c.score == pytest.approx(0.2) for c in pool)
    assert sum(c.generated_tokens for c in pool) == 150  # every token is accounted for
    assert sum(c.prompt_tokens for c in pool) == generator.spent()[0]


def test_it_draws_exactly_n_from_the_pooled_distribution() -> None:
    generator = ScriptedGenerator(_vs_reply, tokens=lambda text, call: 10)
    pool = verbalized_pool(generator, "Name a fruit.", 7, VerbalizedConfig(k=3), seed=1)
    assert generator.calls[0].n == 3
    assert len(pool) == 7
    assert sum(c.generated_tokens for c in pool) == 30
    again = verbalized_pool(
        ScriptedGenerator(_vs_reply, tokens=lambda t, c: 10),
        "Name a fruit.",
        7,
        VerbalizedConfig(k=3),
        seed=1,
    )
    assert [c.text for c in again] == [c.text for c in pool]
    with pytest.raises(ValueError, match="n must"):
        verbalized_pool(generator, "x", 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 0}, "k"),
        ({"tau": 1.5}, "tau"),
        ({"min_k_survivors": 0}, "min_k_survivors"),
        ({"weight_mode": "raw"}, "weight_mode"),
        ({"pool_mode": "all"}, "pool_mode"),
        ({"p_max": 0}, "p_max"),
        ({"temperature": -1}, "temperature"),
    ],
)
def test_it_rejects_a_bad_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VerbalizedConfig(**kwargs)  # type: ignore[arg-type]
