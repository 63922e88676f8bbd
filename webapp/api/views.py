"""API views for the registry and datasets: thin functions, as the pages are. They
fetch through the same team-scoped services (another team's dataset is a 404), check
roles with ``teams.services.require_role`` (a viewer's write is a 403) and validate
uploads with ``datasets.uploads``, exactly as the pages do."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from webapp.api import serializers as s
from webapp.api.catalogue import catalogue
from webapp.api.pagination import Pagination
from webapp.datasets import services as datasets
from webapp.datasets import uploads
from webapp.datasets.forms import MAPPING_FIELDS, MappingForm, mapping_initial
from webapp.datasets.models import Dataset, DatasetUpload
from webapp.datasets.parsers import UploadError
from webapp.experiments.services import model_choices
from webapp.teams.models import Membership, Team
from webapp.teams.services import require_role, team_summaries

NOT_FOUND = {404: s.DetailSerializer}
AUTH = {401: s.DetailSerializer}
TEAM_FILTER = OpenApiParameter("team", str, description="Only this team's (its slug).")


def text_param(request: Request, name: str) -> str:
    """A query parameter as text ("" when absent), without NUL characters (no stored text
    has them, and PostgreSQL refuses them in a query)."""
    return str(request.query_params.get(name, "")).replace("\x00", "").strip()


def paged(request: Request, rows: Any, serializer: Any, **context: Any) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


def errors(by_field: dict[str, list[str]], code: int = 400, **extra: Any) -> Response:
    return Response({"errors": by_field, **extra}, status=code)


def team_for_write(user: Any, slug: object) -> Team | Response:
    """The user's team called ``slug`` if they may change it: a 400 naming the field for a
    team they are not in (as the form's "not a valid choice"), 403 for a viewer."""
    team = None
    if isinstance(slug, str) and slug and "\x00" not in slug:
        team = Team.objects.filter(slug=slug, memberships__user=user).first()
    if team is None:
        return errors({"team": [f"No team {slug!r} among yours; GET /api/v1/teams/ lists "
                                "them by slug."]})
    require_role(user, team, Membership.Role.MEMBER)
    return team


@extend_schema(responses={200: s.ModelSerializer(many=True), **AUTH})
@api_view(["GET"])
def model_list(request: Request) -> Response:
    """The models the workers can load (the registry), and the default one."""
    rows = [{"name": name, "label": label, "is_default": name == settings.STRATLAB_DEFAULT_MODEL}
            for name, label in model_choices()]
    return Response(s.ModelSerializer(rows, many=True).data)


@extend_schema(responses={200: s.CatalogueSerializer, **AUTH})
@api_view(["GET"])
def strategy_catalogue(request: Request) -> Response:
    """Every registered sampler, decoder, prompting scheme, verifier and selector with its
    config fields: type, default, bounds (from the config's own validation, the other
    fields at their defaults) and whether a spec may set it."""
    return Response(catalogue())


@extend_schema(responses={200: s.TeamSerializer(many=True), **AUTH})
@api_view(["GET"])
def team_list(request: Request) -> Response:
    """The user's teams with their role in each (slugs name teams in specs and uploads)."""
    return Response(s.TeamSerializer(team_summaries(request.user), many=True).data)


# --- Datasets -------------------------------------------------------------------------


def capped_upload(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Put the pages' capped, disk-spooling upload handler in place before anything
    (DRF's parsers, the session's CSRF check) reads the body."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        handler = uploads.CappedUploadHandler(request, uploads.max_upload_bytes())
        request.upload_handlers = [handler]
        request.capped_upload_handler = handler  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapped


@extend_schema(methods=["GET"], parameters=[TEAM_FILTER], operation_id="datasets_list",
               responses={200: s.page_of(s.DatasetSerializer), **AUTH})
@extend_schema(
    methods=["POST"], request={"multipart/form-data": s.DatasetUploadSerializer},
    responses={201: s.DatasetSerializer, 400: s.ErrorsSerializer, 403: s.DetailSerializer,
               413: s.ErrorsSerializer, **AUTH},
    description="Upload a file as a dataset of the team, checked as the upload page checks "
                "it: every bad row is named (file, line or row, column). Without `mapping` "
                "the recognised layout's is used.",
)
@capped_upload
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser])
def dataset_list(request: Request) -> Response:
    """The datasets of the user's teams (newest version first), or upload one."""
    if request.method == "POST":
        return _upload(request)
    rows = datasets.datasets_for_user(request.user)
    if text_param(request, "team"):
        rows = rows.filter(team__slug=text_param(request, "team"))
    return paged(request, rows, s.DatasetSerializer)


