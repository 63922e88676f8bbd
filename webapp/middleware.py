"""Small middleware of our own: the Content-Security-Policy header and the 503 for a
busy database (``webapp.errors``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from webapp.errors import busy_response, is_database_busy

logger = logging.getLogger(__name__)


class ContentSecurityPolicyMiddleware:
    """Sets ``settings.CONTENT_SECURITY_POLICY`` on every response that has none.

    The templates load only our own files from ``static/`` (htmx and Chart.js are
    vendored) and carry no inline scripts or styles; ``json_script`` blocks are data
    (``type="application/json"``), which a policy does not execute.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy: str = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = self.policy
        return response


class DatabaseBusyMiddleware:
    """A view that met a held database lock answers 503 "try again", not a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_busy(exception):
            return None
        logger.warning("database busy: %s %s answered 503 (%s)", request.method, request.path,
                       exception)
        return busy_response()
