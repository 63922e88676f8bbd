"""SQLite under concurrency: WAL, a busy timeout, and a 503 page under a held lock."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path, reverse

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")


def test_it_opens_sqlite_in_wal_mode_with_a_busy_timeout(db) -> None:  # type: ignore[no-untyped-def]
    options = connection.settings_dict["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] == 20
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 20_000


@contextmanager
def held_write_lock() -> Iterator[None]:
    """A second connection holds the write lock; ours waits 0.2 s for it, not 20."""
    connection.close()
    with mock.patch.dict(connection.settings_dict["OPTIONS"], timeout=0.2):
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
            connection.close()


def assert_busy_page(response: HttpResponse) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.content.decode()
    assert "The database is busy" in body and "try again" in body
    assert "Traceback" not in body and "OperationalError" not in body


def test_it_answers_503_when_a_write_meets_a_held_lock(transactional_db, caplog) -> None:  # type: ignore[no-untyped-def]
    make_user("carol")
    client = Client(raise_request_exception=False)
    with held_write_lock(), caplog.at_level(logging.WARNING):
        # Logging in writes (a new session, last_login): it waits 0.2 s, then gives up.
        response = client.post(reverse("login"), {"username": "carol", "password": PASSWORD})
    assert_busy_page(response)
    assert any("database busy" in r.getMessage() for r in caplog.records)


def test_it_still_reads_under_a_held_write_lock(transactional_db) -> None:  # type: ignore[no-untyped-def]
    # WAL: readers are not blocked by a writer, so pages that only read keep working.
    user = make_user("dave")
    client = Client()
    client.force_login(user)
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE auth_user SET first_name = 'held' WHERE id = ?", (user.pk,))
    try:
        assert client.get(reverse("experiment-list")).status_code == 200
    finally:
        other.execute("ROLLBACK")
        other.close()


def locked_view(request: HttpRequest) -> HttpResponse:
    raise OperationalError("database is locked")


def other_error_view(request: HttpRequest) -> HttpResponse:
    raise OperationalError("no such table: nowhere")


urlpatterns = [path("locked/", locked_view), path("broken/", other_error_view)]
handler500 = "webapp.errors.server_error"


@override_settings(ROOT_URLCONF=__name__)
def test_it_turns_only_lock_errors_into_503(db) -> None:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=False)
    assert_busy_page(client.get("/locked/"))
    response = client.get("/broken/")
    assert response.status_code == 500
    assert b"Server error" in response.content


def test_it_recognises_a_lock_behind_a_wrapping_error() -> None:
    from webapp.errors import is_database_busy

    try:
        try:
            raise OperationalError("database is locked")
        except OperationalError as exc:
            raise RuntimeError("saving the session failed") from exc
    except RuntimeError as wrapped:
        assert is_database_busy(wrapped)
    assert not is_database_busy(OperationalError("disk I/O error"))
    assert not is_database_busy(None)
