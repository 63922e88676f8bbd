"""Dataset pages: the list, the detail page (paginated, searchable), rename, delete,
download; every URL is team-scoped (404 for another team) and needs a login."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.factories import make_experiment
from tests.webapp.datasets.pages import gsm8k_rows, jsonl, staged, upload
from webapp.datasets.models import Dataset
from webapp.datasets.services import ensure_dataset

pytestmark = pytest.mark.usefixtures("data_dir")


def make_dataset(team, n: int = 3, name: str = "sums", **kwargs):  # type: ignore[no-untyped-def]
    rows = [(f"What is {i} + {i}?", str(2 * i), {"id": f"q{i}"}) for i in range(n)]
    return ensure_dataset(team, name=name, source=Dataset.Source.UPLOAD,
                          kind=kwargs.pop("kind", Dataset.Kind.MATH), params={}, rows=rows)


def dataset_urls(dataset: Dataset) -> list[tuple[str, str, dict[str, object]]]:
    """(method, url, extra) for every URL about one dataset."""
    detail = reverse("dataset-detail", args=[dataset.pk])
    return [
        ("get", detail, {}),
        ("get", detail + "?page=2&q=What", {}),
        ("get", detail, {"HTTP_HX_REQUEST": "true"}),
        ("get", reverse("dataset-download", args=[dataset.pk]), {}),
        ("post", reverse("dataset-rename", args=[dataset.pk]), {"data": {"name": "mine"}}),
        ("post", reverse("dataset-delete", args=[dataset.pk]), {}),
    ]


def test_another_teams_user_gets_404_on_every_dataset_url(client, team, owner, stranger) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team, n=60)
    client.force_login(owner)
    upload_pk = staged(upload(client, team, "mine.jsonl", jsonl(*gsm8k_rows(2)))).pk
    client.force_login(stranger)
    for method, url, extra in dataset_urls(dataset):
        response = getattr(client, method)(url, **extra)
        assert response.status_code == 404, (method, url)
    map_url = reverse("dataset-map", args=[upload_pk])
    assert client.get(map_url).status_code == 404
    assert client.post(map_url, {"name": "x", "kind": "open", "prompt": "question"}
                       ).status_code == 404
    assert client.post(reverse("dataset-upload-discard", args=[upload_pk])).status_code == 404
    listing = client.get(reverse("dataset-list")).content.decode()
    assert "sums" not in listing and "mine.jsonl" not in listing
    # Nothing changed.
    dataset.refresh_from_db()
    assert dataset.name == "sums" and Dataset.objects.filter(pk=dataset.pk).exists()


def test_a_stranger_cannot_upload_into_another_team(client, team, stranger) -> None:  # type: ignore[no-untyped-def]
    client.force_login(stranger)
    response = upload(client, team, "x.jsonl", jsonl(*gsm8k_rows(1)))
    assert response.status_code == 400
    assert response.context["form"].errors["team"]


def test_anonymous_users_are_sent_to_log_in(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team)
    client.force_login(owner)
    upload_pk = staged(upload(client, team, "mine.jsonl", jsonl(*gsm8k_rows(2)))).pk
    client.logout()
    urls = [("get", reverse("dataset-list"), {}), ("get", reverse("dataset-upload"), {}),
            ("post", reverse("dataset-upload"), {}),
            ("get", reverse("dataset-map", args=[upload_pk]), {}),
            ("post", reverse("dataset-upload-discard", args=[upload_pk]), {}),
            *dataset_urls(dataset)]
    for method, url, extra in urls:
        response = getattr(client, method)(url, **extra)
        assert response.status_code == 302, (method, url)
        assert response.url.startswith(reverse("login")), (method, url)


def test_a_teammate_sees_the_teams_datasets(client, team, teammate) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team)
    client.force_login(teammate)
    assert client.get(reverse("dataset-detail", args=[dataset.pk])).status_code == 200
    assert "sums" in client.get(reverse("dataset-list")).content.decode()


def test_the_list_shows_the_teams_datasets_and_the_built_in_ones(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team, name="Baseline run")
    make_dataset(team, n=4)
    make_dataset(team, n=5)  # different content, same name: version 2
    client.force_login(owner)
    response = client.get(reverse("dataset-list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Arithmetic generator" in html and "HumanEval" in html and "Built in" in html
    assert html.count(">sums</a>") == 2 and "v2" in html
    assert experiment.dataset.name in html and "Baseline run" in html


def test_the_detail_page_shows_50_rows_a_page(client, team, owner,  # type: ignore[no-untyped-def]
                                              django_assert_max_num_queries) -> None:
    dataset = make_dataset(team, n=120)
    client.force_login(owner)
    url = reverse("dataset-detail", args=[dataset.pk])
    with django_assert_max_num_queries(12):
        first = client.get(url)
    assert [r["index"] for r in first.context["rows"]] == list(range(50))
    assert "Page 1 of 3" in first.content.decode()
    last = client.get(url + "?page=3")
    assert [r["index"] for r in last.context["rows"]] == list(range(100, 120))
    assert "What is 119 + 119?" in last.content.decode()
    assert client.get(url + "?page=99").context["rows"][0]["index"] == 100


def test_the_detail_page_searches_prompts_and_answers(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team, n=120)
    client.force_login(owner)
    url = reverse("dataset-detail", args=[dataset.pk])
    found = client.get(url, {"q": "What is 11 +"})
    assert [r["index"] for r in found.context["rows"]] == [11]
    by_answer = client.get(url, {"q": "238"})
    assert [r["index"] for r in by_answer.context["rows"]] == [119]
    fragment = client.get(url, {"q": "What", "page": "2"}, HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<section id="rows"')
    assert "q=What&amp;page=3" in html


def test_renaming_renames_every_version(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    first, second = make_dataset(team, n=2), make_dataset(team, n=3)
    client.force_login(owner)
    response = client.post(reverse("dataset-rename", args=[second.pk]), {"name": "additions"})
    assert response.status_code == 302
    assert set(Dataset.objects.values_list("name", "version")) == {("additions", 1),
                                                                  ("additions", 2)}
    assert first.pk != second.pk


def test_renaming_to_a_taken_name_is_a_form_error(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    make_dataset(team, n=2, name="taken")
    dataset = make_dataset(team, n=3)
    client.force_login(owner)
    response = client.post(reverse("dataset-rename", args=[dataset.pk]), {"name": "taken"})
    assert response.status_code == 400
    assert "already has a dataset called" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.name == "sums"


def test_deleting_an_unused_dataset(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team)
    client.force_login(owner)
    response = client.post(reverse("dataset-delete", args=[dataset.pk]))
    assert response.status_code == 302 and response.url == reverse("dataset-list")
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_deleting_a_used_dataset_is_refused_naming_the_experiment(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team, name="Needs <these> rows")
    client.force_login(owner)
    response = client.post(reverse("dataset-delete", args=[experiment.dataset_id]))
    assert response.status_code == 409
    html = response.content.decode()
    assert "cannot be deleted" in html and "Needs &lt;these&gt; rows" in html
    assert Dataset.objects.filter(pk=experiment.dataset_id).exists()


def test_download_streams_normalised_jsonl(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team, n=1200)
    client.force_login(owner)
    response = client.get(reverse("dataset-download", args=[dataset.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="sums-v1.jsonl"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 1200
    assert json.loads(lines[7]) == {"prompt": "What is 7 + 7?", "answer": "14",
                                    "metadata": {"id": "q7"}}


def test_problem_text_is_escaped_on_the_detail_page(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    evil = '<script>alert(1)</script><div hx-get="/datasets/" hx-trigger="load">'
    dataset = ensure_dataset(team, name="evil", source=Dataset.Source.UPLOAD, kind="open",
                             params={}, rows=[(evil, evil, {"note": evil, "list": [evil]})])
    client.force_login(owner)
    html = client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    assert "<script>alert" not in html and 'hx-get="/datasets/"' not in html
    assert html.count("&lt;script&gt;alert(1)") >= 4
