"""Datasets over the API: the list, the rows paged, and uploads checked as the upload page
checks them (the same located messages), leaving nothing staged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.api.conftest import token_client
from tests.webapp.datasets.pages import MCQ_CSV, gsm8k_rows, jsonl
from webapp.datasets.models import Dataset, DatasetUpload
from webapp.datasets.services import ensure_arithmetic_dataset

pytestmark = pytest.mark.django_db

DATASETS = "/api/v1/datasets/"


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return settings.DATA_DIR


def staged_files(data_dir: Path) -> list[Path]:
    directory = data_dir / "uploads"
    return list(directory.iterdir()) if directory.is_dir() else []


def upload(user: Any, team: Any, file_name: str, content: bytes, **fields: Any) -> Any:
    return token_client(user).post(DATASETS, {"team": team.slug,
                                              "file": SimpleUploadedFile(file_name, content),
                                              **fields})


def test_it_imports_a_recognised_layout_without_a_mapping(owner: Any, team: Any,
                                                          data_dir: Path) -> None:
    response = upload(owner, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(3)), name="GSM sample")
    assert response.status_code == 201, response.content
    body = response.json()
    dataset = Dataset.objects.get(pk=body["id"])
    assert (body["name"], body["kind"], body["row_count"], body["team"]) == (
        "GSM sample", "math", 3, team.slug)
    assert [p.answer for p in dataset.problems.order_by("index")] == ["0", "1", "2"]
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []


def test_it_takes_an_explicit_mapping(owner: Any, team: Any) -> None:
    mapping = {"kind": "choice", "prompt": "question", "choices": ["A", "B", "C", "D"],
               "answer_key": "answer"}
    response = upload(owner, team, "quiz.csv", MCQ_CSV, mapping=json.dumps(mapping))
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.kind == "choice" and dataset.name == "quiz"
    assert dataset.problems.get(index=1).metadata["choices"] == ["green", "blue", "red",
                                                                 "multi\nline"]


def test_bad_rows_get_the_pages_located_messages_and_nothing_stays(
    owner: Any, team: Any, data_dir: Path
) -> None:
    good = gsm8k_rows(1)[0]
    content = jsonl(good, '{"question": "truncated', {"question": "q", "answer": [7]}, good)
    response = upload(owner, team, "bad.jsonl", content)
    assert response.status_code == 400
    body = response.json()
    assert body["total"] == 2
    first, second = body["errors"]["file"]
    assert first.startswith("bad.jsonl, line 2: is not valid JSON")
    assert second.startswith("bad.jsonl, line 3, field 'answer': must be a string")
    assert not Dataset.objects.exists()
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"mapping": "{not json"}, "mapping", "Not JSON"),
        ({"mapping": json.dumps({"prompt": "question", "colour": "x"})}, "mapping.colour",
         "Unknown field"),
        ({"mapping": json.dumps({"kind": "math", "prompt": "question", "answer": ""})},
         "mapping.answer", "answer"),
        ({"mapping": json.dumps({"kind": "math", "prompt": "nope"})}, "mapping.prompt",
         "Select a valid choice"),
    ],
)
def test_a_bad_mapping_is_named_by_its_field(owner: Any, team: Any, fields: dict[str, str],
                                             path: str, message: str) -> None:
    response = upload(owner, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(2)), **fields)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(message in m for m in errors[path]), errors
    assert not Dataset.objects.exists() and DatasetUpload.objects.count() == 0


def test_an_unrecognised_layout_asks_for_a_mapping(owner: Any, team: Any) -> None:
    response = upload(owner, team, "odd.jsonl", jsonl({"x": 1, "y": 2}))
    assert response.status_code == 400
    assert "send a mapping" in response.json()["errors"]["mapping"][0]


def test_a_file_over_the_cap_is_a_413(owner: Any, team: Any, settings: Any,
                                      data_dir: Path) -> None:
    settings.STRATLAB_DATASET_MAX_BYTES = 1024
    response = upload(owner, team, "big.jsonl", jsonl(*gsm8k_rows(40)))
    assert response.status_code == 413
    assert "larger than the 1 KiB limit" in response.json()["errors"]["file"][0]
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []


def test_uploading_needs_one_of_your_teams(owner: Any, team: Any, stranger: Any) -> None:
    response = upload(stranger, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(1)))
    assert response.status_code == 400 and "team" in response.json()["errors"]
    missing = token_client(owner).post(DATASETS, {"team": team.slug})
    assert missing.status_code == 400 and "file" in missing.json()["errors"]


def test_rows_are_paged_and_searchable(owner: Any, team: Any) -> None:
    dataset = ensure_arithmetic_dataset(team, size=120, seed=1)
    api = token_client(owner)
    listed = api.get(DATASETS).json()
    assert listed["count"] == 1 and listed["results"][0]["row_count"] == 120
    first = api.get(f"{DATASETS}{dataset.pk}/problems/").json()
    assert first["count"] == 120 and len(first["results"]) == 50
    assert [r["index"] for r in first["results"][:3]] == [0, 1, 2]
    last = api.get(f"{DATASETS}{dataset.pk}/problems/", {"page": 3}).json()
    assert [r["index"] for r in last["results"]][-1] == 119 and last["next"] is None
    prompt = first["results"][7]["prompt"]
    found = api.get(f"{DATASETS}{dataset.pk}/problems/", {"q": prompt}).json()
    assert 7 in [r["index"] for r in found["results"]]
    assert api.get(f"{DATASETS}{dataset.pk}/problems/", {"page": 99}).status_code == 404
