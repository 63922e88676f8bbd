"""State changes and team-scoped lookups for teams."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.utils.text import slugify

from webapp.teams.models import Membership, Team

logger = logging.getLogger(__name__)


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


# --- Members ----------------------------------------------------------------------------
#
# Every change below takes the acting user and checks ``require_role(actor, team,
# "admin")`` itself, so a view cannot forget it. Each runs in one transaction that first
# locks the team's row: two admins changing the same team are serialised, so the checks
# ("not the owner", "not the last admin") and the write they guard cannot interleave and
# no change is ever half done.

#: The roles an admin may give; the owner is whoever created the team.
ASSIGNABLE_ROLES = (Membership.Role.ADMIN, Membership.Role.MEMBER, Membership.Role.VIEWER)
MANAGERS = (Membership.Role.OWNER, Membership.Role.ADMIN)


class MembershipError(ValueError):
    """A change to a team's members that the rules refuse; the message says why."""


def get_team_for_user(user: AbstractBaseUser | AnonymousUser, slug: str) -> Team:
    """The team, if ``user`` belongs to it; 404 for everybody else."""
    team = Team.objects.filter(slug=slug).first() if user.is_authenticated else None
    if team is None:
        raise Http404("No such team")
    require_role(user, team, Membership.Role.VIEWER)
    return team


def check_chosen_team(user: AbstractBaseUser | AnonymousUser, value: object,
                      minimum: str) -> None:
    """PermissionDenied (403) when a submitted form names (by primary key) a team in
    which ``user`` holds a role below ``minimum``. A team they are not in is left to the
    form, whose choices hold only their teams: it answers "not a valid choice", the same
    as for a team that does not exist."""
    try:
        pk = int(str(value))
    except ValueError:
        return
    team = Team.objects.filter(pk=pk).first()
    if team is not None and role_of(user, team) is not None:
        require_role(user, team, minimum)


def teams_with_role(user: AbstractBaseUser | AnonymousUser, minimum: str) -> list[Team]:
    """The user's teams in which they hold ``minimum`` or a higher role, by name."""
    if not user.is_authenticated:
        return []
    roles = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[minimum]]
    return list(
        Team.objects.filter(memberships__user=user, memberships__role__in=roles).order_by("name")
    )


def members_of(team: Team) -> list[Membership]:
    """The team's memberships: the owner first, then by role and username."""
    memberships = list(team.memberships.select_related("user"))
    return sorted(memberships, key=lambda m: (-ROLE_RANK[m.role], m.user.get_username().lower()))


def _lock(team: Team) -> None:
    Team.objects.select_for_update().filter(pk=team.pk).first()


def _target(team: Team, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("user").filter(team=team, pk=membership_id).first()
    )
    if membership is None:
        raise Http404("No such member")
    return membership


def _check_role(role: str) -> None:
    if role not in ASSIGNABLE_ROLES:
        names = ", ".join(str(r) for r in ASSIGNABLE_ROLES)
        raise MembershipError(f"Choose a role: {names}.")


def _other_managers(team: Team, membership: Membership) -> bool:
    return (
        Membership.objects.filter(team=team, role__in=MANAGERS).exclude(pk=membership.pk).exists()
    )


def add_member_by_username(actor: AbstractBaseUser | AnonymousUser, team: Team, username: str,
                           role: str = Membership.Role.MEMBER) -> Membership:
    """Add an existing user to the team with ``role``; ``MembershipError`` when there is
    no such user or they already belong to the team."""
    require_role(actor, team, Membership.Role.ADMIN)
    _check_role(role)
    username = username.strip()
    user_model = get_user_model()
    user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        raise MembershipError(f"There is no user called {username!r}.")
    with transaction.atomic():
        _lock(team)
        membership, created = Membership.objects.get_or_create(
            team=team, user=user, defaults={"role": role}
        )
    if not created:
        raise MembershipError(
            f"{username} is already in {team.name} (as {membership.get_role_display().lower()})."
        )
    logger.info("%s added %s to %s as %s", actor, username, team.slug, role)
    return membership


def change_role(actor: AbstractBaseUser | AnonymousUser, team: Team, membership_id: int,
                role: str) -> Membership:
    """Give a member another role; the owner's role is fixed, and the team always keeps
    an admin or owner."""
    require_role(actor, team, Membership.Role.ADMIN)
    _check_role(role)
    with transaction.atomic():
        _lock(team)
        membership = _target(team, membership_id)
        if membership.role == role:
            return membership
        if membership.role == Membership.Role.OWNER:
            raise MembershipError("The owner's role cannot be changed.")
        if (membership.role == Membership.Role.ADMIN and role not in MANAGERS
                and not _other_managers(team, membership)):
            raise MembershipError(
                f"{membership.user.get_username()} is the team's last admin; "
                "make someone else an admin first."
            )
        Membership.objects.filter(pk=membership.pk).update(role=role)
    logger.info("%s changed %s in %s from %s to %s", actor, membership.user, team.slug,
                membership.role, role)
    membership.role = role
    return membership


def remove_member(actor: AbstractBaseUser | AnonymousUser, team: Team,
                  membership_id: int) -> None:
    """Remove a member: every page checks membership on each request, so they lose access
    to the team's experiments and datasets with their next request. The owner and the
    last admin stay."""
    require_role(actor, team, Membership.Role.ADMIN)
    with transaction.atomic():
        _lock(team)
        membership = _target(team, membership_id)
        if membership.role == Membership.Role.OWNER:
            raise MembershipError("The owner cannot be removed.")
        if membership.role in MANAGERS and not _other_managers(team, membership):
            raise MembershipError(
                f"{membership.user.get_username()} is the team's last admin; "
                "make someone else an admin first."
            )
        membership.delete()
    logger.info("%s removed %s from %s", actor, membership.user, team.slug)


def team_summaries(user: AbstractBaseUser | AnonymousUser) -> list[dict[str, object]]:
    """The user's teams by name, each with the user's role and how many members,
    experiments and datasets it has."""
    if not user.is_authenticated:
        return []
    roles = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
    teams = (
        Team.objects.filter(pk__in=roles)
        .annotate(
            member_count=Count("memberships", distinct=True),
            experiment_count=Count("experiments", distinct=True),
            dataset_count=Count("datasets", distinct=True),
        )
        .order_by("name")
    )
    return [
        {"team": team, "role": Membership.Role(roles[team.pk]),
         "members": team.member_count, "experiments": team.experiment_count,
         "datasets": team.dataset_count}
        for team in teams
    ]