def _upload(request: Request) -> Response:
    if uploads.body_too_large(request._request):
        return errors({"file": [uploads.too_large_message()]}, 413)
    team = team_for_write(request.user, request.data.get("team"))
    if isinstance(team, Response):
        return team
    handler = request._request.capped_upload_handler
    if handler.too_large:
        return errors({"file": [uploads.too_large_message(handler.rejected_name)]}, 413)
    file = request.FILES.get("file")
    if file is None:
        return errors({"file": ["Send the file as the multipart field 'file'."]})
    try:
        upload = uploads.stage_upload(team, request.user, file)
    except UploadError as exc:
        return errors({"file": exc.errors}, total=exc.total)
    try:
        return _import(request, upload)
    finally:
        uploads.discard_upload(upload)  # imported or refused: nothing stays staged


def _import(request: Request, upload: DatasetUpload) -> Response:
    columns, _, preset, _ = uploads.preview_upload(upload)
    raw = request.data.get("mapping")
    if raw:
        try:
            mapping = json.loads(raw)
        except json.JSONDecodeError as exc:
            return errors({"mapping": [f"Not JSON: {exc}."]})
        if not isinstance(mapping, dict):
            return errors({"mapping": ["Expected a JSON object of mapping fields."]})
        unknown = [key for key in mapping if key not in MAPPING_FIELDS]
        if unknown:
            return errors({f"mapping.{key}": [f"Unknown field; a mapping takes: "
                                              f"{', '.join(MAPPING_FIELDS)}."] for key in unknown})
    elif preset is None:
        return errors({"mapping": [f"{upload.file_name}: the layout of the columns "
                                   f"({', '.join(columns[:20])}) is not one StratLab "
                                   "recognises; send a mapping."]})
    else:
        mapping = mapping_initial(preset, columns)
    # As the page's form starts: the whole value is the answer unless the mapping says.
    values = {"answer_format": "plain", **mapping,
              "name": request.data.get("name") or uploads.suggested_name(upload),
              "description": request.data.get("description", "")}
    if request.data.get("kind"):
        values["kind"] = request.data["kind"]
    form = MappingForm(values, columns=columns)
    if not form.is_valid():
        return errors({_mapping_path(name): [str(m) for m in messages]
                       for name, messages in form.errors.items()})
    data = form.cleaned_data
    try:
        dataset = uploads.import_upload(upload, data["mapping"], name=data["name"],
                                        kind=data["kind"], description=data["description"])
    except UploadError as exc:
        return errors({"file": exc.errors}, total=exc.total)
    return Response(s.DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


def _mapping_path(form_field: str) -> str:
    if form_field in ("name", "description", "kind"):
        return form_field
    return "mapping" if form_field == "__all__" else f"mapping.{form_field}"


@extend_schema(responses={200: s.DatasetSerializer, **NOT_FOUND, **AUTH})
@api_view(["GET"])
def dataset_detail(request: Request, pk: int) -> Response:
    return Response(s.DatasetSerializer(datasets.get_dataset_for_user(request.user, pk)).data)


@extend_schema(
    parameters=[OpenApiParameter("q", str, description="Only problems whose prompt or "
                                                      "answer contains this.")],
    responses={200: s.page_of(s.ProblemSerializer), **NOT_FOUND, **AUTH},
    operation_id="datasets_problems_list",
)
@api_view(["GET"])
def dataset_problems(request: Request, pk: int) -> Response:
    """The dataset's rows in order, paged."""
    dataset: Dataset = datasets.get_dataset_for_user(request.user, pk)
    rows = datasets.problem_rows(dataset, text_param(request, "q"))
    return paged(request, rows, s.ProblemSerializer)

