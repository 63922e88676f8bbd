"""Uploaded datasets end to end: upload and map on the Datasets pages, run an experiment
on each from the new-experiment form (tasks called in-process with the tiny model), then
reuse one in a second experiment without uploading again."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from tests.webapp.datasets.pages import MCQ_CSV, gsm8k_rows, jsonl, upload_and_confirm
from tests.webapp.experiments.test_new_experiment import form_data
from tests.workers.test_tasks import run_all, worker_settings  # noqa: F401 (fixture)
from webapp.datasets.models import Dataset
from webapp.experiments.models import Experiment, ProblemResult, Sample

pytestmark = pytest.mark.django_db


def _parquet() -> bytes:
    table = pa.table({
        "question": ["2 + 3 = ?", "Capital of Italy?"],
        "choices": [["4", "5", "6"], ["Rome", "Milan", "Turin"]],
        "answer": [1, 0],
    })
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _run(client: Any, team: Any, dataset: Dataset, name: str, **overrides: Any) -> Experiment:
    data = form_data(team, name=name, model_name="tiny-random", dataset_source="saved",
                     dataset=str(dataset.pk), verifier="math", n_samples="2",
                     max_new_tokens="4", **overrides)
    response = client.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    experiment = Experiment.objects.get(name=name)
    run_all(experiment)
    experiment.refresh_from_db()
    return experiment


def test_uploaded_datasets_run_from_the_form_and_are_reused(
    client: Any, owner: Any, team: Any, worker_settings: Any,  # noqa: F811
) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    files = [("gsm8k.jsonl", jsonl(*gsm8k_rows(3)), "math"),
             ("quiz.csv", MCQ_CSV, "choice"),
             ("mmlu.parquet", _parquet(), "choice")]
    for file_name, content, kind in files:
        response = upload_and_confirm(client, team, file_name, content)
        assert response.status_code == 302, response.content.decode()[-2000:]
        dataset = Dataset.objects.get(file_name=file_name)
        assert dataset.kind == kind

        experiment = _run(client, team, dataset, f"On {file_name}")
        assert experiment.status == Experiment.Status.FINISHED, experiment.error
        assert experiment.verifier == kind
        problems = dataset.problems.count()
        assert ProblemResult.objects.filter(strategy__experiment=experiment).count() == (
            3 * problems)

    # A second experiment on the same upload: no new dataset, the same sample pools.
    gsm8k = Dataset.objects.get(file_name="gsm8k.jsonl")
    samples = Sample.objects.count()
    again = _run(client, team, gsm8k, "Again", subset_mode="first", subset_k="2")
    assert again.status == Experiment.Status.FINISHED, again.error
    assert Dataset.objects.filter(file_name="gsm8k.jsonl").count() == 1
    assert Sample.objects.count() == samples  # its first two problems were sampled already
    assert ProblemResult.objects.filter(strategy__experiment=again).count() == 3 * 2
