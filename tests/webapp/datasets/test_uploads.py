"""Uploading a dataset through the pages: upload, preview and mapping, confirm, reuse;
bad files and bad mappings store nothing; the byte cap holds while the body streams."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from tests.webapp.datasets.pages import (
    MCQ_CSV,
    confirm,
    gsm8k_rows,
    jsonl,
    staged,
    upload,
    upload_and_confirm,
)
from webapp.datasets.models import Dataset, DatasetUpload

pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture
def client(client, owner):  # type: ignore[no-untyped-def]
    client.force_login(owner)
    return client


def staged_files(data_dir: Path) -> list[Path]:
    directory = data_dir / "uploads"
    return sorted(directory.iterdir()) if directory.exists() else []


def test_it_uploads_a_gsm8k_jsonl_with_its_preset_prefilled(client, team, data_dir) -> None:  # type: ignore[no-untyped-def]
    response = upload(client, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(3)))
    page = client.get(response.url)
    assert page.status_code == 200
    form = page.context["form"]
    assert page.context["preset"] is not None
    assert form["kind"].value() == "math"
    assert form["answer"].value() == "answer"
    assert form["answer_format"].value() == "gsm8k"
    assert form["name"].value() == "gsm8k"
    html = page.content.decode()
    assert "Natalia sold 0 clips" in html and 'id="preview-table"' in html

    done = confirm(client, staged(response).pk)
    assert done.status_code == 302
    dataset = Dataset.objects.get()
    assert done.url == reverse("dataset-detail", args=[dataset.pk])
    assert (dataset.name, dataset.version, dataset.kind, dataset.row_count) == (
        "gsm8k", 1, "math", 3)
    assert (dataset.source, dataset.file_name, dataset.format) == ("upload", "gsm8k.jsonl",
                                                                   "jsonl")
    assert dataset.mapping["answer_format"] == "gsm8k"
    first = dataset.problems.get(index=0)
    assert first.answer == "0" and first.prompt.startswith("Natalia sold 0 clips")
    detail = client.get(done.url)
    assert "Natalia sold 2 clips" in detail.content.decode()
    # The staged file and its record are gone once the dataset exists.
    assert staged_files(data_dir) == [] and DatasetUpload.objects.count() == 0


def test_it_uploads_a_multiple_choice_csv(client, team) -> None:  # type: ignore[no-untyped-def]
    response = upload(client, team, "quiz.csv", MCQ_CSV)
    page = client.get(response.url)
    form = page.context["form"]
    assert form["kind"].value() == "choice"
    assert list(form["choices"].value()) == ["A", "B", "C", "D"]
    assert form["answer_key"].value() == "answer"
    assert confirm(client, staged(response).pk).status_code == 302
    dataset = Dataset.objects.get()
    assert dataset.kind == "choice" and dataset.row_count == 3
    second = dataset.problems.get(index=1)
    # A quoted multi-line field is kept byte-exact.
    assert second.metadata["choices"] == ["green", "blue", "red", "multi\nline"]
    assert "Which colour, of these, is the sky?" in second.prompt
    assert second.answer != ""


def test_it_uploads_a_parquet_file(client, team, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = pa.table({
        "problem": ["What is $1+1$?", "What is $2+3$?"],
        "solution": ["So $\\boxed{2}$.", "Adding, $\\boxed{5}$."],
        "level": ["Level 1", "Level 2"],
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    response = upload(client, team, "math-train.parquet", buffer.getvalue())
    page = client.get(response.url)
    assert page.context["form"]["answer_format"].value() == "boxed"
    assert "What is $2+3$?" in page.content.decode()
    done = confirm(client, staged(response).pk, metadata=["level"])
    assert done.status_code == 302
    dataset = Dataset.objects.get()
    assert dataset.format == "parquet"
    assert [p.answer for p in dataset.problems.order_by("index")] == ["2", "5"]
    assert dataset.problems.get(index=1).metadata["level"] == "Level 2"


def test_a_prompt_template_over_several_columns(client, team) -> None:  # type: ignore[no-untyped-def]
    content = jsonl({"q": "2+2", "ctx": "sums", "a": "4"}, {"q": "3+3", "ctx": "sums", "a": "6"})
    done = upload_and_confirm(
        client, team, "t.jsonl", content, kind="exact", prompt="",
        template="Topic: {ctx}\nQuestion: {q}\nAnswer:", answer="a", answer_format="plain",
    )
    assert done.status_code == 302
    problem = Dataset.objects.get().problems.get(index=1)
    assert problem.prompt == "Topic: sums\nQuestion: 3+3\nAnswer:" and problem.answer == "6"


def test_the_same_content_again_gives_the_same_dataset(client, team, data_dir) -> None:  # type: ignore[no-untyped-def]
    first = upload_and_confirm(client, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(3)))
    again = upload_and_confirm(client, team, "copy.jsonl", jsonl(*gsm8k_rows(3)))
    assert again.url == first.url
    assert Dataset.objects.count() == 1 and staged_files(data_dir) == []


def test_different_content_under_the_same_name_is_a_new_version(client, team) -> None:  # type: ignore[no-untyped-def]
    upload_and_confirm(client, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(3)))
    done = upload_and_confirm(client, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(4, offset=10)))
    second = Dataset.objects.get(version=2)
    assert done.url == reverse("dataset-detail", args=[second.pk])
    assert second.name == "gsm8k" and second.row_count == 4
    html = client.get(done.url).content.decode()
    first = Dataset.objects.get(version=1)
    assert f'href="{reverse("dataset-detail", args=[first.pk])}"' in html
    assert "v2" in html


def test_bad_rows_are_listed_with_their_lines_and_nothing_is_stored(client, team, data_dir) -> None:  # type: ignore[no-untyped-def]
    good = gsm8k_rows(1)[0]
    content = jsonl(good, '{"question": "truncated', {"question": "q", "answer": [7]}, good)
    response = upload(client, team, "bad.jsonl", content)
    page = client.get(response.url)
    assert 'id="preview-errors"' in page.content.decode()
    done = confirm(client, staged(response).pk)
    assert done.status_code == 400
    html = done.content.decode()
    assert "2 errors" in html
    assert "bad.jsonl, line 2: is not valid JSON" in html
    assert "bad.jsonl, line 3, field &#x27;answer&#x27;: must be a string" in html
    assert Dataset.objects.count() == 0
    # The staged file stays, so a corrected mapping can be tried without uploading again.
    assert len(staged_files(data_dir)) == 1


def test_errors_past_the_cap_are_counted(client, team) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(*gsm8k_rows(1), *(["{not json"] * 1000))
    done = upload_and_confirm(client, team, "many.jsonl", content)
    assert done.status_code == 400
    html = done.content.decode()
    assert "1000 errors" in html and "and 950 more" in html
    assert html.count("<li>many.jsonl, line ") == 50
    assert Dataset.objects.count() == 0


def test_duplicate_ids_are_rejected_and_listed(client, team) -> None:  # type: ignore[no-untyped-def]
    rows = [{"id": i, **row} for i, row in zip([1, 2, 1, 2], gsm8k_rows(4), strict=True)]
    done = upload_and_confirm(client, team, "dup.jsonl", jsonl(*rows), id="id")
    assert done.status_code == 400
    html = done.content.decode()
    assert ("dup.jsonl, line 3, field &#x27;id&#x27;: repeats the id &#x27;1&#x27; "
            "(first on line 1)") in html
    assert "line 4" in html and Dataset.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.jsonl", b"", "empty.jsonl"),
        ("blank.csv", b"   \n\n", "blank.csv"),
        ("header.csv", b"question,answer\n", "header.csv"),
        ("notes.txt", b"hello there\n", "cannot tell the file&#x27;s format"),
        ("latin.jsonl", '{"question": "caf\xe9"}\n'.encode("latin-1"), "line 1"),
    ],
)
def test_unreadable_files_are_refused_at_upload(client, team, data_dir, name, content,  # type: ignore[no-untyped-def]
                                                expected) -> None:
    response = upload(client, team, name, content)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []


def test_a_bad_mapping_is_a_field_error_and_stores_nothing(client, team) -> None:  # type: ignore[no-untyped-def]
    response = upload(client, team, "gsm8k.jsonl", jsonl(*gsm8k_rows(2)))
    done = confirm(client, staged(response).pk, kind="math", answer="")
    assert done.status_code == 400
    assert done.context["form"].errors.get("answer")
    assert Dataset.objects.count() == 0


def test_a_file_over_the_cap_is_refused_while_it_streams(client, team, data_dir, settings,  # type: ignore[no-untyped-def]
                                                         tmp_path) -> None:
    settings.STRATLAB_DATASET_MAX_BYTES = 1024
    response = upload(client, team, "big.jsonl", jsonl(*gsm8k_rows(40)))
    assert response.status_code == 413
    assert ("big.jsonl: file is larger than the 1 KiB limit (STRATLAB_DATASET_MAX_BYTES)"
            in response.content.decode())
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []
    assert list((tmp_path / "spool").iterdir()) == []  # the partial spool file is gone


def test_a_body_declared_over_the_cap_is_refused_before_it_is_read(client, team, data_dir,  # type: ignore[no-untyped-def]
                                                                   settings, monkeypatch) -> None:
    settings.STRATLAB_DATASET_MAX_BYTES = 1024

    def unread(*args: object) -> None:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr("django.http.multipartparser.MultiPartParser.parse", unread)
    response = upload(client, team, "huge.jsonl", b"x" * 200_000)
    assert response.status_code == 413
    assert ("file is larger than the 1 KiB limit (STRATLAB_DATASET_MAX_BYTES)"
            in response.content.decode())
    assert DatasetUpload.objects.count() == 0


def test_the_upload_still_checks_the_csrf_token(team, owner, data_dir) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    response = upload(browser, team, "g.jsonl", jsonl(*gsm8k_rows(1)))
    assert response.status_code == 403
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []


def test_the_file_is_spooled_to_disk_not_memory(client, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from webapp.datasets import uploads

    seen = []
    real = uploads.stage_upload

    def spy(team, user, uploaded_file):  # type: ignore[no-untyped-def]
        seen.append(type(uploaded_file))
        return real(team, user, uploaded_file)

    monkeypatch.setattr(uploads, "stage_upload", spy)
    staged(upload(client, team, "small.jsonl", jsonl(*gsm8k_rows(1))))
    assert seen == [TemporaryUploadedFile]


def test_an_unsafe_file_name_is_escaped(client, team) -> None:  # type: ignore[no-untyped-def]
    name = "<img src=x onerror=alert(1)>\"quiz'.jsonl"
    upload_pk = staged(upload(client, team, name, jsonl(*gsm8k_rows(1)))).pk
    assert DatasetUpload.objects.get(pk=upload_pk).file_name == name
    html = client.get(reverse("dataset-map", args=[upload_pk])).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    done = confirm(client, upload_pk)
    html = client.get(done.url).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_uploaded_text_is_escaped_on_the_map_and_detail_pages(client, team) -> None:  # type: ignore[no-untyped-def]
    evil = '<script>alert("x")</script><a hx-get="/datasets/" hx-trigger="load">go</a>'
    content = jsonl({"question": evil, "answer": evil + " #### 4", evil: "col"})
    response = upload(client, team, "evil.jsonl", content)
    for html in (client.get(response.url).content.decode(),):
        assert "<script>alert" not in html and 'hx-get="/datasets/"' not in html
        assert "&lt;script&gt;alert" in html
    done = confirm(client, staged(response).pk)
    assert done.status_code == 302
    html = client.get(done.url).content.decode()
    assert "<script>alert" not in html and 'hx-get="/datasets/"' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_stale_staged_uploads_go_when_a_new_upload_starts(client, team, data_dir) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    from django.utils import timezone

    old = staged(upload(client, team, "old.jsonl", jsonl(*gsm8k_rows(1))))
    DatasetUpload.objects.filter(pk=old.pk).update(
        created=timezone.now() - timezone.timedelta(days=2)
    )
    orphan = data_dir / "uploads" / "orphan"
    orphan.write_bytes(b"left by a crash")
    os.utime(orphan, (time.time() - 3 * 86400,) * 2)
    new = staged(upload(client, team, "new.jsonl", jsonl(*gsm8k_rows(1))))
    assert list(DatasetUpload.objects.values_list("pk", flat=True)) == [new.pk]
    assert staged_files(data_dir) == [data_dir / "uploads" / new.stored_name]


def test_discarding_a_staged_upload_removes_its_file(client, team, data_dir) -> None:  # type: ignore[no-untyped-def]
    upload_pk = staged(upload(client, team, "x.jsonl", jsonl(*gsm8k_rows(1)))).pk
    response = client.post(reverse("dataset-upload-discard", args=[upload_pk]))
    assert response.status_code == 302
    assert DatasetUpload.objects.count() == 0 and staged_files(data_dir) == []


GOOD = '{"question": "What is 1+1?", "answer": "1+1=2\\n#### 2"}'
DEEP = "[" * 5000 + "]" * 5000
BAD_FILES = [
    # (file name, content, a located message the page must show)
    ("truncated.jsonl", f'{GOOD}\n{{"question": "b", "ans'.encode(),
     "truncated.jsonl, line 2: is not valid JSON"),
    ("invalid.jsonl", f"{GOOD}\n{{'question': 'b'}}\n".encode(), "invalid.jsonl, line 2"),
    ("latin1.jsonl", f'{GOOD}\n{{"question": "caf\xe9", "answer": "#### 1"}}\n'.encode("latin-1"),
     "latin1.jsonl, line 2: is not valid UTF-8"),
    ("missing.jsonl", f'{GOOD}\n{{"question": "b"}}\n'.encode(),
     "missing.jsonl, line 2, field &#x27;answer&#x27;"),
    ("typed.jsonl", f'{GOOD}\n{{"question": ["b"], "answer": "#### 1"}}\n'.encode(),
     "typed.jsonl, line 2, field &#x27;question&#x27;"),
    ("deep.jsonl", f'{GOOD}\n{{"question": "b", "answer": "#### 1", "x": {DEEP}}}\n'.encode(),
     "deep.jsonl, line 2: is nested too deeply"),
    ("digits.jsonl", f'{GOOD}\n{{"question": "b", "answer": "#### 1", "n": {"9" * 5000}}}\n'
     .encode(), "digits.jsonl, line 2: holds an integer with more than"),
    ("nan.jsonl", f'{GOOD}\n{{"question": "b", "answer": NaN}}\n'.encode(),
     "nan.jsonl, line 2, field &#x27;answer&#x27;: holds NaN"),
    ("inf.jsonl", f'{GOOD}\n{{"question": "b", "answer": -Infinity}}\n'.encode(),
     "inf.jsonl, line 2, field &#x27;answer&#x27;: holds -Infinity"),
    ("nul.jsonl", f'{GOOD}\n{{"question": "a\\u0000b", "answer": "#### 1"}}\n'.encode(),
     "nul.jsonl, line 2, field &#x27;question&#x27;: contains a NUL"),
    ("quotes.csv", b'question,answer\nWhat is 1+1?,2\n"What is 2+2?,4\n',
     "quotes.csv, record 2 (line 3): has an unbalanced quote"),
    ("huge.csv", b"question,answer\nWhat is 1+1?,2\n" + b"x" * (1_100_000) + b",4\n",
     "huge.csv, record 2 (line 3): has a field longer than 1048576 bytes"),
    ("empty.jsonl", b"", "empty.jsonl: has no rows"),
    ("spaces.jsonl", b"  \n\t\n", "spaces.jsonl: has no rows"),
    ("header.csv", b"question,answer\r\n", "header.csv: has no rows"),
]


@pytest.mark.parametrize(("name", "content", "expected"), BAD_FILES,
                         ids=[name for name, _, _ in BAD_FILES])
def test_every_bad_input_class_gets_its_located_message_and_nothing_is_stored(  # type: ignore[no-untyped-def]
        client, team, data_dir, name, content, expected) -> None:
    response = upload(client, team, name, content)
    if response.status_code == 302:  # readable enough to map: the whole file is checked now
        response = confirm(client, staged(response).pk)
    assert response.status_code == 400
    html = response.content.decode()
    assert expected in html, html[html.find('id="upload-errors"'):][:1500]
    assert Dataset.objects.count() == 0


def test_bom_crlf_blank_lines_and_no_final_newline_are_accepted(client, team) -> None:  # type: ignore[no-untyped-def]
    rows = [f'{{"question": "q{i}\u2028still q{i}", "answer": "#### {i}"}}' for i in range(3)]
    content = ("\ufeff" + rows[0] + "\r\n\r\n" + rows[1] + "\r\n" + rows[2]).encode()
    done = upload_and_confirm(client, team, "ok.jsonl", content)
    assert done.status_code == 302
    dataset = Dataset.objects.get()
    assert dataset.row_count == 3
    assert dataset.problems.get(index=2).prompt == "q2\u2028still q2"
