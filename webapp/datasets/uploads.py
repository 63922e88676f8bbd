"""Uploaded datasets, in two steps.

1. ``stage_upload``: the file, spooled to disk under the byte cap while the request body
   streams in (``CappedUploadHandler``), is copied under ``DATA_DIR/uploads`` with a
   random name, hashed on the way, and its format detected.
2. ``import_upload``: with the user's column mapping, every row is read and checked
   (pass 1: nothing is stored when any row is bad, and every bad row is named), then
   stored in one transaction in batches (pass 2). Same content, same dataset.

The file is only ever read a row at a time (``parsers.iter_records``), or, for pass 1
of a CSV, TSV or JSONL file, a block of records at a time (``columns``), so the web
process's memory stays bounded whatever the file holds.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import Http404, HttpRequest
from django.utils import timezone

from webapp.datasets.columns import columnar_content_key
from webapp.datasets.mapping import ColumnMapping, NormalRow, content_hash, normalise_records
from webapp.datasets.mapping import normalise as normalise_record
from webapp.datasets.mapping import preview as preview_file
from webapp.datasets.models import Dataset, DatasetUpload, upload_dir
from webapp.datasets.parsers import ErrorLog, UploadError, detect_format, iter_records
from webapp.datasets.presets import Preset, detect
from webapp.datasets.services import require_member, store_dataset
from webapp.teams.models import Team

MIB = 1 << 20
PREVIEW_ROWS = 10
STALE_AFTER = timedelta(days=1)
COPY_CHUNK = MIB
HEAD_BYTES = 4096
# Room for the multipart framing and the form's other fields around the file: a body
# longer than the cap plus this cannot hold a file within the cap.
BODY_OVERHEAD = 64 * 1024


def max_upload_bytes() -> int:
    return int(settings.STRATLAB_DATASET_MAX_BYTES)


def format_size(size: int) -> str:
    """>>> format_size(200 * MIB), format_size(1536), format_size(100)
    ('200 MiB', '1.5 KiB', '100 bytes')
    """
    if size >= MIB:
        return f"{round(size / MIB, 1):g} MiB"
    if size >= 1024:
        return f"{round(size / 1024, 1):g} KiB"
    return f"{size} bytes"


def too_large_message(file_name: str = "") -> str:
    message = (f"file is larger than the {format_size(max_upload_bytes())} limit "
               "(STRATLAB_DATASET_MAX_BYTES)")
    return f"{file_name}: {message}" if file_name else f"The {message}"


def body_too_large(request: HttpRequest) -> bool:
    """Whether the declared body alone shows the file is over the cap (nothing read)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > max_upload_bytes() + BODY_OVERHEAD


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Spools an uploaded file to a temporary file (never wholly into memory) and stops
    the upload as soon as the file passes ``max_bytes``; ``too_large`` then says so and
    the partial temporary file is gone."""

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.too_large = False
        self.rejected_name = ""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.max_bytes:
            self.too_large = True
            self.rejected_name = sanitise_file_name(self.file_name or "")
            # Django then closes (and so deletes) the partial file and reads the rest
            # of the body in chunks without keeping it.
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def sanitise_file_name(name: str) -> str:
    """The last path component, printable, at most 200 characters, never empty.

    The name is only ever shown (escaped) and passed to the parsers for messages and
    the format; the stored file has a random name.

    >>> sanitise_file_name("..\\\\..\\\\etc/pass\\x00wd.csv"), sanitise_file_name("  ..")
    ('passwd.csv', 'upload')
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip().lstrip(".")
    if len(name) > 200:
        stem, dot, suffix = name.rpartition(".")
        suffix = suffix[:16]
        name = stem[: 199 - len(suffix)] + dot + suffix if dot else name[:200]
    return name or "upload"


def _fail(file_name: str, message: str, location: str = "") -> UploadError:
    errors = ErrorLog(file_name)
    errors.add(location, message)
    return UploadError(errors)


# --- Step 1: staging ---------------------------------------------------------------------


def remove_stale_uploads() -> None:
    """Forget staged uploads older than a day, and their files (also files a crash left
    without a record)."""
    for upload in DatasetUpload.objects.filter(created__lt=timezone.now() - STALE_AFTER):
        discard_upload(upload)
    directory = upload_dir()
    if directory.is_dir():
        cutoff = time.time() - STALE_AFTER.total_seconds()
        for path in directory.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)


