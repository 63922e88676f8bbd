"""Experiment pages: thin functions that fetch team-scoped, bind a form, call a service."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.datasets.code import ensure_code_dataset, ensure_humaneval_dataset
from webapp.datasets.services import ensure_arithmetic_dataset, ensure_prompt_dataset
from webapp.experiments import queries, services
from webapp.experiments.forms import (
    DEFAULT_ROWS,
    ROW_ID,
    ExperimentForm,
    StrategyForm,
    strategy_forms,
)
from webapp.experiments.models import Experiment
from webapp.experiments.specs import ExperimentSpec
from webapp.teams.services import teams_for_user


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
    if request.method == "POST":
        form = ExperimentForm(request.POST, request.FILES, teams=teams)
        rows = strategy_forms(request.POST, request.POST.getlist("rows"))
        rows_error = "" if rows else "Add at least one strategy."
        if form.is_valid() and rows and all(f.is_valid() for _, f in rows):
            errors = form.dataset_fit_errors([f.cleaned_data["spec"] for _, f in rows])
            rows_error = " ".join(errors)
            if not errors:
                experiment = _submit(request, form, rows)
                return redirect("experiment-detail", pk=experiment.pk)
    else:
        form = ExperimentForm(teams=teams, initial={"name": "Untitled experiment"})
        rows = [(_new_row_id(), StrategyForm(initial=r)) for r in DEFAULT_ROWS]
        for row_id, row_form in rows:
            row_form.prefix = f"s-{row_id}"
        rows_error = ""
    return render(
        request,
        "experiments/new.html",
        {"form": form, "rows": rows, "rows_error": rows_error},
        status=400 if request.method == "POST" else 200,
    )


def _submit(
    request: HttpRequest, form: ExperimentForm, rows: list[tuple[str, StrategyForm]]
) -> Experiment:
    data = form.cleaned_data
    team = data["team"]
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


@login_required
@require_GET
def experiment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    experiment = services.get_experiment_for_user(request.user, pk)
    context: dict[str, Any] = {
        "experiment": experiment,
        "stages": services.progress(experiment),
        "strategies": list(experiment.strategies.all()),
    }
    if experiment.status == experiment.Status.FINISHED:
        context["summary"] = queries.summary_rows(experiment)
        context["chart"] = queries.chart_data(experiment, context["summary"])
        context["comparisons"] = queries.comparisons(experiment)
        context["grid"] = queries.problem_grid(experiment)
    template = "experiments/detail.html"
    if getattr(request, "htmx", False):
        template += "#live"
    return render(request, template, context)


@login_required
@require_GET
def problem_detail(request: HttpRequest, pk: int, problem_pk: int) -> HttpResponse:
    experiment = services.get_experiment_for_user(request.user, pk)
    problem = experiment.problems.filter(pk=problem_pk).first()
    if problem is None:
        raise Http404("No such problem in this experiment")
    siblings = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    position = siblings.index(problem.pk)
    return render(
        request,
        "experiments/problem.html",
        {
            "experiment": experiment,
            "problem": problem,
            "columns": queries.problem_columns(experiment, problem),
            "previous_pk": siblings[position - 1] if position > 0 else None,
            "next_pk": siblings[position + 1] if position + 1 < len(siblings) else None,
        },
    )
