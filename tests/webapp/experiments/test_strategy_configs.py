"""Strategy rows built from the registered configs: fields, validation, storage."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment import form_data
from webapp.experiments.models import Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, owner):  # type: ignore[no-untyped-def]
    assert client.login(username=owner.username, password=PASSWORD)
    return client


def row_fragment(client: Any, **params: str) -> str:
    response = client.get(reverse("experiment-strategy-row"),
                          {"row": "ab12", **params}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_it_offers_every_registered_selector_and_scheme(logged_in: Any) -> None:
    from strategies import registry

    body = row_fragment(logged_in)
    for name in registry.names("selector"):
        assert f'<option value="{name}"' in body, name
    assert "(code datasets)" in body  # CodeT and B4 say what they need
    for name in ("direct", "chain_of_thought", "few_shot", "verbalized", "deepening", "refine",
                 "sequential", "plansearch"):
        assert f'<option value="{name}"' in body


def test_it_swaps_in_the_chosen_selectors_config_fields(logged_in: Any) -> None:
    body = row_fragment(logged_in, **{"s-ab12-selector": "best_of_majority",
                                      "s-ab12-temperature": "0.9"})
    assert body.lstrip().startswith('<fieldset class="strategy-row" id="strategy-row-ab12"')
    assert 'name="s-ab12-sel__alpha"' in body and 'name="s-ab12-sel__aggregation"' in body
    assert 'value="0.9"' in body  # the row keeps what the user typed
    body = row_fragment(logged_in, **{"s-ab12-selector": "mbr"})
    assert 'name="s-ab12-sel__similarity"' in body and "sel__alpha" not in body


def test_it_swaps_in_the_prompting_schemes_config_fields(logged_in: Any) -> None:
    body = row_fragment(logged_in, **{"s-ab12-prompt_scheme": "verbalized"})
    assert 'name="s-ab12-scheme__k"' in body and 'name="s-ab12-scheme__tau"' in body


def test_it_serves_the_verifiers_config_fields(logged_in: Any) -> None:
    body = logged_in.get(reverse("experiment-verifier-fields"), {"verifier": "regex"},
                         HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<div id="verifier-config"')
    assert 'name="verifier__pattern"' in body


def test_it_stores_sampling_selector_and_scheme_configs(logged_in: Any, team: Any) -> None:
    data = form_data(team, **{
        "s-b2-min_p": "0.05", "s-b2-selector": "best_of_majority", "s-b2-sel__alpha": "0.2",
        "s-c3-prompt_scheme": "chain_of_thought", "s-c3-selector": "rpc",
        "verifier": "regex", "verifier__pattern": r"answer is (-?\d+)", "verifier__numeric": "on",
        "self_eval": "on",
    })
    response = logged_in.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    experiment = Experiment.objects.get()
    greedy, bom, rpc = experiment.strategies.order_by("position")
    assert bom.sampling == {"min_p": 0.05}
    assert bom.selector == "best_of_majority" and bom.selector_config == {"alpha": 0.2}
    assert bom.pool.decoding["min_p"] == 0.05
    assert rpc.prompt_scheme == "chain_of_thought" and rpc.pool_id != bom.pool_id
    assert experiment.verifier == "regex"
    assert experiment.verifier_config == {"pattern": r"answer is (-?\d+)"}
    assert experiment.self_eval


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s-b2-selector": "best_of_majority", "s-b2-sel__alpha": "2"}, "alpha"),
        ({"s-b2-ead": "on", "s-b2-temperature": "0.7"}, "EAD"),
        ({"s-b2-temperature_mix": "0.5, x"}, "numbers separated by commas"),
        ({"verifier": "regex", "verifier__pattern": "(unclosed"}, "pattern"),
        ({"s-b2-prompt_scheme": "verbalized", "s-b2-scheme__k": "0"}, "k must be"),
    ],
)
def test_it_reports_invalid_configs_as_field_errors(
    logged_in: Any, team: Any, overrides: dict[str, str], message: str
) -> None:
    response = logged_in.post(reverse("experiment-new"), form_data(team, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Experiment.objects.count() == 0


def test_it_stores_an_adaptive_stopping_row(logged_in: Any, team: Any) -> None:
    data = form_data(team, **{"s-b2-decoder": "adaptive_consistency",
                              "s-b2-adapt__threshold": "0.9"})
    response = logged_in.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    row = Experiment.objects.get().strategies.get(position=1)
    assert row.pool.decoder == {"name": "adaptive_consistency", "config": {"threshold": 0.9}}
    assert "adaptive stop" in row.label


def test_it_refuses_adaptive_stopping_for_greedy_rows(logged_in: Any, team: Any) -> None:
    data = form_data(team, **{"s-a1-decoder": "adaptive_consistency"})
    response = logged_in.post(reverse("experiment-new"), data)
    assert response.status_code == 400
    assert "needs sampling" in response.content.decode()
