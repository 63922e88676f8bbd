"""Creating an experiment in the browser: valid input is stored, invalid gets field errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from webapp.experiments.models import Experiment, SamplePool

pytestmark = pytest.mark.django_db


def form_data(team_: Any, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "team": team_.pk,
        "name": "Sweep",
        "model_name": "smollm2-135m-instruct",
        "dataset_source": "arithmetic",
        "arithmetic_size": "5",
        "arithmetic_seed": "3",
        "prompts": "",
        "n_samples": "4",
        "max_new_tokens": "16",
        "seed": "0",
        "rows": ["a1", "b2", "c3"],
        "s-a1-temperature": "0", "s-a1-top_p": "1", "s-a1-top_k": "0", "s-a1-selector": "first",
        "s-b2-temperature": "0.7", "s-b2-top_p": "0.95", "s-b2-top_k": "0",
        "s-b2-selector": "majority",
        "s-c3-temperature": "0.7", "s-c3-top_p": "0.95", "s-c3-top_k": "0",
        "s-c3-selector": "first",
    }
    data.update(overrides)
    return data


@pytest.fixture
def logged_in(client, owner):  # type: ignore[no-untyped-def]
    assert client.login(username=owner.username, password=PASSWORD)
    return client


def test_it_renders_the_form_with_two_default_rows(logged_in) -> None:  # type: ignore[no-untyped-def]
    body = logged_in.get(reverse("experiment-new")).content.decode()
    assert body.count('class="strategy-row"') == 2
    assert "SmolLM2" in body
    assert 'hx-get="/experiments/new/strategy-row/"' in body


def test_it_stores_an_experiment_whose_equal_rows_share_one_pool(  # type: ignore[no-untyped-def]
    logged_in, team
) -> None:
    response = logged_in.post(reverse("experiment-new"), form_data(team))
    experiment = Experiment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("experiment-detail", args=[experiment.pk])
    strategies = list(experiment.strategies.all())
    assert [s.n for s in strategies] == [1, 4, 4]
    assert strategies[1].pool_id == strategies[2].pool_id != strategies[0].pool_id
    assert SamplePool.objects.count() == 2
    assert experiment.dataset.problems.count() == 5
    assert experiment.k_values == [1, 2, 4]


def test_it_takes_up_to_10000_samples_and_reports_k_at_the_powers_of_two(  # type: ignore[no-untyped-def]
    logged_in, team
) -> None:
    page = logged_in.get(reverse("experiment-new")).content.decode()
    assert 'max="10000"' in page
    response = logged_in.post(reverse("experiment-new"), form_data(team, n_samples="10000"))
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert [s.n for s in experiment.strategies.order_by("position")] == [1, 10_000, 10_000]
    assert experiment.k_values == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                                   8192]


def test_it_reuses_the_pool_of_an_identical_earlier_experiment(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    logged_in.post(reverse("experiment-new"), form_data(team))
    logged_in.post(reverse("experiment-new"), form_data(team, name="Again"))
    assert Experiment.objects.count() == 2
    assert SamplePool.objects.count() == 2


def test_it_accepts_typed_prompts_with_optional_answers(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    data = form_data(team, dataset_source="prompts",
                     prompts="What is 2+2? ||| 4\n\nName a colour.\n")
    assert logged_in.post(reverse("experiment-new"), data).status_code == 302
    problems = list(Experiment.objects.get().dataset.problems.order_by("index"))
    assert [(p.prompt, p.answer) for p in problems] == [
        ("What is 2+2?", "4"),
        ("Name a colour.", ""),
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s-b2-top_p": "0"}, "top_p"),
        ({"s-b2-temperature": "-1"}, "temperature must be"),
        ({"s-b2-top_k": "x"}, "Enter a whole number"),
        ({"s-b2-selector": "codet"}, "codet ranks programs by generated tests"),
        ({"s-b2-selector": "no-such"}, "Select a valid choice"),
        ({"n_samples": "0"}, "greater than or equal to 1"),
        ({"n_samples": "10001"}, "Samples per problem (N) can be at most 10,000."),
        ({"n_samples": "300", "s-b2-prompt_scheme": "refine"},
         "The refine prompting scheme draws a problem&#x27;s N samples in one run: N is at "
         "most 256 for it"),
        ({"max_new_tokens": ""}, "This field is required"),
        ({"model_name": "gpt-9"}, "Select a valid choice"),
        ({"dataset_source": "prompts", "prompts": "ok ||| 1\n||| 5"}, "Line 2"),
        ({"dataset_source": "prompts", "prompts": "   "}, "at least one prompt"),
        ({"dataset_source": "prompts", "prompts": "What? |||"}, "Line 1: nothing after"),
        ({"rows": []}, "Add at least one strategy"),
        ({"arithmetic_size": "100000"}, "less than or equal to 1000"),
    ],
)
def test_it_reports_bad_input_as_field_errors(logged_in, team, overrides, message) -> None:  # type: ignore[no-untyped-def]
    response = logged_in.post(reverse("experiment-new"), form_data(team, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Experiment.objects.count() == 0


def test_it_keeps_rows_and_values_when_the_form_is_invalid(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    body = logged_in.post(
        reverse("experiment-new"), form_data(team, n_samples="0")
    ).content.decode()
    assert body.count('class="strategy-row"') == 3
    assert 'value="0.95"' in body


def test_it_refuses_a_team_the_user_is_not_in(logged_in, team, stranger) -> None:  # type: ignore[no-untyped-def]
    other_team = stranger.memberships.get().team
    response = logged_in.post(reverse("experiment-new"), form_data(team, team=other_team.pk))
    assert response.status_code == 404
    assert Experiment.objects.count() == 0


def test_it_serves_a_new_strategy_row_fragment(logged_in) -> None:  # type: ignore[no-untyped-def]
    response = logged_in.get(reverse("experiment-strategy-row"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body
    assert body.lstrip().startswith('<fieldset class="strategy-row"')
    assert 'name="rows"' in body
    removed = logged_in.get(reverse("experiment-strategy-row-remove"), HTTP_HX_REQUEST="true")
    assert removed.status_code == 200 and removed.content == b""
