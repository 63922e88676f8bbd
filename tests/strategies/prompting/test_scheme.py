"""The uniform prompting-scheme interface and its registry."""

from __future__ import annotations

import pytest

from strategies import registry
from strategies.prompting.entries import ENTRIES, SCHEMES, get_scheme, scheme_names
from strategies.prompting.refine import RefineConfig
from strategies.prompting.scheme import Scheme
from strategies.prompting.sequential import SequentialConfig
from strategies.types import Candidate, Problem
from strategies.verify.code import CODE_COMPLETION_STOPS, TEST_COMPLETION_STOPS
from tests.strategies.prompting.doubles import ScriptedGenerator

PROBLEM = Problem(prompt="What is 3 + 4?", answer="7")


def echo(prompt: str, index: int, call: object) -> str:
    return f"The answer is {index}."


def test_it_registers_every_scheme_once_under_its_name() -> None:
    assert all(name == scheme.name for name, scheme in SCHEMES.items())
    assert set(SCHEMES) == set(registry.names("prompting"))
    assert [entry.name for entry in ENTRIES] == list(SCHEMES)
    for entry in ENTRIES:
        assert registry.get(entry.name) == entry == SCHEMES[entry.name].entry()


def test_it_names_the_valid_schemes_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match="unknown prompting scheme 'nope'.*chain_of_thought"):
        get_scheme("nope")


def test_it_tells_single_call_from_multi_call_schemes() -> None:
    assert scheme_names(single_call=True) == (
        "direct", "chain_of_thought", "few_shot", "generated_tests"
    )
    assert set(scheme_names(single_call=False)) == {
        "verbalized", "deepening", "refine", "sequential", "plansearch"
    }
    assert all((s.runner is None) == s.single_call for s in SCHEMES.values())


def test_it_offers_every_scheme_but_the_test_prompt_in_the_form() -> None:
    assert scheme_names(selectable=True) == (
        "direct", "chain_of_thought", "few_shot", "verbalized", "deepening", "refine",
        "sequential", "plansearch",
    )


def test_it_knows_which_stops_and_scores_apply() -> None:
    assert get_scheme("direct").completion_stops == CODE_COMPLETION_STOPS
    assert get_scheme("generated_tests").completion_stops == TEST_COMPLETION_STOPS
    others = set(SCHEMES) - {"direct", "generated_tests"}
    assert all(SCHEMES[name].completion_stops == () for name in others)
    assert [name for name, s in SCHEMES.items() if s.self_eval_scores] == ["refine"]


def test_it_refuses_a_scheme_that_is_both_or_neither() -> None:
    direct = get_scheme("direct")
    with pytest.raises(ValueError, match="runner"):
        Scheme(name="x", description="x", config_class=direct.config_class,
               function=direct.function, single_call=False)
    with pytest.raises(ValueError, match="runner"):
        Scheme(name="x", description="x", config_class=direct.config_class,
               function=direct.function, single_call=True,
               runner=get_scheme("refine").runner)


def test_it_splits_extra_settings_from_the_config() -> None:
    config, extras = get_scheme("sequential").user_config({"max_rounds": 3, "budget_tokens": 9})
    assert config == SequentialConfig(max_rounds=3) and extras == {"budget_tokens": 9}
    assert get_scheme("direct").user_config() == (get_scheme("direct").config_class(), {})
    # JSON lists become the config's tuples.
    plansearch = get_scheme("plansearch").config({"parse_temperatures": [0.0, 0.5]})
    assert plansearch.parse_temperatures == (0.0, 0.5)


def test_it_names_the_valid_settings_of_an_unknown_one() -> None:
    with pytest.raises(ValueError, match="valid settings: budget_tokens, max_new_tokens"):
        get_scheme("sequential").user_config({"rounds": 2})
    with pytest.raises(ValueError, match="direct: .*valid settings: none"):
        get_scheme("direct").user_config({"budget_tokens": 5})
    with pytest.raises(ValueError, match="iterations"):
        get_scheme("refine").config({"iterations": -1})


def test_it_fills_extra_settings_from_the_experiment() -> None:
    sequential = get_scheme("sequential")
    assert sequential.with_defaults({"max_rounds": 3}, n=4, max_new_tokens=16) == {
        "max_rounds": 3, "budget_tokens": 64
    }
    assert sequential.with_defaults({"budget_tokens": 20}, n=4, max_new_tokens=16) == {
        "budget_tokens": 20
    }
    assert get_scheme("direct").with_defaults({}, n=4, max_new_tokens=16) == {}


