"""The experiment page's lifecycle actions: cancel, delete, amend (run again with changes
is the new-experiment form with ``?from=``, in ``views.experiment_new``).

Each is a member's change: a viewer gets 403, anyone outside the team 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.experiments import lifecycle, services
from webapp.experiments.forms import AmendForm, strategy_forms
from webapp.experiments.models import Experiment
from webapp.teams.models import Membership
from webapp.teams.services import require_role


def _for_change(request: HttpRequest, pk: int) -> Experiment:
    experiment = services.get_experiment_for_user(request.user, pk)
    require_role(request.user, experiment.team, Membership.Role.MEMBER)
    return experiment


@login_required
@require_POST
def experiment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a queued or running experiment (a finished one is left as it is)."""
    experiment = _for_change(request, pk)
    lifecycle.cancel_experiment(experiment.pk)
    return redirect("experiment-detail", pk=experiment.pk)


@login_required
@require_POST
def experiment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete the experiment (cancelling it first) once the form confirms it."""
    experiment = _for_change(request, pk)
    if request.POST.get("confirm") != "yes":
        return render(request, "experiments/delete.html", {"experiment": experiment},
                      status=400)
    lifecycle.delete_experiment(experiment.pk)
    return redirect("experiment-list")


@login_required
@require_http_methods(["GET", "POST"])
def experiment_amend(request: HttpRequest, pk: int) -> HttpResponse:
    """Grow a finished experiment's N and/or add strategies to it."""
    experiment = _for_change(request, pk)
    if request.method == "POST":
        form = AmendForm(request.POST, current_n=experiment.n_samples)
        rows = strategy_forms(request.POST, request.POST.getlist("rows"))
        if form.is_valid() and all(row.is_valid() for _, row in rows):
            try:
                lifecycle.amend_experiment(
                    experiment.pk, n_samples=form.cleaned_data["n_samples"],
                    strategies=[row.cleaned_data["spec"] for _, row in rows],
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("experiment-detail", pk=experiment.pk)
    else:
        form, rows = AmendForm(current_n=experiment.n_samples), []
    context = {"experiment": experiment, "form": form, "rows": rows,
               "strategies": list(experiment.strategies.order_by("position"))}
    return render(request, "experiments/amend.html", context,
                  status=400 if request.method == "POST" else 200)
