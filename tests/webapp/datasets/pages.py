"""Helpers for the dataset page tests: upload a file and confirm its mapping the way a
browser does (the form's pre-filled values posted back, with any changes)."""

from __future__ import annotations

import json
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import MultipleChoiceField
from django.test import Client
from django.urls import reverse

from webapp.datasets.models import DatasetUpload


def jsonl(*rows: object) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def gsm8k_rows(n: int = 3, offset: int = 0) -> list[dict[str, str]]:
    return [
        {"question": f"Natalia sold {i + offset} clips in April. How many in total?",
         "answer": f"She sold {i + offset} clips.\n#### {i + offset}"}
        for i in range(n)
    ]


MCQ_CSV = (
    b"question,A,B,C,D,answer\r\n"
    b"What is 2+2?,3,4,5,6,B\r\n"
    b'"Which colour, of these, is the sky?",green,blue,red,"multi\nline",B\r\n'
    b"Largest planet?,Mars,Venus,Jupiter,Earth,C\r\n"
)


def upload(client: Client, team: Any, name: str, content: bytes, **extra: Any) -> Any:
    """POST a file to the upload page (not followed)."""
    return client.post(
        reverse("dataset-upload"),
        {"team": team.pk, "file": SimpleUploadedFile(name, content)},
        **extra,
    )


def staged(response: Any) -> DatasetUpload:
    """The upload a successful upload POST redirected to the map page of."""
    assert response.status_code == 302, response.content.decode()[:2000]
    pk = int(response.url.rstrip("/").rsplit("/", 1)[-1])
    return DatasetUpload.objects.get(pk=pk)


def form_values(form: Any) -> dict[str, Any]:
    """What a browser posts for ``form`` as rendered (its initial or bound values)."""
    data: dict[str, Any] = {}
    for field in form:
        value = field.value()
        if value is None:
            value = [] if isinstance(field.field, MultipleChoiceField) else ""
        if isinstance(value, (list, tuple)):
            data[field.html_name] = [str(v) for v in value]
        else:
            data[field.html_name] = str(value)
    return data


def confirm(client: Client, upload_pk: int, **changes: Any) -> Any:
    """Open the map page and post its pre-filled form back with ``changes``."""
    page = client.get(reverse("dataset-map", args=[upload_pk]))
    assert page.status_code == 200, page.content.decode()[:2000]
    data = {**form_values(page.context["form"]), **changes}
    return client.post(reverse("dataset-map", args=[upload_pk]), data)


def upload_and_confirm(client: Client, team: Any, name: str, content: bytes,
                       **changes: Any) -> Any:
    return confirm(client, staged(upload(client, team, name, content)).pk, **changes)