@pytest.mark.parametrize(
    ("name", "config", "n", "size"),
    [
        ("direct", {}, 8, 8),
        ("verbalized", {}, 8, 8),
        ("refine", {"n": 2, "iterations": 1}, 8, 4),
        ("refine", {"n": 2, "iterations": 1}, 3, 3),
        ("sequential", {"max_rounds": 3, "budget_tokens": 99}, 8, 3),
        ("plansearch", {"max_plans": 5}, 8, 5),
        ("plansearch", {}, 8, 8),
    ],
)
def test_it_says_how_many_samples_a_pool_yields(
    name: str, config: dict[str, int], n: int, size: int
) -> None:
    scheme = get_scheme(name)
    assert scheme.pool_size(n, scheme.config(config)) == size


@pytest.mark.parametrize("name", scheme_names(single_call=True))
def test_it_renders_single_call_schemes_with_their_function(name: str) -> None:
    scheme = get_scheme(name)
    config = scheme.config()
    assert scheme.render(PROBLEM, config) == scheme.function(PROBLEM, config)


def test_it_has_no_single_prompt_for_a_multi_call_scheme() -> None:
    with pytest.raises(ValueError, match="several calls"):
        get_scheme("refine").render(PROBLEM, RefineConfig())


def test_it_runs_a_single_call_scheme_as_one_generator_call() -> None:
    generator = ScriptedGenerator(echo)
    scheme = get_scheme("chain_of_thought")
    out = scheme.run(generator, PROBLEM, 3, scheme.config(), seed=5, max_new_tokens=8,
                     temperature=0.7)
    [call] = generator.calls
    assert call.prompts == (scheme.render(PROBLEM, scheme.config()),)
    assert (call.n, call.temperature, call.max_new_tokens, call.seed) == (3, 0.7, 8, 5)
    assert [c.text for c in out] == [f"The answer is {i}." for i in range(3)]


def test_it_runs_sequential_revision_on_the_budget_in_its_extras() -> None:
    generator = ScriptedGenerator(echo, tokens=lambda text, call: 4)
    scheme = get_scheme("sequential")
    config, extras = scheme.user_config({"max_rounds": 8, "budget_tokens": 10})
    out = scheme.run(generator, PROBLEM, 5, config, seed=0, max_new_tokens=6, extras=extras)
    # Calls of at most 6 tokens until 10 are spent: 4 + 4 + 4 (the last capped at 2).
    assert len(out) == 3
    assert [call.max_new_tokens for call in generator.calls] == [6, 6, 2]
    with pytest.raises(ValueError, match="integer budget_tokens"):
        scheme.run(generator, PROBLEM, 5, config, seed=0, max_new_tokens=6)


def test_it_caps_a_sequential_chain_at_n() -> None:
    generator = ScriptedGenerator(echo, tokens=lambda text, call: 1)
    scheme = get_scheme("sequential")
    out = scheme.run(generator, PROBLEM, 2, SequentialConfig(), seed=0, max_new_tokens=6,
                     extras={"budget_tokens": 100})
    assert len(out) == 2 and len(generator.calls) == 2


def test_it_scores_refinement_with_the_scorer_and_runs_every_iteration() -> None:
    generator = ScriptedGenerator(echo)
    scheme = get_scheme("refine")
    seen: list[str] = []

    def scorer(candidate: Candidate) -> float:
        seen.append(candidate.text)
        return 1.0  # r_max would stop here; a pool runs every iteration

    config = scheme.config({"n": 2, "iterations": 2})
    out = scheme.run(generator, PROBLEM, 5, config, seed=0, max_new_tokens=8, scorer=scorer)
    assert len(generator.calls) == 3 and len(seen) == 6
    assert len(out) == 5 and all(c.score == 1.0 for c in out)
    with pytest.raises(ValueError, match="scorer"):
        scheme.run(generator, PROBLEM, 5, config, seed=0, max_new_tokens=8)


def test_it_returns_one_candidate_per_deepening_chain_with_its_tokens() -> None:
    generator = ScriptedGenerator(echo, tokens=lambda text, call: 3)
    scheme = get_scheme("deepening")
    out = scheme.run(generator, PROBLEM, 2, scheme.config({"rounds": 2}), seed=0,
                     max_new_tokens=8)
    assert len(out) == 2
    assert all(c.generated_tokens == 9 and c.score is None for c in out)


def test_it_keeps_verbalized_probabilities_as_scores() -> None:
    reply = '{"responses": [{"text": "7", "probability": 0.6}, {"text": "8", "probability": 0.4}]}'
    generator = ScriptedGenerator(lambda prompt, index, call: reply)
    scheme = get_scheme("verbalized")
    out = scheme.run(generator, PROBLEM, 4, scheme.config({"k": 2, "pool_mode": "items"}),
                     seed=0, max_new_tokens=8)
    assert [c.text for c in out] == ["7", "8", "7", "8"]
    assert all(c.score is not None for c in out)
