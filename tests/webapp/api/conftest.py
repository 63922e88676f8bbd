"""Clients for the API: one per persona, authenticated by a personal token as a script
would be; a real (idle) Redis for submissions that enqueue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from webapp.api.services import create_token


def token_client(user: Any, name: str = "script") -> Client:
    """A client that sends ``Authorization: Bearer <a new token of user>``."""
    _, key = create_token(user, name)
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def api_as() -> Callable[[Any], Client]:
    return token_client


@pytest.fixture
def broker(redis_url: str, settings: Any) -> Iterator[str]:
    """Submissions enqueue to a real Redis that no worker consumes; emptied afterwards."""
    import redis

    from workers.celery import app

    settings.CELERY_BROKER_URL = redis_url
    app.conf.broker_url = redis_url
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    yield redis_url
    connection.flushdb()
