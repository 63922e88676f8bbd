"""State changes and team-scoped lookups for teams."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils.text import slugify

from webapp.teams.models import Membership, Team


def teams_for_user(user: AbstractBaseUser | AnonymousUser) -> list[Team]:
    if not user.is_authenticated:
        return []
    return list(Team.objects.filter(memberships__user=user).order_by("name"))


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


def add_member(team: Team, user: AbstractBaseUser) -> Membership:
    membership, _ = Membership.objects.get_or_create(team=team, user=user)
    return membership
