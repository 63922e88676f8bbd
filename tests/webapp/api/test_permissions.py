"""Every endpoint answers as the pages do: the team's owner, members and viewers read;
viewers' writes are 403; another team's objects are 404; anonymous requests are 401."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.webapp.api.conftest import token_client
from tests.webapp.experiments import review_data
from webapp.datasets.models import Dataset
from webapp.experiments.models import Experiment

pytestmark = pytest.mark.django_db

READS = [
    "/api/v1/experiments/{e}/", "/api/v1/experiments/{e}/metrics/",
    "/api/v1/experiments/{e}/results/", "/api/v1/experiments/{e}/samples/",
    "/api/v1/experiments/{e}/export/?what=metrics&format=json",
    "/api/v1/datasets/{d}/", "/api/v1/datasets/{d}/problems/",
]
LISTS = ["/api/v1/models/", "/api/v1/catalogue/", "/api/v1/teams/", "/api/v1/experiments/",
         "/api/v1/datasets/"]


@pytest.fixture
def experiment(team: Any) -> Experiment:
    return review_data.build(team)


def urls(template: str, experiment: Experiment) -> str:
    return template.format(e=experiment.pk, d=experiment.dataset_id)


@pytest.mark.parametrize("persona", ["owner", "teammate", "viewer", "team_admin"])
def test_the_team_reads(request: pytest.FixtureRequest, experiment: Experiment,
                        persona: str) -> None:
    client = token_client(request.getfixturevalue(persona))
    for template in READS:
        url = urls(template, experiment)
        assert client.get(url).status_code == 200, url


def test_another_team_gets_404_and_anonymous_401(experiment: Experiment, stranger: Any) -> None:
    client = token_client(stranger)
    for template in READS:
        url = urls(template, experiment)
        assert client.get(url).status_code == 404, url
        assert Client().get(url).status_code == 401, url


@pytest.mark.parametrize("url", LISTS)
def test_lists_show_only_the_users_teams(experiment: Experiment, stranger: Any,
                                        url: str) -> None:
    response = token_client(stranger).get(url)
    assert response.status_code == 200
    assert Client().get(url).status_code == 401
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    if url.endswith(("experiments/", "datasets/")):
        assert rows == []
    if url.endswith("teams/"):
        assert [t["slug"] for t in rows] == ["other"]


WRITES = [
    ("post", "/api/v1/experiments/{e}/cancel/", {}),
    ("post", "/api/v1/experiments/{e}/amend/", {"n_samples": 8}),
    ("delete", "/api/v1/experiments/{e}/", None),
]


@pytest.mark.parametrize(("method", "template", "body"), WRITES)
def test_a_viewer_cannot_change_an_experiment(experiment: Experiment, viewer: Any,
                                              stranger: Any, method: str, template: str,
                                              body: Any) -> None:
    url = urls(template, experiment)
    kwargs = {"content_type": "application/json"} if body is not None else {}
    send = getattr(token_client(viewer), method)
    assert send(url, body, **kwargs).status_code == 403
    assert getattr(token_client(stranger), method)(url, body, **kwargs).status_code == 404
    assert getattr(Client(), method)(url, body, **kwargs).status_code == 401
    experiment.refresh_from_db()
    assert experiment.status == "finished" and experiment.n_samples == 4


def test_a_viewer_cannot_upload(team: Any, viewer: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = token_client(viewer).post("/api/v1/datasets/", {
        "team": team.slug, "file": SimpleUploadedFile("x.jsonl", b'{"prompt": "p"}\n')})
    assert response.status_code == 403
    assert not Dataset.objects.filter(source=Dataset.Source.UPLOAD).exists()


def test_a_member_who_is_not_the_owner_may_write(experiment: Experiment,
                                                 teammate: Any) -> None:
    response = token_client(teammate).post(f"/api/v1/experiments/{experiment.pk}/cancel/")
    assert response.status_code == 409  # allowed, but a finished one is not cancelled
