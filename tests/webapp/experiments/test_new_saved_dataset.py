"""The new-experiment form on a saved dataset of the team, whole or a subset."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.webapp.experiments.test_new_experiment import form_data
from webapp.datasets.models import Dataset, Problem
from webapp.experiments.models import Experiment, SamplePool
from webapp.teams.models import Team

pytestmark = pytest.mark.django_db


def saved(team: Any, *, kind: str = "choice", size: int = 6, name: str = "Quiz") -> Dataset:
    dataset = Dataset.objects.create(team=team, name=name, source=Dataset.Source.UPLOAD,
                                     kind=kind, content_key=f"{name}-{kind}-{size}")
    Problem.objects.bulk_create([
        Problem(dataset=dataset, index=i, prompt=f"Question {i}?\nA. yes\nB. no", answer="A",
                metadata={"id": f"q{i}", "choices": ["yes", "no"]})
        for i in range(size)
    ])
    return dataset


@pytest.fixture
def logged_in(client: Any, owner: Any) -> Any:
    from tests.factories import PASSWORD

    assert client.login(username=owner.username, password=PASSWORD)
    return client


def post(client: Any, team: Any, dataset: Dataset, **overrides: Any) -> Any:
    data = form_data(team, dataset_source="saved", dataset=str(dataset.pk), verifier="math",
                     **overrides)
    return client.post(reverse("experiment-new"), data)


def test_it_runs_on_every_problem_of_a_saved_dataset_with_its_kinds_verifier(
    logged_in: Any, team: Any
) -> None:
    dataset = saved(team)
    response = post(logged_in, team, dataset)
    assert response.status_code == 302, response.content.decode()[-2000:]
    experiment = Experiment.objects.get()
    assert experiment.dataset == dataset and experiment.subset == {}
    assert experiment.problems.count() == 6
    assert experiment.verifier == "choice"  # the kind set it; math was only the default


def test_it_takes_the_first_a_random_or_the_listed_problems(logged_in: Any, team: Any) -> None:
    dataset = saved(team)
    post(logged_in, team, dataset, subset_mode="first", subset_k="2")
    post(logged_in, team, dataset, subset_mode="random", subset_k="3", subset_seed="7",
         name="Random")
    post(logged_in, team, dataset, subset_mode="random", subset_k="3", subset_seed="7",
         name="Random again")
    post(logged_in, team, dataset, subset_mode="ids", subset_ids="q5, q1\nq5", name="Listed")
    first, random, again, listed = Experiment.objects.order_by("created")
    assert list(first.problems.order_by("index").values_list("index", flat=True)) == [0, 1]
    chosen = list(random.problems.order_by("index").values_list("index", flat=True))
    assert len(chosen) == 3 and chosen == list(
        again.problems.order_by("index").values_list("index", flat=True))
    assert list(listed.problems.order_by("index").values_list("index", flat=True)) == [1, 5]
    assert listed.subset == {"mode": "ids", "ids": ["q5", "q1"]}
    # Subsets of one dataset read the same pools: problems keep their ids.
    assert SamplePool.objects.count() == 2


def test_a_subset_that_does_not_fit_is_a_field_error(logged_in: Any, team: Any) -> None:
    dataset = saved(team, size=3)
    too_many = post(logged_in, team, dataset, subset_mode="first", subset_k="5")
    assert too_many.status_code == 400
    assert "Quiz has 3 problems; cannot take 5." in too_many.content.decode()
    unknown = post(logged_in, team, dataset, subset_mode="ids", subset_ids="q1 nope")
    assert "Quiz has no problem with id nope." in unknown.content.decode()
    assert not Experiment.objects.exists()


def test_another_teams_dataset_is_a_form_error(logged_in: Any, team: Any, stranger: Any) -> None:
    other_team = Team.objects.exclude(pk=team.pk).get()
    foreign = saved(other_team, name="Theirs")
    response = post(logged_in, team, foreign)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Experiment.objects.exists()


def test_a_code_dataset_is_judged_by_its_unit_tests(logged_in: Any, team: Any) -> None:
    dataset = saved(team, kind="code", size=1, name="Funcs")
    Problem.objects.filter(dataset=dataset).update(
        prompt="def add(a, b):\n", answer="",
        metadata={"test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
                  "entry_point": "add"})
    response = post(logged_in, team, dataset)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Experiment.objects.get().verifier == "unit_tests"


def test_the_page_tags_each_source_field_so_only_the_chosen_ones_show(logged_in: Any,
                                                                      team: Any) -> None:
    saved(team)
    body = logged_in.get(reverse("experiment-new")).content.decode()
    assert "source-field source-saved" in body and "source-field source-arithmetic" in body
    assert ">Quiz<" in body
