"""Error pages: a busy database answers 503 with a readable message, never a traceback.

SQLite lets one writer in at a time; a request that waits longer than the busy timeout
(``STRATLAB_SQLITE_TIMEOUT``) for the write lock gets ``database is locked``. That is a
moment of contention, not a bug, so the user reads "try again" and the log a warning.
``DatabaseBusyMiddleware`` catches it from views; ``server_error`` (``handler500``) from
everything else (e.g. the session middleware saving a session after the view).
"""

from __future__ import annotations

import logging
import sys

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

logger = logging.getLogger(__name__)

BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")
RETRY_AFTER_SECONDS = 5


def is_database_busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a lock the database gave up waiting for."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OperationalError) and any(m in str(exc).lower() for m in BUSY_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def busy_response() -> HttpResponse:
    """The 503 page; rendered without a request so it touches no database."""
    body = loader.get_template("503.html").render()
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a busy database becomes a 503, anything else the 500 page."""
    if is_database_busy(sys.exc_info()[1]):
        return busy_response()
    return defaults.server_error(request)
