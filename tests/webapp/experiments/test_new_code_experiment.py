"""Code experiments from the form: HumanEval, uploaded JSONL, CodeT/B4 and their errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import PASSWORD
from tests.webapp.experiments.test_new_experiment import form_data
from webapp.datasets.models import Dataset
from webapp.experiments.models import Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, owner):  # type: ignore[no-untyped-def]
    assert client.login(username=owner.username, password=PASSWORD)
    return client

ROW = {"prompt": "def inc(x):\n", "entry_point": "inc",
       "test": "def check(candidate):\n    assert candidate(1) == 2\n"}


def code_rows(**overrides: Any) -> dict[str, Any]:
    return {
        "rows": ["a1", "b2", "c3"],
        "s-b2-selector": "codet", "s-b2-sel__test_samples": "3",
        "s-c3-selector": "b4",
        **overrides,
    }


def test_humaneval_with_codet_and_b4_is_stored_with_test_pools(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    data = form_data(team, dataset_source="humaneval", humaneval_size="3", verifier="math",
                     **code_rows())
    response = logged_in.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get()
    assert experiment.dataset.kind == Dataset.Kind.CODE
    assert experiment.dataset.problems.count() == 3
    # Code is judged by its tests whatever verifier the select showed.
    assert experiment.verifier == "unit_tests"
    strategies = list(experiment.strategies.order_by("position"))
    assert [s.selector for s in strategies] == ["first", "codet", "b4"]
    assert strategies[0].test_pool is None and strategies[0].test_n == 0
    assert strategies[1].test_n == 3 and strategies[2].test_n == 10
    assert strategies[1].test_pool_id == strategies[2].test_pool_id
    assert strategies[1].test_pool.prompt_scheme == "generated_tests"
    assert strategies[1].test_pool.decoding["temperature"] == 0.8


def test_codet_on_a_dataset_without_tests_is_refused_with_a_message(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    response = logged_in.post(reverse("experiment-new"), form_data(team, **code_rows()))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Strategy 2: codet ranks programs by generated tests" in body
    assert "Strategy 3: b4" in body
    assert Experiment.objects.count() == 0


def test_unit_tests_on_arithmetic_is_refused(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    response = logged_in.post(reverse("experiment-new"), form_data(team, verifier="unit_tests"))
    assert response.status_code == 400
    assert "unit_tests runs a code dataset" in response.content.decode()


def test_an_uploaded_code_file_becomes_a_code_dataset(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    upload = SimpleUploadedFile("mine.jsonl", (json.dumps(ROW) + "\n").encode(),
                                content_type="application/jsonl")
    data = form_data(team, dataset_source="code_upload", code_file=upload)
    response = logged_in.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    dataset = Experiment.objects.get().dataset
    assert dataset.kind == Dataset.Kind.CODE and dataset.source == Dataset.Source.UPLOAD
    assert dataset.problems.get().metadata["entry_point"] == "inc"


def test_a_bad_upload_gets_line_numbered_errors_and_stores_nothing(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    text = json.dumps(ROW) + "\n{oops\n" + json.dumps({**ROW, "test": ""}) + "\n"
    upload = SimpleUploadedFile("bad.jsonl", text.encode())
    response = logged_in.post(reverse("experiment-new"),
                              form_data(team, dataset_source="code_upload", code_file=upload))
    assert response.status_code == 400
    body = response.content.decode()
    assert "bad.jsonl line 2: not valid JSON" in body
    assert "bad.jsonl line 3, field &#x27;test&#x27;: missing or empty." in body
    assert Experiment.objects.count() == 0 and Dataset.objects.count() == 0


def test_a_missing_or_binary_upload_is_explained(logged_in, team) -> None:  # type: ignore[no-untyped-def]
    response = logged_in.post(reverse("experiment-new"),
                              form_data(team, dataset_source="code_upload"))
    assert "Choose a JSONL file of code problems." in response.content.decode()
    upload = SimpleUploadedFile("x.jsonl", b'{"a": 1}\n\xff\xfe')
    response = logged_in.post(reverse("experiment-new"),
                              form_data(team, dataset_source="code_upload", code_file=upload))
    assert response.status_code == 400
    assert "x.jsonl line 2: not UTF-8 text." in response.content.decode()


def test_the_form_offers_the_code_datasets_and_selectors(logged_in) -> None:  # type: ignore[no-untyped-def]
    body = logged_in.get(reverse("experiment-new")).content.decode()
    assert 'value="humaneval"' in body and 'value="code_upload"' in body
    assert 'enctype="multipart/form-data"' in body
    assert ">codet<" in body and ">b4<" in body and "js/new_experiment.js" in body
