"""State changes and team-scoped lookups for teams."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils.text import slugify

from webapp.teams.models import Membership, Team


def teams_for_user(user: AbstractBaseUser | AnonymousUser) -> list[Team]:
    if not user.is_authenticated:
        return []
    return list(Team.objects.filter(memberships__user=user).order_by("name"))


#: What each role may do, lowest first: viewers read and comment, members also submit,
#: upload and label, admins also manage members; the owner is an admin.
ROLE_RANK = {
    Membership.Role.VIEWER: 0,
    Membership.Role.MEMBER: 1,
    Membership.Role.ADMIN: 2,
    Membership.Role.OWNER: 3,
}


def role_of(user: AbstractBaseUser | AnonymousUser, team: Team) -> str | None:
    """The user's role in the team, or None for anyone outside it."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    )


def has_role(user: AbstractBaseUser | AnonymousUser, team: Team, minimum: str) -> bool:
    """Whether the user holds ``minimum`` or a higher role in the team."""
    role = role_of(user, team)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def require_role(user: AbstractBaseUser | AnonymousUser, team: Team, minimum: str) -> str:
    """The user's role when it is at least ``minimum``: 404 for anyone outside the team
    (it does not exist for them), 403 for a member whose role does not allow it."""
    role = role_of(user, team)
    if role is None:
        raise Http404("No such team")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise PermissionDenied(f"A {role} of {team} cannot do this; it needs a {minimum}.")
    return role


def is_member(user: AbstractBaseUser | AnonymousUser, team: Team) -> bool:
    return bool(
        user.is_authenticated and Membership.objects.filter(team=team, user=user).exists()
    )


@transaction.atomic
def ensure_team(name: str, owner: AbstractBaseUser) -> Team:
    """Return the team called ``name``, creating it with ``owner`` as owner if needed."""
    team, _ = Team.objects.get_or_create(slug=slugify(name), defaults={"name": name})
    Membership.objects.get_or_create(
        team=team, user=owner, defaults={"role": Membership.Role.OWNER}
    )
    return team


def add_member(team: Team, user: AbstractBaseUser,
               role: str = Membership.Role.MEMBER) -> Membership:
    """The user's membership of the team, created with ``role`` if they had none."""
    membership, _ = Membership.objects.get_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership
