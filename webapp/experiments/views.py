"""Experiment pages: thin functions that fetch team-scoped, bind a form, call a service."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from webapp.datasets.code import ensure_code_dataset, ensure_humaneval_dataset
from webapp.datasets.services import ensure_arithmetic_dataset, ensure_prompt_dataset
from webapp.experiments import (
    compare,
    exports,
    filters,
    labelled,
    lifecycle,
    manifest,
    queries,
    services,
)
from webapp.experiments.forms import (
    DEFAULT_ROWS,
    ROW_ID,
    ExperimentForm,
    StrategyForm,
    strategy_forms,
)
from webapp.experiments.models import Experiment
from webapp.experiments.specs import ExperimentSpec
from webapp.review import queries as review_queries
from webapp.review.diff import parse_pair
from webapp.teams.models import Membership
from webapp.teams.services import (
    check_chosen_team,
    has_role,
    require_role,
    teams_for_user,
    teams_with_role,
)


def _new_row_id() -> str:
    return secrets.token_hex(4)


@login_required
@require_GET
def experiment_list(request: HttpRequest) -> HttpResponse:
    experiments = services.experiments_for_user(request.user).select_related("dataset", "team")
    return render(request, "experiments/list.html", {"experiments": experiments})


@login_required
@require_http_methods(["GET", "POST"])
def experiment_new(request: HttpRequest) -> HttpResponse:
    teams = teams_for_user(request.user)
    if not teams:
        raise Http404("You belong to no team")
    # Submitting is a member's change: a viewer's POST is 403; a viewer in every team
    # sees the form with a notice in place of the Run button.
    writable = teams_with_role(request.user, Membership.Role.MEMBER)
    if request.method == "POST":
        # A team the user is not in does not exist for them: 404, as on every other page.
        chosen = request.POST.get("team", "").strip()
        if chosen and chosen not in {str(t.pk) for t in teams}:
            raise Http404("No such team")
        check_chosen_team(request.user, request.POST.get("team"), Membership.Role.MEMBER)
        if not writable:
            raise PermissionDenied("Viewers cannot run experiments.")
        form = ExperimentForm(request.POST, request.FILES, teams=writable)
        rows = strategy_forms(request.POST, request.POST.getlist("rows"))
        rows_error = "" if rows else "Add at least one strategy."
        if form.is_valid() and rows and all(f.is_valid() for _, f in rows):
            errors = form.dataset_fit_errors([f.cleaned_data["spec"] for _, f in rows])
            rows_error = " ".join(errors)
            if not errors:
                experiment = _submit(request, form, rows)
                return redirect("experiment-detail", pk=experiment.pk)
    else:
        # ``?from=<id>``: run an experiment again with changes, the form prefilled from it.
        initial: dict[str, Any] = {"name": "Untitled experiment", "strategies": DEFAULT_ROWS}
        if "from" in request.GET:
            initial = lifecycle.rerun_initial(
                services.get_experiment_for_user(request.user, _pk(request.GET["from"])))
        row_initials = initial.pop("strategies")
        form = ExperimentForm(teams=writable or teams, initial=initial)
        rows = [(_new_row_id(), StrategyForm(initial=r)) for r in row_initials]
        for row_id, row_form in rows:
            row_form.prefix = f"s-{row_id}"
        rows_error = ""
    return render(
        request,
        "experiments/new.html",
        {"form": form, "rows": rows, "rows_error": rows_error, "can_submit": bool(writable)},
        status=400 if request.method == "POST" else 200,
    )


def _pk(value: str) -> int:
    """A primary key from the query string; 404 for anything else."""
    if not (value.isascii() and value.isdigit()):
        raise Http404("No such experiment")
    return int(value)


def _submit(
    request: HttpRequest, form: ExperimentForm, rows: list[tuple[str, StrategyForm]]
) -> Experiment:
    data = form.cleaned_data
    team = data["team"]
    require_role(request.user, team, Membership.Role.MEMBER)
    if data["dataset_source"] == "arithmetic":
        dataset = ensure_arithmetic_dataset(
            team,
            size=data["arithmetic_size"],
            seed=data["arithmetic_seed"],
            difficulty=data["arithmetic_difficulty"],
        )
    elif data["dataset_source"] == "humaneval":
        dataset = ensure_humaneval_dataset(team, size=data["humaneval_size"])
    elif data["dataset_source"] == "code_upload":
        dataset = ensure_code_dataset(team, data["code_rows"], filename=data["code_filename"])
    elif data["dataset_source"] == "saved":
        dataset = data["dataset"]
    else:
        dataset = ensure_prompt_dataset(team, data["prompt_rows"])
    spec = ExperimentSpec(
        name=data["name"],
        model_name=data["model_name"],
        dataset=dataset,
        n_samples=data["n_samples"],
        max_new_tokens=data["max_new_tokens"],
        seed=data["seed"],
        strategies=[f.cleaned_data["spec"] for _, f in rows],
        verifier=form.verifier_name,
        verifier_config=data.get("verifier_config", {}),
        self_eval=data["self_eval"],
        subset=data.get("subset", {}),
    )
    return services.submit_experiment(team, request.user, spec)


@login_required
@require_GET
def strategy_row(request: HttpRequest) -> HttpResponse:
    """A strategy row for the new-experiment form.

    Without ``row`` it is a fresh row (htmx appends it); with ``row`` it is that row
    re-rendered from the submitted values, e.g. with the config fields of a newly
    chosen selector or prompting scheme (htmx swaps it in place).
    """
    row_id = request.GET.get("row", "")
    if not ROW_ID.match(row_id):
        row_id, initial = _new_row_id(), DEFAULT_ROWS[-1]
    else:
        prefix = f"s-{row_id}-"
        initial = {k[len(prefix):]: v for k, v in request.GET.items() if k.startswith(prefix)}
    row_form = StrategyForm(initial=initial, prefix=f"s-{row_id}")
    return render(
        request, "experiments/new.html#strategy-row", {"row_id": row_id, "row_form": row_form}
    )


@login_required
@require_GET
def verifier_fields(request: HttpRequest) -> HttpResponse:
    """The config fields of the chosen verifier (htmx swaps them in)."""
    teams = teams_for_user(request.user)
    form = ExperimentForm({"verifier": request.GET.get("verifier", "math")}, teams=teams)
    return render(request, "experiments/new.html#verifier-config", {"form": form})


@login_required
@require_GET
def strategy_row_remove(request: HttpRequest) -> HttpResponse:
    """An empty fragment: htmx swaps it in place of the removed row."""
    return HttpResponse("")


#: The fragments of the experiment page htmx may ask for (by ``HX-Target``).
DETAIL_FRAGMENTS = ("live", "problem-list", "labelled-figures")


@login_required
@require_GET
def experiment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    experiment = services.get_experiment_for_user(request.user, pk)
    is_finished = experiment.status == experiment.Status.FINISHED
    context: dict[str, Any] = {
        "experiment": experiment,
        # Progress shows until the experiment finishes (a failed one keeps its stages).
        "stages": [] if is_finished else services.progress(experiment),
        "strategies": list(experiment.strategies.all()),
        # Cancel, amend, run again and delete are a member's (lifecycle_views).
        "can_change": has_role(request.user, experiment.team, Membership.Role.MEMBER),
        "manifest_json": manifest.manifest_json(experiment.manifest),
    }
    # htmx asks for one fragment: the problem list (a filter or page link), the figures
    # with labels (polling while they update) or, by default, the live section. A
    # history restore (back button, cache miss) gets the whole page.
    htmx = getattr(request, "htmx", None)
    fragment = None
    if htmx and not htmx.history_restore_request:
        fragment = htmx.target if htmx.target in DETAIL_FRAGMENTS else "live"
    if is_finished:
        if fragment in (None, "live"):
            context["summary"] = queries.summary_rows(experiment)
            context["chart"] = queries.chart_data(experiment, context["summary"])
            context["comparisons"] = queries.comparisons(experiment)
            context["compare_with"] = services.experiments_for_user(request.user).filter(
                team=experiment.team, status=Experiment.Status.FINISHED,
            ).exclude(pk=experiment.pk)[:100]
        if fragment in (None, "live", "labelled-figures"):
            context["labelled"] = labelled.labelled_figures(experiment)
        if fragment in (None, "live", "problem-list"):
            context["problems"] = filters.problem_list(experiment, request.GET)
    elif fragment in ("problem-list", "labelled-figures"):
        fragment = "live"
    template = "experiments/detail.html"
    if fragment:
        template += f"#{fragment}"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@login_required
@require_GET
def experiment_compare(request: HttpRequest) -> HttpResponse:
    """Two experiments (``?e=1&e=2``: their strategies paired by label) or two strategies
    of any experiments (``?s=3&s=4``) on their shared problems; without exactly two of
    either, the picker (with a message when something else was asked)."""
    try:
        experiment_ids = [int(pk) for pk in request.GET.getlist("e")]
        strategy_ids = [int(pk) for pk in request.GET.getlist("s")]
    except ValueError as exc:
        raise Http404("No such experiment or strategy") from exc
    context: dict[str, Any] = compare.choices(request.user)
    if len(experiment_ids) == 2:
        a, b = (services.get_experiment_for_user(request.user, pk) for pk in experiment_ids)
        context["comparison"] = compare.compare_experiments(a, b)
    elif len(strategy_ids) == 2:
        x, y = (compare.get_strategy_for_user(request.user, pk) for pk in strategy_ids)
        context["comparison"] = compare.compare_strategies(x, y)
    status = 200
    if "comparison" not in context and (experiment_ids or strategy_ids):
        context["error"] = "Pick exactly two experiments, or two strategies."
        status = 400
    return render(request, "experiments/compare.html", context, status=status)


@login_required
@require_GET
def problem_detail(request: HttpRequest, pk: int, problem_pk: int) -> HttpResponse:
    """One problem: a column per sample pool with its candidates grouped by answer, the
    team's labels and comments, and ``?diff=a,b`` (or ``diff=a&diff=b``) a side-by-side
    diff of two candidates; htmx asking with ``diff`` gets the ``#diff`` fragment alone.
    ``?pool=&group=&page=`` asks for one page of one answer group: htmx gets that page's
    candidates alone (the "more" link appends them), a plain link the whole page showing
    that page of the group."""
    experiment = services.get_experiment_for_user(request.user, pk)
    problem = experiment.problems.filter(pk=problem_pk).first()
    if problem is None:
        raise Http404("No such problem in this experiment")
    diff_ids = parse_pair(request.GET.getlist("diff"))
    context: dict[str, Any] = {
        "experiment": experiment,
        "problem": problem,
        "diff": review_queries.candidate_diff(experiment, problem, diff_ids) if diff_ids else None,
    }
    htmx = getattr(request, "htmx", None)
    # htmx restoring a page from history asks for the whole page, diff or not.
    if htmx and "diff" in request.GET and not htmx.history_restore_request:
        return render(request, "experiments/problem.html#diff", context)
    asked = queries.GroupPage.from_params(request.GET)
    columns = queries.problem_columns(experiment, problem, asked, request.GET)
    review_queries.attach_reviews(experiment, columns)
    perms = review_queries.permissions(request.user, experiment)
    if htmx and asked is not None and not htmx.history_restore_request:
        column = next(c for c in columns if c["pool"].pk == asked.pool_id)
        return render(request, "experiments/problem.html#group-page", {
            **context, "perms": perms, "column": column,
            "cl": column["clusters"][asked.group - 1]})
    siblings = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    position = siblings.index(problem.pk)
    context.update(
        columns=columns,
        perms=perms,
        group_page=queries.GROUP_PAGE,
        # Reached from a filtered problem list: where this problem stands in that filter.
        review=filters.review_position(experiment, problem.pk, request.GET),
        previous_pk=siblings[position - 1] if position > 0 else None,
        next_pk=siblings[position + 1] if position + 1 < len(siblings) else None,
        **review_queries.problem_comments(experiment, problem),
    )
    response = render(request, "experiments/problem.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def experiment_export(request: HttpRequest, pk: int) -> HttpResponseBase:
    """``?what=samples|problems|metrics&format=csv|json|jsonl|humaneval`` (and for
    human-eval samples ``&strategy=<position>``), streamed as an attachment; anyone in
    the experiment's team may export."""
    experiment = services.get_experiment_for_user(request.user, pk)
    position = request.GET.get("strategy", "").strip()
    if position and not (position.isascii() and position.isdigit()):
        return HttpResponseBadRequest("strategy: give a strategy's position (0, 1, ...).",
                                      content_type="text/plain; charset=utf-8")
    try:
        out = exports.export(
            experiment, request.GET.get("what", "samples"), request.GET.get("format", "csv"),
            strategy=int(position) if position else None,
        )
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(out.chunks, content_type=out.content_type)
    response["Content-Disposition"] = out.content_disposition
    patch_cache_control(response, private=True, no_store=True)
    return response
