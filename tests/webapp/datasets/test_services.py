"""Dataset services without the pages: storing in batches with versions, the two-pass
import, staging, team scoping, rename, delete and export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from tests.factories import make_experiment
from tests.webapp.datasets.pages import MCQ_CSV, gsm8k_rows, jsonl
from webapp.datasets import services, uploads
from webapp.datasets.mapping import ColumnMapping
from webapp.datasets.models import Dataset, DatasetUpload, Problem
from webapp.datasets.parsers import UploadError

pytestmark = pytest.mark.usefixtures("data_dir")

GSM8K = ColumnMapping(kind="math", prompt="question", answer="answer", answer_format="gsm8k")


def stage(team, user, name: str, content: bytes) -> DatasetUpload:  # type: ignore[no-untyped-def]
    return uploads.stage_upload(team, user, SimpleUploadedFile(name, content))


def test_store_dataset_inserts_in_batches_and_counts_rows(team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "BATCH_SIZE", 7)
    calls = []
    real = Problem.objects.bulk_create

    def counting(objs, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(objs))
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(Problem.objects, "bulk_create", counting)
    rows = ((f"p{i}", str(i), {}) for i in range(20))
    dataset = services.store_dataset(team, key="k" * 64, rows=rows, name="gen", source="upload",
                                     kind="exact")
    assert calls == [7, 7, 6]
    assert dataset.row_count == 20 and Dataset.objects.get().row_count == 20
    assert list(dataset.problems.values_list("index", flat=True)) == list(range(20))


def test_new_content_under_a_name_is_the_next_version_per_team_and_source(team, stranger) -> None:  # type: ignore[no-untyped-def]
    other = stranger.memberships.get().team

    def store(t, key: str, source: str = "upload") -> Dataset:  # type: ignore[no-untyped-def]
        return services.store_dataset(t, key=key * 64, rows=[("p", "a", {})], name="n",
                                      source=source, kind="exact")

    assert [store(team, k).version for k in "abc"] == [1, 2, 3]
    assert store(team, "a").version == 1  # same content: the same dataset
    assert store(other, "a").version == 1
    assert store(team, "d", source="prompts").version == 1


def test_import_stores_a_gsm8k_file_and_removes_the_staged_file(team, owner) -> None:  # type: ignore[no-untyped-def]
    upload = stage(team, owner, "g.jsonl", jsonl(*gsm8k_rows(5)))
    path = Path(upload.path)
    assert path.is_file() and upload.format == "jsonl" and upload.size == path.stat().st_size
    dataset = uploads.import_upload(upload, GSM8K, name="g", kind="math")
    assert dataset.row_count == 5 and dataset.mapping == GSM8K.to_dict()
    assert not path.exists() and not DatasetUpload.objects.exists()
    assert dataset.problems.get(index=4).answer == "4"


def test_import_stores_nothing_when_any_row_is_bad(team, owner) -> None:  # type: ignore[no-untyped-def]
    rows = [*gsm8k_rows(3), {"question": "no answer"}, "[1, 2]"]
    upload = stage(team, owner, "g.jsonl", jsonl(*rows))
    with pytest.raises(UploadError) as caught:
        uploads.import_upload(upload, GSM8K, name="g", kind="math")
    assert caught.value.total == 2
    assert caught.value.errors[0].startswith("g.jsonl, line 4")
    assert caught.value.errors[1].startswith("g.jsonl, line 5")
    assert not Dataset.objects.exists() and not Problem.objects.exists()
    assert Path(upload.path).is_file()  # kept for another mapping


def test_the_content_key_follows_the_mapping_and_kind(team, owner) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(*gsm8k_rows(2))
    first = uploads.import_upload(stage(team, owner, "g.jsonl", content), GSM8K, name="g",
                                  kind="math")
    same = uploads.import_upload(stage(team, owner, "h.jsonl", content), GSM8K, name="h",
                                 kind="math")
    plain = ColumnMapping(kind="exact", prompt="question", answer="answer")
    other = uploads.import_upload(stage(team, owner, "g.jsonl", content), plain, name="g",
                                  kind="exact")
    assert same.pk == first.pk and same.name == "g"
    assert other.pk != first.pk and other.version == 2


def test_the_row_limit_is_enforced(team, owner, settings) -> None:  # type: ignore[no-untyped-def]
    settings.STRATLAB_DATASET_MAX_ROWS = 3
    upload = stage(team, owner, "g.jsonl", jsonl(*gsm8k_rows(5)))
    with pytest.raises(UploadError) as caught:
        uploads.import_upload(upload, GSM8K, name="g", kind="math")
    assert "STRATLAB_DATASET_MAX_ROWS" in " ".join(caught.value.errors)
    assert not Dataset.objects.exists()


def test_staging_refuses_a_file_over_the_cap_and_keeps_nothing(team, owner, settings,  # type: ignore[no-untyped-def]
                                                                data_dir) -> None:
    settings.STRATLAB_DATASET_MAX_BYTES = 100
    with pytest.raises(UploadError, match="larger than the 100 bytes limit"):
        stage(team, owner, "g.jsonl", jsonl(*gsm8k_rows(5)))
    assert not DatasetUpload.objects.exists()
    assert not (data_dir / "uploads").exists() or not any((data_dir / "uploads").iterdir())


def test_staging_hashes_and_detects_the_format(team, owner) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    assert stage(team, owner, "train.json", jsonl(*gsm8k_rows(1))).format == "jsonl"
    upload = stage(team, owner, "quiz.csv", MCQ_CSV)
    assert upload.format == "csv" and upload.sha256 == hashlib.sha256(MCQ_CSV).hexdigest()
    assert upload.file_name == "quiz.csv" and upload.created_by == owner


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..\\..\\etc/passwd.csv", "passwd.csv"),
        ("C:\\Users\\me\\train.jsonl", "train.jsonl"),
        ("a\x00b\x1b[31m.csv", "ab[31m.csv"),
        ("..", "upload"),
        ("", "upload"),
        (".hidden.jsonl", "hidden.jsonl"),
        ("x" * 300 + ".parquet", "x" * 192 + ".parquet"),
    ],
)
def test_file_names_are_sanitised(name: str, expected: str) -> None:
    assert uploads.sanitise_file_name(name) == expected


def test_staging_for_a_team_that_is_not_the_users_is_404(team, stranger) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Http404):
        stage(team, stranger, "g.jsonl", jsonl(*gsm8k_rows(1)))


def test_lookups_are_team_scoped(team, owner, teammate, stranger) -> None:  # type: ignore[no-untyped-def]
    dataset = services.ensure_dataset(team, name="d", source="upload", kind="exact", params={},
                                      rows=[("p", "a", {})])
    assert services.get_dataset_for_user(teammate, dataset.pk) == dataset
    assert list(services.datasets_for_user(stranger)) == []
    with pytest.raises(Http404):
        services.get_dataset_for_user(stranger, dataset.pk)
    upload = stage(team, owner, "g.jsonl", jsonl(*gsm8k_rows(1)))
    assert uploads.get_upload_for_user(teammate, upload.pk) == upload
    with pytest.raises(Http404):
        uploads.get_upload_for_user(stranger, upload.pk)
    with pytest.raises(Http404):
        services.rename_dataset(stranger, dataset, "x")
    with pytest.raises(Http404):
        services.delete_dataset(stranger, dataset)


def test_delete_is_refused_while_experiments_use_the_dataset(team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team, name="Uses it")
    with pytest.raises(services.DatasetInUse) as caught:
        services.delete_dataset(owner, experiment.dataset)
    assert caught.value.experiment_names == ["Uses it"]
    assert Dataset.objects.filter(pk=experiment.dataset_id).exists()


def test_export_round_trips_the_normalised_rows(team, owner) -> None:  # type: ignore[no-untyped-def]
    upload = stage(team, owner, "quiz.csv", MCQ_CSV)
    mapping = ColumnMapping(kind="choice", prompt="question", choices=("A", "B", "C", "D"),
                            answer_key="answer")
    dataset = uploads.import_upload(upload, mapping, name="quiz", kind="choice")
    lines = "".join(services.export_jsonl(dataset)).splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 3 and set(rows[0]) == {"prompt", "answer", "metadata"}
    stored = dataset.problems.get(index=2)
    assert rows[2] == {"prompt": stored.prompt, "answer": stored.answer,
                       "metadata": stored.metadata}


def test_the_migration_numbers_existing_versions_and_counts_rows(team) -> None:  # type: ignore[no-untyped-def]
    import importlib

    from django.apps import apps

    migration = importlib.import_module("webapp.datasets.migrations.0003_uploads_and_versions")
    a = services.ensure_dataset(team, name="a", source="upload", kind="exact", params={},
                                rows=[("p", "a", {})])
    b = services.ensure_dataset(team, name="b", source="upload", kind="exact", params={},
                                rows=[("q", "b", {}), ("r", "c", {})])
    Dataset.objects.update(version=7, row_count=0)
    migration.number_versions_and_count_rows(apps, None)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.version, a.row_count, b.version, b.row_count) == (1, 1, 1, 2)
