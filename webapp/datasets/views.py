"""Dataset pages: thin functions that fetch team-scoped, bind a form, call a service."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.datasets import services, uploads
from webapp.datasets.forms import MappingForm, RenameForm, UploadForm, mapping_initial
from webapp.datasets.models import Dataset
from webapp.datasets.parsers import MAX_ERRORS, UploadError
from webapp.teams.models import Membership
from webapp.teams.services import check_chosen_team, teams_for_user, teams_with_role

ROWS_PER_PAGE = 50


@login_required
@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = services.datasets_for_user(request.user).prefetch_related("experiments")
    return render(
        request, "datasets/list.html", {"datasets": datasets, "built_in": services.BUILT_IN}
    )


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request: HttpRequest) -> HttpResponse:
    """Step 1: receive a file. The capped, disk-spooling upload handler must be in place
    before anything reads the body, and the CSRF check reads it: so this outer view is
    exempt and the inner one checks (Django's documented pattern)."""
    handler = uploads.CappedUploadHandler(request, uploads.max_upload_bytes())
    request.upload_handlers = [handler]
    if request.method == "POST" and uploads.body_too_large(request):
        # Refused from the declared length alone, before a byte of the body is read.
        form = UploadForm(teams=teams_for_user(request.user))
        return _upload_page(request, form, [uploads.too_large_message()], status=413)
    return _dataset_upload(request, handler)


@csrf_protect
def _dataset_upload(
    request: HttpRequest, handler: uploads.CappedUploadHandler
) -> HttpResponse:
    if not teams_for_user(request.user):
        raise Http404("You belong to no team")
    # Uploading is a member's change: viewers get 403.
    teams = teams_with_role(request.user, Membership.Role.MEMBER)
    if not teams:
        raise PermissionDenied("Viewers cannot upload datasets.")
    if request.method != "POST":
        return _upload_page(request, UploadForm(teams=teams))
    check_chosen_team(request.user, request.POST.get("team"), Membership.Role.MEMBER)
    form = UploadForm(request.POST, request.FILES, teams=teams)
    if handler.too_large:
        return _upload_page(
            request, form, [uploads.too_large_message(handler.rejected_name)], status=413
        )
    if not form.is_valid():
        return _upload_page(request, form, status=400)
    try:
        upload = uploads.stage_upload(
            form.cleaned_data["team"], request.user, form.cleaned_data["file"]
        )
    except UploadError as exc:
        return _upload_page(request, form, exc.errors, total=exc.total, status=400)
    return redirect("dataset-map", pk=upload.pk)


def _upload_page(
    request: HttpRequest, form: UploadForm, errors: list[str] | None = None, *,
    total: int | None = None, status: int = 200,
) -> HttpResponse:
    context = {"form": form, "max_size": uploads.format_size(uploads.max_upload_bytes()),
               **_error_context(errors or [], total)}
    return render(request, "datasets/upload.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_map(request: HttpRequest, pk: int) -> HttpResponse:
    """Step 2: preview the staged file, map its columns, import it."""
    upload = uploads.get_upload_for_user(request.user, pk)
    services.require_member(request.user, upload.team)
    columns, rows, preset, preview_errors = uploads.preview_upload(upload)
    errors: list[str] = []
    total = 0
    if request.method == "POST":
        form = MappingForm(request.POST, columns=columns)
        if form.is_valid():
            data = form.cleaned_data
            try:
                dataset = uploads.import_upload(
                    upload, data["mapping"], name=data["name"], kind=data["kind"],
                    description=data["description"],
                )
            except UploadError as exc:
                errors, total = exc.errors, exc.total
            else:
                return redirect("dataset-detail", pk=dataset.pk)
    else:
        form = MappingForm(
            columns=columns,
            initial={"name": uploads.suggested_name(upload), **mapping_initial(preset, columns)},
        )
    context = {
        "upload": upload, "columns": columns,
        "rows": [[_cell(r.get(c)) for c in columns] for r in rows],
        "preset": preset, "preview_errors": preview_errors, "form": form,
        **_error_context(errors, total),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "datasets/map.html", context, status=status)


def _error_context(errors: list[str], total: int | None) -> dict[str, Any]:
    """The located messages (at most ``MAX_ERRORS`` are kept), the total, and how many
    were left out ("and 950 more")."""
    total = total or len(errors)
    return {"errors": errors, "error_total": total,
            "errors_hidden": max(total - MAX_ERRORS, 0)}


def _cell(value: Any) -> str:
    """A preview cell as text: strings as they are, other values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


@login_required
@require_POST
def upload_discard(request: HttpRequest, pk: int) -> HttpResponse:
    upload = uploads.get_upload_for_user(request.user, pk)
    services.require_member(request.user, upload.team)
    uploads.discard_upload(upload)
    return redirect("dataset-list")


@login_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = services.get_dataset_for_user(request.user, pk)
    context = _detail_context(request, dataset)
    template = "datasets/detail.html"
    if getattr(request, "htmx", False):
        template += "#rows"
    return render(request, template, context)


def _detail_context(request: HttpRequest, dataset: Dataset, **extra: Any) -> dict[str, Any]:
    query = request.GET.get("q", "").strip()
    page = Paginator(services.problem_rows(dataset, query), ROWS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [
        {"index": p.index, "prompt": p.prompt, "answer": p.answer,
         "metadata": [(key, _cell(value)) for key, value in p.metadata.items()]}
        for p in page
    ]
    return {
        "dataset": dataset, "page": page, "rows": rows, "q": query,
        "versions": services.dataset_versions(dataset),
        "experiments": dataset.experiments.order_by("-created").only("pk", "name"),
        "rename_form": extra.pop("rename_form", None) or RenameForm(initial={"name": dataset.name}),
        **extra,
    }


@login_required
@require_POST
def dataset_rename(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = services.get_dataset_for_user(request.user, pk)
    services.require_member(request.user, dataset.team)
    form = RenameForm(request.POST)
    if form.is_valid():
        try:
            services.rename_dataset(request.user, dataset, form.cleaned_data["name"])
        except ValueError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("dataset-detail", pk=dataset.pk)
    context = _detail_context(request, dataset, rename_form=form)
    return render(request, "datasets/detail.html", context, status=400)


@login_required
@require_POST
def dataset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = services.get_dataset_for_user(request.user, pk)
    services.require_member(request.user, dataset.team)
    try:
        services.delete_dataset(request.user, dataset)
    except services.DatasetInUse as exc:
        context = _detail_context(request, dataset, delete_error=exc)
        return render(request, "datasets/detail.html", context, status=409)
    return redirect("dataset-list")


@login_required
@require_GET
def dataset_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    dataset = services.get_dataset_for_user(request.user, pk)
    file_name = f"{slugify(dataset.name) or 'dataset'}-v{dataset.version}.jsonl"
    return StreamingHttpResponse(
        services.export_jsonl(dataset),
        content_type="application/jsonl; charset=utf-8",
        headers={"Content-Disposition": content_disposition_header(True, file_name)},
    )
