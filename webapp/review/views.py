"""Team review on the problem page: comments on the problem or a candidate, and human
labels on candidates with their history.

Every form posts to its own URL and works without JavaScript (a redirect back to the
problem page, at the changed part); with htmx the same view answers the fragment the
form replaces: ``#comments`` for the problem's comments, ``#candidate-review-<candidate id>`` for a
candidate's label, history and comments. A refused form answers 400 (409 for a label
changed meanwhile) on a page of its own, and 200 with the reason in the fragment for
htmx, which swaps no 4xx response. Anyone in the team comments; a viewer's label POST is
403 and another team's user gets 404 everywhere (``get_experiment_for_user``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from webapp.datasets.models import Problem
from webapp.experiments.models import Experiment, Sample
from webapp.experiments.services import get_experiment_for_user
from webapp.review import queries, services
from webapp.review.forms import CommentForm, LabelForm, RevertForm, first_error
from webapp.review.models import Comment
from webapp.teams.models import Membership
from webapp.teams.services import require_role


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _fetch(request: HttpRequest, pk: int, problem_pk: int) -> tuple[Experiment, Problem]:
    experiment = get_experiment_for_user(request.user, pk)
    problem = experiment.problems.filter(pk=problem_pk).first()
    if problem is None:
        raise Http404("No such problem in this experiment")
    return experiment, problem


def _page_url(experiment: Experiment, problem: Problem, anchor: str) -> str:
    return reverse("experiment-problem", args=[experiment.pk, problem.pk]) + f"#{anchor}"


def _base(request: HttpRequest, experiment: Experiment, problem: Problem) -> dict[str, Any]:
    return {"experiment": experiment, "problem": problem,
            "perms": queries.permissions(request.user, experiment)}


def _comments(request: HttpRequest, experiment: Experiment, problem: Problem, *,
              error: str = "", values: Any = None, status: int = 200) -> HttpResponse:
    """The ``#comments`` fragment for htmx; after a change without JavaScript a redirect
    to it, after a refusal a page of its own with the reason."""
    if status == 200 and not _is_htmx(request):
        return redirect(_page_url(experiment, problem, "comments"))
    context = {**_base(request, experiment, problem),
               **queries.problem_comments(experiment, problem),
               "error": error, "values": values or {}}
    if _is_htmx(request):
        return render(request, "review/partials/comments.html", context)
    return render(request, "review/form-page.html", {**context, "fragment": "comments"},
                  status=status)


def _candidate(request: HttpRequest, experiment: Experiment, problem: Problem, sample: Sample,
               *, error: str = "", notice: str = "", values: Any = None, status: int = 200,
               with_comments: bool = False) -> HttpResponse:
    """The candidate's ``#candidate-review-<id>`` fragment for htmx (open, and with the problem's
    ``#comments`` out of band when a candidate comment changed its counts); otherwise a
    redirect to the candidate, or a page of its own with the reason."""
    if status == 200 and not _is_htmx(request):
        return redirect(_page_url(experiment, problem, f"candidate-{sample.pk}"))
    context = {**_base(request, experiment, problem),
               "candidate": queries.candidate_review(experiment, sample),
               "error": error, "notice": notice, "values": values or {}, "open": True}
    if _is_htmx(request):
        if with_comments:
            context.update(queries.problem_comments(experiment, problem), oob=True)
        context["mark_oob"] = True
        return render(request, "review/partials/candidate-review.html", context)
    return render(request, "review/form-page.html", {**context, "fragment": "candidate"},
                  status=status)


def _container(request: HttpRequest, experiment: Experiment, problem: Problem,
               comment: Comment) -> HttpResponse:
    """What a changed comment sits in: its candidate's block or the problem's comments."""
    if comment.sample is not None:
        return _candidate(request, experiment, problem, comment.sample, with_comments=True)
    return _comments(request, experiment, problem)


def _comment_for(experiment: Experiment, problem: Problem, comment_pk: int) -> Comment:
    """The team's comment, if this problem page shows it (from whichever experiment)."""
    comment = (
        Comment.objects.filter(services.team_comments_q(experiment), pk=comment_pk,
                               problem=problem)
        .select_related("team", "sample").first()
    )
    if comment is None:
        raise Http404("No such comment")
    return comment


# --- Comments ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def comments(request: HttpRequest, pk: int, problem_pk: int) -> HttpResponse:
    """The problem's comments (GET: the fragment), or a new one (POST)."""
    experiment, problem = _fetch(request, pk, problem_pk)
    if request.method == "GET":
        return _comments(request, experiment, problem)
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _comments(request, experiment, problem, error=first_error(form),
                         values=request.POST, status=400)
    try:
        services.add_comment(request.user, experiment, problem, form.cleaned_data["body"])
    except services.ReviewError as exc:
        return _comments(request, experiment, problem, error=str(exc), values=request.POST,
                         status=400)
    return _comments(request, experiment, problem)


