"""Team pages: the user's teams, and a team's members with their roles.

Admins (and the owner) add, re-role and remove members. Each form posts to its own URL
and works without JavaScript (a redirect back to the team page); with htmx the same
view answers the ``#members`` fragment, which replaces the member list in place.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.teams import services
from webapp.teams.forms import ROLE_CHOICES, AddMemberForm, RoleForm
from webapp.teams.models import Membership, Team


@login_required
@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    return render(request, "teams/list.html", {"teams": services.team_summaries(request.user)})


@login_required
@require_GET
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = services.get_team_for_user(request.user, slug)
    return _members_page(request, team)


@login_required
@require_POST
def member_add(request: HttpRequest, slug: str) -> HttpResponse:
    team = services.get_team_for_user(request.user, slug)
    services.require_role(request.user, team, Membership.Role.ADMIN)
    form = AddMemberForm(request.POST)
    if not form.is_valid():
        return _members_page(request, team, add_form=form, failed=True)
    try:
        membership = services.add_member_by_username(
            request.user, team, form.cleaned_data["username"], form.cleaned_data["role"]
        )
    except services.MembershipError as exc:
        return _members_page(request, team, add_form=form, error=str(exc), failed=True)
    notice = f"Added {membership.user.get_username()} as {membership.get_role_display().lower()}."
    return _done(request, team, notice)


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    team = services.get_team_for_user(request.user, slug)
    services.require_role(request.user, team, Membership.Role.ADMIN)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _members_page(request, team, error="Choose a role.", failed=True)
    try:
        membership = services.change_role(
            request.user, team, membership_id, form.cleaned_data["role"]
        )
    except services.MembershipError as exc:
        return _members_page(request, team, error=str(exc), failed=True)
    notice = f"{membership.user.get_username()} is now {membership.get_role_display().lower()}."
    return _done(request, team, notice)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    team = services.get_team_for_user(request.user, slug)
    services.require_role(request.user, team, Membership.Role.ADMIN)
    try:
        services.remove_member(request.user, team, membership_id)
    except services.MembershipError as exc:
        return _members_page(request, team, error=str(exc), failed=True)
    if services.role_of(request.user, team) is None:
        # An admin who removed themselves can no longer see the team.
        if getattr(request, "htmx", False):
            return HttpResponse(headers={"HX-Redirect": reverse("team-list")})
        return redirect("team-list")
    return _done(request, team, "Removed.")


def _done(request: HttpRequest, team: Team, notice: str) -> HttpResponse:
    """After a change: the fresh member list for htmx, a redirect to the page otherwise."""
    if getattr(request, "htmx", False):
        return _members_page(request, team, notice=notice)
    return redirect("team-detail", slug=team.slug)


def _members_page(request: HttpRequest, team: Team, *, add_form: AddMemberForm | None = None,
                  error: str = "", notice: str = "", failed: bool = False) -> HttpResponse:
    """The team page, or its ``#members`` fragment for htmx. A refused change answers 400
    with the reason on the page; for htmx the fragment answers 200, because htmx swaps
    no 4xx response and the reason would not show."""
    role = services.role_of(request.user, team)
    can_manage = role in services.MANAGERS
    context: dict[str, Any] = {
        "team": team,
        "role": Membership.Role(role) if role else None,
        "can_manage": can_manage,
        "members": services.members_of(team),
        "role_choices": ROLE_CHOICES,
        "add_form": add_form or AddMemberForm(),
        "error": error,
        "notice": notice,
    }
    template = "teams/detail.html"
    is_htmx = bool(getattr(request, "htmx", False))
    if is_htmx:
        template += "#members"
    status = 400 if failed and not is_htmx else 200
    return render(request, template, context, status=status)
