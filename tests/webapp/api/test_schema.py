"""Property-based tests of the API against its own OpenAPI schema (schemathesis): every
documented operation, with inputs that fit the schema and inputs that do not, answers
without a server error and as its schema says. Requests go through the WSGI app, as a
user of a team with a finished experiment, authenticated by a personal token."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.webapp.experiments import review_data
from webapp.api import urls as api_urls
from webapp.api.services import create_token
from webapp.wsgi import application

# Cases per operation; raise it for a longer search (STRATLAB_SCHEMA_EXAMPLES=200).
MAX_EXAMPLES = int(os.environ.get("STRATLAB_SCHEMA_EXAMPLES", "12"))


@pytest.fixture
def wsgi_in_test_transaction(db: None) -> Iterator[None]:
    """Requests through the WSGI app must not close the test's database connection
    (Django's own test client disconnects the same handlers while it sends one)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)




@pytest.fixture
def seeded(wsgi_in_test_transaction: None, team: Any, viewer: Any, settings: Any,
           tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A finished experiment of the owner's team (ids to aim at) and the owner's token."""
    settings.DATA_DIR = tmp_path / "data"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    experiment = review_data.build(team)
    owner = team.memberships.get(role="owner").user
    _, key = create_token(owner, "schemathesis")
    yield {"ids": {"experiments": experiment.pk, "datasets": experiment.dataset_id},
           "headers": {"Authorization": f"Bearer {key}"}}


# The schema as the app serves it (read once, when the tests are collected); cases
# that fit it and cases that do not.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_the_schema_documents_every_api_url() -> None:
    documented = {path for path, _ in ((op.path, op.method) for op in _operations())}
    routes = {"/api/v1/" + str(p.pattern).replace("<int:pk>", "{id}")
              for p in api_urls.urlpatterns if p.name not in ("api-schema", "api-docs")}
    assert documented == routes
    methods = {(op.path, op.method.upper()) for op in _operations()}
    assert ("/api/v1/experiments/{id}/", "DELETE") in methods
    assert ("/api/v1/datasets/", "POST") in methods


def _operations() -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@schema.parametrize()
@hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))
def test_every_operation_answers_without_a_server_error(case: Any,
                                                        seeded: dict[str, Any]) -> None:
    path = case.operation.path
    if "id" in (case.path_parameters or {}) and isinstance(case.path_parameters["id"], int) \
            and case.method.upper() != "DELETE" and case.path_parameters["id"] % 2 == 0:
        # Half of the ids aim at the seeded objects, so their operations answer with data
        # rather than 404 (deleting them would leave the rest nothing to read).
        resource = "datasets" if path.startswith("/api/v1/datasets/") else "experiments"
        case.path_parameters["id"] = seeded["ids"][resource]
    case.call_and_validate(headers=seeded["headers"],
                           checks=[not_a_server_error, response_schema_conformance])
