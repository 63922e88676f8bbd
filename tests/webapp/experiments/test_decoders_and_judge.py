"""Beam decoders, sequential revision and the model judge in the new-experiment form."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment import form_data
from webapp.experiments.models import Experiment
from webapp.experiments.specs import BEAM_DECODERS, SINGLE_CALL_SCHEMES, StrategySpec

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


def post(client: Any, team: Any, **overrides: str) -> Any:
    return client.post(reverse("experiment-new"), form_data(team, **overrides))


def test_it_offers_sampling_and_both_beam_decoders(logged_in: Any) -> None:
    body = row_fragment(logged_in)
    assert 'name="s-ab12-decoder"' in body
    for name in ("sample", *BEAM_DECODERS):
        assert f'<option value="{name}"' in body
    assert 'value="sample" title="sample: draw N samples with the settings of this row" ' \
           'selected' in body
    assert "beam__" not in body


def test_it_swaps_in_the_beam_decoders_config_fields(logged_in: Any) -> None:
    body = row_fragment(logged_in, **{"s-ab12-decoder": "beam_search"})
    assert body.lstrip().startswith('<fieldset class="strategy-row" id="strategy-row-ab12"')
    assert 'name="s-ab12-beam__num_beams"' in body
    assert 'name="s-ab12-beam__length_penalty"' in body
    assert 'name="s-ab12-beam__early_stopping"' in body
    # N and the token cap come from the experiment, not the row.
    assert "num_return_sequences" not in body and "beam__max_new_tokens" not in body
    assert "Deterministic: temperature, top-p" in body
    body = row_fragment(logged_in, **{"s-ab12-decoder": "diverse_beam_search"})
    assert 'name="s-ab12-beam__num_beam_groups"' in body
    assert 'name="s-ab12-beam__diversity_penalty"' in body


def test_it_stores_a_beam_row_in_its_own_pool(logged_in: Any, team: Any) -> None:
    response = post(logged_in, team, **{
        "s-c3-decoder": "beam_search", "s-c3-beam__num_beams": "4",
        "s-c3-beam__length_penalty": "0.5", "s-c3-temperature": "0.3",
        "s-c3-beam__early_stopping": "never",
    })
    assert response.status_code == 302, response.content.decode()[-3000:]
    experiment = Experiment.objects.get()
    _, sampled, beam = experiment.strategies.order_by("position")
    assert beam.n == 4 and beam.pool_id != sampled.pool_id
    assert beam.pool.decoder == {
        "name": "beam_search", "config": {"length_penalty": 0.5, "early_stopping": "never"}
    }
    assert beam.pool.prompt_scheme.startswith("direct|beam_search:")
    assert beam.temperature == 1.0 and beam.sampling == {}  # sampling does not apply
    assert beam.label == "beam search (4 beams) + first"


def test_it_keys_beam_pools_by_their_config_but_not_by_n(team: Any) -> None:
    a = StrategySpec(temperature=1.0, decoder="beam_search", decoder_config={"num_beams": 4})
    b = StrategySpec(temperature=1.0, decoder="beam_search", decoder_config={"num_beams": 6})
    assert a.pool_scheme() != b.pool_scheme() != StrategySpec(temperature=1.0).pool_scheme()
    assert a.for_experiment(2, 8).pool_scheme() == a.for_experiment(4, 8).pool_scheme()
    assert len(StrategySpec(
        temperature=1.0, prompt_scheme="chain_of_thought", prompt_config={"x": 1},
        decoder="diverse_beam_search").pool_scheme()) <= 100


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s-c3-decoder": "beam_search", "s-c3-beam__num_beams": "3"},
         "Num beams must be at least N = 4"),
        ({"s-c3-decoder": "diverse_beam_search", "s-c3-beam__num_beams": "2",
          "s-c3-beam__num_beam_groups": "2"}, "Num beams must be at least N = 4"),
        ({"s-c3-decoder": "diverse_beam_search", "s-c3-beam__num_beams": "6",
          "s-c3-beam__num_beam_groups": "4"}, "num_beam_groups must divide num_beams"),
        ({"s-c3-decoder": "beam_search", "s-c3-prompt_scheme": "refine"},
         "choose a single-call prompting scheme"),
        ({"s-c3-decoder": "beam_search", "s-c3-prompt_scheme": "verbalized"},
         "choose a single-call prompting scheme"),
        ({"s-c3-decoder": "beam_search", "s-c3-prompt_scheme": "sequential"},
         "choose a single-call prompting scheme"),
        ({"s-c3-prompt_scheme": "sequential", "s-c3-scheme__budget_tokens": "0"},
         "greater than or equal to 1"),
    ],
)
def test_it_reports_invalid_decoders_as_field_errors(
    logged_in: Any, team: Any, overrides: dict[str, str], message: str
) -> None:
    response = post(logged_in, team, **overrides)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Experiment.objects.count() == 0


def test_it_refuses_a_beam_spec_the_form_would_refuse(team: Any) -> None:
    spec = StrategySpec(temperature=1.0, decoder="beam_search", decoder_config={"num_beams": 2})
    with pytest.raises(ValueError, match="num_beams must be at least N = 4"):
        spec.for_experiment(4, 8)
    spec = StrategySpec(temperature=1.0, decoder="beam_search", prompt_scheme="deepening")
    with pytest.raises(ValueError, match="single-call"):
        spec.for_experiment(2, 8)


def test_it_agrees_with_the_worker_on_single_call_schemes() -> None:
    from workers.runtime import schemes

    assert SINGLE_CALL_SCHEMES == schemes.SINGLE_CALL_SCHEMES
    assert BEAM_DECODERS == schemes.BEAM_DECODERS


def test_it_offers_sequential_revision_with_a_token_budget(logged_in: Any) -> None:
    body = row_fragment(logged_in, **{"s-ab12-prompt_scheme": "sequential"})
    assert '<option value="sequential"' in body
    assert 'name="s-ab12-scheme__budget_tokens"' in body
    assert 'name="s-ab12-scheme__max_rounds"' in body
    assert "token cap of a parallel pool of N" in body


def test_it_matches_the_sequential_budget_to_a_parallel_pool(logged_in: Any, team: Any) -> None:
    response = post(logged_in, team, **{
        "s-b2-prompt_scheme": "sequential", "s-b2-scheme__max_rounds": "3",
        "s-c3-prompt_scheme": "sequential", "s-c3-scheme__budget_tokens": "20",
    })
    assert response.status_code == 302, response.content.decode()[-3000:]
    _, matched, explicit = Experiment.objects.get().strategies.order_by("position")
    assert matched.prompt_config == {"max_rounds": 3, "budget_tokens": 4 * 16}
    assert matched.n == 3  # max_rounds, capped by N = 4
    assert explicit.prompt_config == {"budget_tokens": 20} and explicit.n == 4
    assert matched.pool_id != explicit.pool_id


def test_it_offers_the_model_judge_with_its_fields(logged_in: Any) -> None:
    body = logged_in.get(reverse("experiment-new")).content.decode()
    assert '<option value="judge"' in body
    body = logged_in.get(reverse("experiment-verifier-fields"), {"verifier": "judge"},
                         HTTP_HX_REQUEST="true").content.decode()
    for name in ("n", "pass_score", "show_reference", "max_new_tokens"):
        assert f'name="verifier__{name}"' in body, name


def test_it_stores_the_judge_verifier_and_its_config(logged_in: Any, team: Any) -> None:
    response = post(logged_in, team, verifier="judge", verifier__n="3",
                    verifier__max_new_tokens="64", verifier__pass_score="7",
                    verifier__show_reference="on")
    assert response.status_code == 302, response.content.decode()[-3000:]
    experiment = Experiment.objects.get()
    assert experiment.verifier == "judge"
    assert experiment.verifier_config == {"n": 3, "max_new_tokens": 64}
    response = post(logged_in, team, verifier="judge", verifier__pass_score="11")
    assert response.status_code == 400 and "pass_score" in response.content.decode()
