"""The JSON experiment spec is checked by the new-experiment form's rules, and every
error names its place in the JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment import form_data
from tests.webapp.experiments.test_new_saved_dataset import saved
from webapp.experiments.models import Experiment, SamplePool
from webapp.experiments.services import submit_experiment
from webapp.experiments.spec_json import SpecError, parse_spec

pytestmark = pytest.mark.django_db

SPEC: dict[str, Any] = {
    "name": "Sweep",
    "model": "smollm2-135m-instruct",
    "dataset": {"source": "arithmetic", "size": 5, "seed": 3},
    "n_samples": 4,
    "max_new_tokens": 16,
    "seed": 0,
    "strategies": [
        {"temperature": 0, "top_p": 1, "top_k": 0, "selector": "first"},
        {"temperature": 0.7, "top_p": 0.95, "selector": "majority"},
        {"temperature": 0.7, "top_p": 0.95, "selector": "first"},
    ],
}


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data.update(changes)
    return data


def row(index: int, **changes: Any) -> dict[str, Any]:
    """The spec with strategy ``index`` changed."""
    data = spec()
    data["strategies"][index].update(changes)
    return data


def errors_of(data: Any, team: Any) -> dict[str, list[str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, team=team)
    return caught.value.errors


def stored(experiment: Experiment) -> list[tuple[Any, ...]]:
    return [(s.label, s.prompt_scheme, s.prompt_config, s.temperature, s.top_p, s.top_k,
             s.sampling, s.selector, s.selector_config, s.n, s.pool.key)
            for s in experiment.strategies.select_related("pool").order_by("position")]


def test_a_spec_stores_what_the_same_form_submission_stores(client: Any, owner: Any,
                                                            team: Any) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    form = form_data(team, **{"s-b2-min_p": "0.05", "s-b2-selector": "best_of_majority",
                              "s-b2-sel__alpha": "0.2", "s-c3-prompt_scheme": "chain_of_thought",
                              "verifier": "regex", "verifier__pattern": r"answer is (-?\d+)",
                              "verifier__numeric": "on"})
    assert client.post(reverse("experiment-new"), form).status_code == 302
    by_form = Experiment.objects.get()
    data = spec(verifier="regex", verifier_config={"pattern": r"answer is (-?\d+)"})
    data["strategies"][1].update(sampling={"min_p": 0.05}, selector="best_of_majority",
                                 selector_config={"alpha": 0.2})
    data["strategies"][2].update(prompt_scheme="chain_of_thought")
    by_json = submit_experiment(team, owner, parse_spec(data, team=team))
    assert stored(by_json) == stored(by_form)
    assert SamplePool.objects.count() == 3  # the same pools, reused
    for field in ("dataset_id", "n_samples", "max_new_tokens", "seed", "k_values", "verifier",
                  "verifier_config", "self_eval", "subset", "model_name"):
        assert getattr(by_json, field) == getattr(by_form, field), field


def test_left_out_keys_take_the_forms_starting_values(team: Any) -> None:
    parsed = parse_spec({"name": "Short", "dataset": {"source": "arithmetic"},
                         "strategies": [{}]}, team=team)
    assert (parsed.n_samples, parsed.max_new_tokens, parsed.seed) == (8, 32, 0)
    assert parsed.model_name == "smollm2-135m-instruct"
    assert parsed.dataset.problems.count() == 20
    [strategy] = parsed.strategies
    assert (strategy.temperature, strategy.selector, strategy.prompt_scheme) == (
        0.7, "majority", "direct")
    # A checkbox left out of a browser form is False; a boolean left out of JSON is its
    # default (math's symbolic step is on), so nothing differs from the defaults.
    assert parsed.verifier == "math" and parsed.verifier_config == {}
    assert strategy.sampling == {} and strategy.selector_config == {}


def test_it_keeps_labels_and_beam_and_adaptive_decoders(team: Any) -> None:
    data = spec(n_samples=2)
    data["strategies"] = [
        {"label": "beams", "decoder": "beam_search",
         "decoder_config": {"num_beams": 3, "early_stopping": "never"}, "selector": "first"},
        {"decoder": "adaptive_consistency", "decoder_config": {"threshold": 0.9},
         "temperature": 0.7},
    ]
    beams, adaptive = parse_spec(data, team=team).strategies
    assert beams.label == "beams" and beams.decoder == "beam_search"
    assert beams.decoder_config == {"num_beams": 3, "early_stopping": "never"}
    assert adaptive.decoder == "adaptive_consistency"
    assert adaptive.decoder_config == {"threshold": 0.9}


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (row(1, selector="adaptive_consistency", selector_config={"threshold": 0.3}),
         "strategies[1].selector_config.threshold", "threshold must be in (0.5, 1]"),
        (row(2, selector="best_of_majority", selector_config={"alpha": 2}),
         "strategies[2].selector_config.alpha", "alpha"),
        (row(1, top_p=0), "strategies[1].top_p", "top_p"),
        (row(0, temperature="hot"), "strategies[0].temperature", "Expected a number."),
        (row(0, top_k=1.5), "strategies[0].top_k", "Expected an integer."),
        (row(1, selector="no-such"), "strategies[1].selector", "Select a valid choice"),
        (row(2, selector="codet"), "strategies[2].selector", "codet ranks programs"),
        (row(1, sampling={"ead": True}), "strategies[1].temperature", "EAD replaces"),
        (row(1, sampling={"temperature_mix": [0.5, "x"]}),
         "strategies[1].sampling.temperature_mix", "Expected a list of numbers."),
        (row(1, sampling={"min_q": 0.1}), "strategies[1].sampling.min_q", "Unknown field"),
        (row(1, selector_config={"treshold": 1}), "strategies[1].selector_config.treshold",
         "Unknown field; the selector majority takes: none."),
        (row(1, prompt_scheme="verbalized", prompt_config={"k": 0}),
         "strategies[1].prompt_config.k", "k must be"),
        (row(0, decoder="adaptive_consistency"), "strategies[0].decoder", "needs sampling"),
        (row(1, decoder="beam_search", decoder_config={"num_beams": 2}),
         "strategies[1].decoder_config.num_beams", "at least N = 4"),
        (row(1, colour="red"), "strategies[1].colour", "Unknown field"),
        (row(1, label=7), "strategies[1].label", "Expected a string."),
        (row(1, label="a\x00b"), "strategies[1].label", "Null characters"),
        (spec(name="a\x00b"), "name", "Null characters"),
        (spec(strategies=[]), "strategies", "at least one strategy"),
        (spec(strategies=[3]), "strategies[0]", "Expected an object."),
        (spec(strategies=[{}] * 13), "strategies", "At most 12"),
        (spec(n_samples=0), "n_samples", "greater than or equal to 1"),
        (spec(n_samples="4"), "n_samples", "Expected an integer."),
        (spec(name=""), "name", "required"),
        (spec(model="gpt-9"), "model", "Select a valid choice"),
        (spec(self_eval="yes"), "self_eval", "Expected true or false."),
        (spec(dataset={"source": "nope"}), "dataset.source", "Unknown source"),
        (spec(dataset={"source": "code_upload"}), "dataset.source", "use source saved"),
        (spec(dataset={"source": "arithmetic", "size": 100000}), "dataset.size",
         "less than or equal to 1000"),
        (spec(dataset={"source": "arithmetic", "rows": 3}), "dataset.rows", "Unknown field"),
        (spec(dataset={"source": "prompts", "prompts": ["ok ||| 1", "||| 5"]}),
         "dataset.prompts", "Line 2"),
        (spec(dataset={"source": "saved", "id": 999999}), "dataset.id", "Select a valid choice"),
        (spec(dataset="arithmetic"), "dataset", "Expected an object."),
        (spec(verifier="regex", verifier_config={"pattern": "(unclosed"}),
         "verifier_config.pattern", "pattern"),
        (spec(verifier_config={"lenient": 1}), "verifier_config.lenient",
         "Expected true or false."),
        (spec(verifier="unit_tests"), "verifier", "unit_tests runs a code dataset's tests"),
        (spec(colour="red"), "colour", "Unknown field"),
        ([1, 2], "non_field_errors", "Expected a JSON object."),
    ],
)
def test_it_reports_each_error_at_its_json_path(team: Any, data: Any, path: str,
                                                message: str) -> None:
    errors = errors_of(data, team)
    assert path in errors, errors
    assert any(message in m for m in errors[path]), errors[path]
    assert Experiment.objects.count() == 0


def test_it_reports_every_error_at_once(team: Any) -> None:
    data = row(1, top_p=0)
    data["strategies"][2]["selector_config"] = {"treshold": 1}
    data["n_samples"] = 0
    assert set(errors_of(data, team)) == {
        "strategies[1].top_p", "strategies[2].selector_config.treshold", "n_samples"}


def test_a_saved_dataset_of_another_team_is_not_a_choice(team: Any, stranger: Any) -> None:
    theirs = saved(stranger.memberships.get().team)
    errors = errors_of(spec(dataset={"source": "saved", "id": theirs.pk}), team)
    assert "Select a valid choice" in errors["dataset.id"][0]


def test_a_saved_dataset_takes_a_subset(team: Any) -> None:
    dataset = saved(team)
    data = spec(dataset={"source": "saved", "id": dataset.pk,
                         "subset": {"mode": "ids", "ids": ["q5", "q1"]}})
    parsed = parse_spec(data, team=team)
    assert parsed.dataset == dataset and parsed.verifier == "choice"
    assert parsed.subset == {"mode": "ids", "ids": ["q5", "q1"]}
    errors = errors_of(spec(dataset={"source": "saved", "id": dataset.pk,
                                     "subset": {"mode": "first", "k": 50}}), team)
    assert errors["dataset.subset.k"] == ["Quiz has 6 problems; cannot take 50."]


def test_the_readme_example_spec_is_valid(team: Any) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("## API"):]
    start = section.index("```json\n") + len("```json\n")
    example = json.loads(section[start:section.index("```", start)])
    assert example["team"] == team.slug
    parsed = parse_spec(example, team=team)
    assert [s.label for s in parsed.strategies] == ["greedy", "vote", "min-p + BoM"]
    assert parsed.strategies[2].selector_config == {"k": 4}