def stage_upload(
    team: Team, user: AbstractBaseUser | AnonymousUser, uploaded_file: UploadedFile
) -> DatasetUpload:
    """Keep an uploaded file for mapping: copied under a random name and hashed in one
    pass, its format detected and its first rows readable; ``UploadError`` otherwise."""
    require_member(user, team)
    remove_stale_uploads()
    file_name = sanitise_file_name(uploaded_file.name or "")
    cap = max_upload_bytes()
    if (uploaded_file.size or 0) > cap:
        raise _fail(file_name, too_large_message())
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    path = directory / stored_name
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with path.open("xb") as out:
            for chunk in uploaded_file.chunks(COPY_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise _fail(file_name, too_large_message())
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
        try:
            fmt = detect_format(file_name, head)
        except ValueError as exc:
            raise _fail(file_name, str(exc).removeprefix(f"{file_name}: ")) from None
        columns, _, errors = preview_file(path, file_name, fmt, rows=PREVIEW_ROWS)
        if not columns:
            # Nothing readable at all (empty, not this format): say so on the upload page.
            errors.raise_if_any()
            raise _fail(file_name, "has no rows")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return DatasetUpload.objects.create(
        team=team, created_by=user if user.is_authenticated else None,
        stored_name=stored_name, file_name=file_name, format=fmt, size=size,
        sha256=digest.hexdigest(),
    )


def get_upload_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> DatasetUpload:
    """The staged upload, if ``user`` belongs to its team; 404 for everybody else."""
    upload = None
    if user.is_authenticated:
        upload = (DatasetUpload.objects.filter(pk=pk, team__memberships__user=user)
                  .select_related("team").first())
    if upload is None:
        raise Http404("No such upload")
    return upload


def discard_upload(upload: DatasetUpload) -> None:
    Path(upload.path).unlink(missing_ok=True)
    if upload.pk is not None:
        upload.delete()


def preview_upload(
    upload: DatasetUpload,
) -> tuple[list[str], list[dict[str, Any]], Preset | None, ErrorLog]:
    """The columns and first rows of a staged file, the layout they look like (its
    mapping pre-fills the form), and the errors among those rows."""
    try:
        columns, rows, errors = preview_file(
            upload.path, upload.file_name, upload.format, rows=PREVIEW_ROWS
        )
    except UploadError as exc:
        errors = ErrorLog(upload.file_name)
        for message in exc.errors:
            errors.add("", message.removeprefix(f"{upload.file_name}: "))
        return [], [], None, errors
    return columns, rows, (detect(columns, rows) if columns else None), errors


def suggested_name(upload: DatasetUpload) -> str:
    stem, dot, _ = upload.file_name.rpartition(".")
    return (stem if dot and stem else upload.file_name)[:200]


# --- Step 2: import ----------------------------------------------------------------------


def _normal_rows(
    upload: DatasetUpload, mapping: ColumnMapping, errors: ErrorLog
) -> Iterator[tuple[str, NormalRow]]:
    """(location, row) for every good row; bad rows are reported to ``errors``."""
    records = iter_records(upload.path, upload.file_name, upload.format, errors,
                           max_rows=int(settings.STRATLAB_DATASET_MAX_ROWS))
    for record in records:
        row = normalise_record(mapping, record, errors)
        if row is not None:
            yield record.location, row


def _validated_rows(
    upload: DatasetUpload, mapping: ColumnMapping, errors: ErrorLog, counter: list[int]
) -> Iterator[NormalRow]:
    """Pass 1: every good row, repeated ids reported (each naming where the id first
    appeared); ``counter[0]`` counts the rows."""
    records = iter_records(upload.path, upload.file_name, upload.format, errors,
                           max_rows=int(settings.STRATLAB_DATASET_MAX_ROWS))
    for row in normalise_records(mapping, records, errors):
        counter[0] += 1
        yield row


def import_upload(
    upload: DatasetUpload, mapping: ColumnMapping, *, name: str, kind: str,
    description: str = "",
) -> Dataset:
    """Store a staged upload as a dataset of the upload's team, or return the team's
    dataset with the same content (same kind and mapping of the same rows).

    Pass 1 (``validate_upload``) reads and checks every row and hashes the content; on
    any error nothing is stored and ``UploadError`` lists the located messages. Pass 2
    (``store_upload``) reads the file again and inserts the rows in batches inside one
    transaction. The staged file goes once the dataset exists.
    """
    key = validate_upload(upload, mapping, kind)
    return store_upload(upload, mapping, key, name=name, kind=kind, description=description)


def validate_upload(upload: DatasetUpload, mapping: ColumnMapping, kind: str) -> str:
    """Pass 1: check every row, report every bad one (``UploadError``), and return the
    content key (the hash of the normalised rows, the mapping and the kind).

    A CSV, TSV or JSONL file goes a column at a time first (``columns``); a file that path
    does not settle (a bad row, another mapping) goes row by row, which names every fault.
    """
    if kind != mapping.kind:
        raise ValueError(f"kind {kind!r} differs from the mapping's kind {mapping.kind!r}")
    if not Path(upload.path).is_file():
        raise _fail(upload.file_name, "the staged file is gone; upload it again")
    key = columnar_content_key(upload.path, upload.format, mapping, kind,
                               max_rows=int(settings.STRATLAB_DATASET_MAX_ROWS))
    return validate_rows(upload, mapping, kind) if key is None else key


def validate_rows(upload: DatasetUpload, mapping: ColumnMapping, kind: str) -> str:
    """Pass 1 row by row, for every format: the key, or ``UploadError`` naming each fault."""
    errors = ErrorLog(upload.file_name)
    counter = [0]
    key = content_hash(_validated_rows(upload, mapping, errors, counter), mapping, kind)
    if not errors and counter[0] == 0:
        errors.add("", "has no rows")
    errors.raise_if_any()
    return key


def store_upload(
    upload: DatasetUpload, mapping: ColumnMapping, key: str, *, name: str, kind: str,
    description: str = "",
) -> Dataset:
    """Pass 2: store the validated upload (content ``key``) and discard the staged file."""

    def stored_rows() -> Iterator[tuple[str, str, dict[str, Any]]]:
        again = ErrorLog(upload.file_name)
        for _, row in _normal_rows(upload, mapping, again):
            yield row.prompt, row.answer, row.metadata
        # The staged file cannot change between passes; if it did, roll back.
        again.raise_if_any()

    dataset = store_dataset(
        upload.team, key=key, rows=stored_rows(), name=name.strip(), description=description,
        source=Dataset.Source.UPLOAD, kind=kind, params={}, mapping=mapping.to_dict(),
        file_name=upload.file_name, format=upload.format,
    )
    discard_upload(upload)
    return dataset