@login_required
@require_http_methods(["GET", "POST"])
def comment_edit(request: HttpRequest, pk: int, problem_pk: int, comment_pk: int) -> HttpResponse:
    """One's own comment: its edit form (GET), or its new text (POST)."""
    experiment, problem = _fetch(request, pk, problem_pk)
    comment = _comment_for(experiment, problem, comment_pk)
    if comment.author_id != request.user.pk:
        raise PermissionDenied("Only its author may change a comment.")
    context = {**_base(request, experiment, problem), "comment": comment, "error": ""}
    if request.method == "POST":
        form = CommentForm(request.POST)
        try:
            if not form.is_valid():
                raise services.ReviewError(first_error(form))
            services.edit_comment(request.user, comment, form.cleaned_data["body"])
        except services.ReviewError as exc:
            context.update(error=str(exc), body=request.POST.get("body", ""))
        else:
            return _container(request, experiment, problem, comment)
    if _is_htmx(request):
        response = render(request, "review/partials/comment-edit.html", context)
        if context["error"]:  # the form targets its container; the reason goes in place
            response = reswap(retarget(response, f"#comment-{comment.pk}"), "outerHTML")
        return response
    status = 400 if context["error"] else 200
    return render(request, "review/form-page.html", {**context, "fragment": "comment-edit"},
                  status=status)


@login_required
@require_POST
def comment_delete(request: HttpRequest, pk: int, problem_pk: int, comment_pk: int) -> HttpResponse:
    experiment, problem = _fetch(request, pk, problem_pk)
    comment = _comment_for(experiment, problem, comment_pk)
    services.delete_comment(request.user, comment)
    return _container(request, experiment, problem, comment)


# --- A candidate: its comments and the team's label ----------------------------------


@login_required
@require_GET
def candidate(request: HttpRequest, pk: int, problem_pk: int, sample_pk: int) -> HttpResponse:
    """The candidate's review block (htmx), or the problem page at the candidate."""
    experiment, problem = _fetch(request, pk, problem_pk)
    sample = services.get_candidate(experiment, problem, sample_pk)
    return _candidate(request, experiment, problem, sample)


@login_required
@require_POST
def candidate_comment(request: HttpRequest, pk: int, problem_pk: int,
                      sample_pk: int) -> HttpResponse:
    experiment, problem = _fetch(request, pk, problem_pk)
    sample = services.get_candidate(experiment, problem, sample_pk)
    form = CommentForm(request.POST)
    try:
        if not form.is_valid():
            raise services.ReviewError(first_error(form))
        services.add_comment(request.user, experiment, problem, form.cleaned_data["body"],
                             sample=sample)
    except services.ReviewError as exc:
        return _candidate(request, experiment, problem, sample, error=str(exc),
                          values=request.POST, status=400)
    return _candidate(request, experiment, problem, sample, with_comments=True)


@login_required
@require_POST
def label(request: HttpRequest, pk: int, problem_pk: int, sample_pk: int) -> HttpResponse:
    """Label the candidate pass or fail (optionally "the answer is X"), with a reason."""
    experiment, problem = _fetch(request, pk, problem_pk)
    sample = services.get_candidate(experiment, problem, sample_pk)
    require_role(request.user, experiment.team, Membership.Role.MEMBER)
    form = LabelForm(request.POST)
    try:
        if not form.is_valid():
            raise services.ReviewError(first_error(form))
        data = form.cleaned_data
        change = services.set_label(
            request.user, experiment, sample, outcome=data["outcome"], reason=data["reason"],
            answer=data["answer"], expected=data["expected"],
        )
    except services.ReviewError as exc:
        status = 409 if isinstance(exc, services.LabelConflict) else 400
        return _candidate(request, experiment, problem, sample, error=str(exc),
                          values=request.POST, status=status)
    notice = "Label saved." if change else "No change: the label already says that."
    return _candidate(request, experiment, problem, sample, notice=notice)


@login_required
@require_POST
def label_revert(request: HttpRequest, pk: int, problem_pk: int, sample_pk: int) -> HttpResponse:
    """Drop the team's label: the automatic verdict counts again; the history keeps it."""
    experiment, problem = _fetch(request, pk, problem_pk)
    sample = services.get_candidate(experiment, problem, sample_pk)
    require_role(request.user, experiment.team, Membership.Role.MEMBER)
    form = RevertForm(request.POST)
    try:
        if not form.is_valid():
            raise services.ReviewError(first_error(form))
        change = services.revert_label(request.user, experiment, sample,
                                       reason=form.cleaned_data["reason"],
                                       expected=form.cleaned_data["expected"])
    except services.ReviewError as exc:
        status = 409 if isinstance(exc, services.LabelConflict) else 400
        return _candidate(request, experiment, problem, sample, error=str(exc),
                          values=request.POST, status=status)
    notice = "Reverted to the automatic verdict." if change else "There was no label."
    return _candidate(request, experiment, problem, sample, notice=notice)
