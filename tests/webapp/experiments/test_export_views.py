"""The export view and the Export menu: anyone in the team downloads (viewers too), another
team gets 404, anonymous users go to login; responses stream with a safe file name."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.urls import reverse

from tests.factories import make_code_experiment
from tests.webapp.experiments import review_data
from webapp.experiments.models import Experiment
from webapp.experiments.specs import StrategySpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(team: Any) -> Experiment:
    return review_data.build(team, name="Review run")


def url(experiment: Experiment, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{reverse('experiment-export', args=[experiment.pk])}?{query}"


@pytest.mark.parametrize("persona", ["owner", "team_admin", "teammate", "viewer"])
def test_everyone_in_the_team_downloads_a_streamed_csv(
        request: Any, client: Any, experiment: Experiment, persona: str) -> None:
    client.force_login(request.getfixturevalue(persona))
    response = client.get(url(experiment, what="samples", format="csv"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="review-run-{experiment.pk}-samples.csv"')
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 25 and rows[0]["text"] == "The answer is 2."


@pytest.mark.parametrize(("what", "fmt", "count"), [
    ("problems", "json", 15), ("metrics", "jsonl", None), ("samples", "jsonl", 25)])
def test_json_and_jsonl_stream_through_the_view(
        client: Any, owner: Any, experiment: Experiment, what: str, fmt: str,
        count: int | None) -> None:
    client.force_login(owner)
    response = client.get(url(experiment, what=what, format=fmt))
    assert response.status_code == 200 and response.streaming
    text = b"".join(response.streaming_content).decode()
    if fmt == "json":
        assert response["Content-Type"] == "application/json"
        assert len(json.loads(text)["rows"]) == count
    else:
        assert response["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[0]["kind"] == "experiment" and lines[0]["experiment"]["id"] == experiment.pk
        assert count is None or len(lines) == count + 1
    assert response["Content-Disposition"].endswith(f'-{experiment.pk}-{what}.{fmt}"')


def test_another_teams_user_gets_404(client: Any, stranger: Any, experiment: Experiment) -> None:
    client.force_login(stranger)
    assert client.get(url(experiment, what="samples", format="csv")).status_code == 404


def test_anonymous_users_go_to_login(client: Any, experiment: Experiment) -> None:
    response = client.get(url(experiment, what="samples", format="csv"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_bad_requests_are_400_with_a_readable_message(
        client: Any, owner: Any, experiment: Experiment) -> None:
    client.force_login(owner)
    response = client.get(url(experiment, what="<script>", format="csv"))
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Unknown export '<script>': choose one of samples, problems, metrics" in \
        response.content.decode()
    response = client.get(url(experiment, what="samples", format="humaneval"))
    assert response.status_code == 400 and b"code experiments only" in response.content
    response = client.get(url(experiment, what="samples", format="csv", strategy="x"))
    assert response.status_code == 400 and b"strategy" in response.content
    assert client.post(url(experiment, what="samples", format="csv")).status_code == 405


def test_a_hostile_name_gives_a_safe_header(client: Any, owner: Any, team: Any) -> None:
    hostile = review_data.build(team, name='Ré"sumé\r\n; filename=../x.exe')
    client.force_login(owner)
    response = client.get(url(hostile, what="metrics", format="csv"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="resume-filenamexexe-{hostile.pk}-metrics.csv"; '
        f"filename*=UTF-8''r%C3%A9sum%C3%A9-filenamexexe-{hostile.pk}-metrics.csv")


def test_the_page_offers_the_export_menu(client: Any, viewer: Any,
                                         experiment: Experiment) -> None:
    client.force_login(viewer)
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    base = reverse("experiment-export", args=[experiment.pk])
    assert 'id="export-menu"' in page
    for what in ("samples", "problems", "metrics"):
        for fmt in ("csv", "json", "jsonl"):
            assert f'href="{base}?what={what}&amp;format={fmt}"' in page
    assert "format=humaneval" not in page


def test_a_code_experiment_offers_human_eval_files(client: Any, owner: Any, team: Any) -> None:
    code = make_code_experiment(team, [StrategySpec(temperature=0.0, selector="first"),
                                       StrategySpec(temperature=0.7, selector="majority")])
    client.force_login(owner)
    page = client.get(reverse("experiment-detail", args=[code.pk])).content.decode()
    base = reverse("experiment-export", args=[code.pk])
    assert f'href="{base}?what=problems&amp;format=humaneval"' in page
    for position in (0, 1):
        assert f'href="{base}?what=samples&amp;format=humaneval&amp;strategy={position}"' in page
    response = client.get(f"{base}?what=problems&format=humaneval")
    assert response.status_code == 200
    [problem] = [json.loads(line) for line in
                 b"".join(response.streaming_content).decode().splitlines()]
    assert problem["task_id"] == "HumanEval/0"
    response = client.get(f"{base}?what=samples&format=humaneval&strategy=1")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="code-experiment-{code.pk}-humaneval-samples-s1.jsonl"')
    response = client.get(f"{base}?what=samples&format=humaneval&strategy=7")
    assert response.status_code == 400 and b"No strategy at position 7" in response.content
