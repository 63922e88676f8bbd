"""Who may change a team's datasets: members, admins and the owner. A viewer reads
(list, detail, download) but gets 403 on upload, mapping, discard, rename and delete,
checked in the views and services whatever the page shows."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from tests.factories import make_team
from tests.webapp.datasets.pages import gsm8k_rows, jsonl, staged, upload, upload_and_confirm
from tests.webapp.datasets.test_views import make_dataset
from webapp.datasets import services, uploads
from webapp.datasets.models import Dataset, DatasetUpload
from webapp.teams.services import add_member

pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.mark.parametrize("persona", ["owner", "team_admin", "teammate"])
def test_members_and_up_upload_rename_and_delete(request, client, team, persona) -> None:  # type: ignore[no-untyped-def]
    client.force_login(request.getfixturevalue(persona))
    response = upload_and_confirm(client, team, "g.jsonl", jsonl(*gsm8k_rows(2)))
    assert response.status_code == 302
    dataset = Dataset.objects.get(team=team, source=Dataset.Source.UPLOAD)
    assert client.post(reverse("dataset-rename", args=[dataset.pk]), {"name": "renamed"}
                       ).status_code == 302
    assert client.post(reverse("dataset-delete", args=[dataset.pk])).status_code == 302
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_a_viewer_reads_the_teams_datasets(client, team, viewer) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team)
    client.force_login(viewer)
    assert "sums" in client.get(reverse("dataset-list")).content.decode()
    assert client.get(reverse("dataset-detail", args=[dataset.pk])).status_code == 200
    assert client.get(reverse("dataset-download", args=[dataset.pk])).status_code == 200


def test_a_viewer_gets_403_on_upload(client, team, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    assert client.get(reverse("dataset-upload")).status_code == 403
    assert upload(client, team, "g.jsonl", jsonl(*gsm8k_rows(2))).status_code == 403
    assert not DatasetUpload.objects.exists() and not Dataset.objects.exists()


def test_a_viewer_gets_403_on_mapping_or_discarding_a_members_upload(  # type: ignore[no-untyped-def]
    client, team, teammate, viewer
) -> None:
    client.force_login(teammate)
    upload_pk = staged(upload(client, team, "g.jsonl", jsonl(*gsm8k_rows(2)))).pk
    client.force_login(viewer)
    map_url = reverse("dataset-map", args=[upload_pk])
    assert client.get(map_url).status_code == 403
    assert client.post(map_url, {"name": "x", "kind": "math", "prompt": "question",
                                 "answer": "answer"}).status_code == 403
    assert client.post(reverse("dataset-upload-discard", args=[upload_pk])).status_code == 403
    assert DatasetUpload.objects.filter(pk=upload_pk).exists() and not Dataset.objects.exists()


def test_a_viewer_gets_403_on_rename_and_delete(client, team, viewer) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team)
    client.force_login(viewer)
    rename = reverse("dataset-rename", args=[dataset.pk])
    assert client.post(rename, {"name": "mine"}).status_code == 403
    assert client.post(rename, {"name": ""}).status_code == 403  # before the form is read
    assert client.post(reverse("dataset-delete", args=[dataset.pk])).status_code == 403
    dataset.refresh_from_db()
    assert dataset.name == "sums"


def test_the_services_refuse_a_viewer_too(team, viewer, stranger) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.http import Http404

    dataset = make_dataset(team)
    with pytest.raises(PermissionDenied):
        services.rename_dataset(viewer, dataset, "mine")
    with pytest.raises(PermissionDenied):
        services.delete_dataset(viewer, dataset)
    with pytest.raises(PermissionDenied):
        uploads.stage_upload(team, viewer, SimpleUploadedFile("g.jsonl", jsonl(*gsm8k_rows(1))))
    with pytest.raises(Http404):
        services.delete_dataset(stranger, dataset)
    assert Dataset.objects.filter(pk=dataset.pk, name="sums").exists()


def test_a_viewer_here_and_member_there_uploads_only_there(client, team, viewer) -> None:  # type: ignore[no-untyped-def]
    beta = make_team("Beta")
    add_member(beta, viewer, role="member")
    client.force_login(viewer)
    form = client.get(reverse("dataset-upload")).context["form"]
    assert [t.name for t in form.fields["team"].queryset] == ["Beta"]
    assert upload(client, team, "g.jsonl", jsonl(*gsm8k_rows(2))).status_code == 403
    assert staged(upload(client, beta, "g.jsonl", jsonl(*gsm8k_rows(2)))).team == beta


def test_another_teams_user_gets_404_on_the_teams_datasets(client, team, stranger) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(team)
    client.force_login(stranger)
    for url in (reverse("dataset-detail", args=[dataset.pk]),
                reverse("dataset-rename", args=[dataset.pk]),
                reverse("dataset-delete", args=[dataset.pk])):
        method = client.get if url.endswith(f"/{dataset.pk}/") else client.post
        assert method(url).status_code == 404, url
    assert Dataset.objects.filter(pk=dataset.pk).exists()
