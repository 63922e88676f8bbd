"""Team member services: each checks the acting user's role itself, and refuses a change
that would remove or demote the owner or leave the team without an admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from tests.factories import make_experiment, make_team, make_user
from webapp.teams.models import Membership
from webapp.teams.services import (
    MembershipError,
    add_member,
    add_member_by_username,
    change_role,
    members_of,
    remove_member,
    role_of,
    team_summaries,
    teams_with_role,
)

pytestmark = pytest.mark.django_db


def membership(team, user) -> Membership:  # type: ignore[no-untyped-def]
    return Membership.objects.get(team=team, user=user)


# --- add_member_by_username ---------------------------------------------------------


@pytest.mark.parametrize("actor_name", ["owner", "team_admin"])
def test_it_lets_the_owner_and_admins_add_an_existing_user(request, team, actor_name) -> None:  # type: ignore[no-untyped-def]
    actor = request.getfixturevalue(actor_name)
    newcomer = make_user("nina")
    added = add_member_by_username(actor, team, "  nina ", "viewer")
    assert added.user == newcomer and added.role == "viewer"
    assert role_of(newcomer, team) == "viewer"


@pytest.mark.parametrize("actor_name", ["teammate", "viewer"])
def test_it_refuses_members_and_viewers_who_add_someone(request, team, actor_name) -> None:  # type: ignore[no-untyped-def]
    actor = request.getfixturevalue(actor_name)
    make_user("nina")
    with pytest.raises(PermissionDenied):
        add_member_by_username(actor, team, "nina", "member")
    assert not Membership.objects.filter(team=team, user__username="nina").exists()


def test_it_answers_404_to_another_teams_user_who_adds_someone(team, stranger) -> None:  # type: ignore[no-untyped-def]
    make_user("nina")
    with pytest.raises(Http404):
        add_member_by_username(stranger, team, "nina", "admin")
    assert not Membership.objects.filter(team=team, user__username="nina").exists()


def test_it_refuses_an_unknown_username(team, owner) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MembershipError, match="no user called 'ghost'"):
        add_member_by_username(owner, team, "ghost", "member")


def test_it_refuses_someone_already_in_the_team_and_keeps_their_role(team, owner, viewer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MembershipError, match="already in Alpha"):
        add_member_by_username(owner, team, "vera", "admin")
    assert role_of(viewer, team) == "viewer"


def test_it_gives_no_one_the_owner_role(team, owner) -> None:  # type: ignore[no-untyped-def]
    make_user("nina")
    with pytest.raises(MembershipError, match="Choose a role"):
        add_member_by_username(owner, team, "nina", "owner")
    assert not Membership.objects.filter(team=team, user__username="nina").exists()


def test_it_adds_a_user_of_another_team_who_then_sees_both(team, owner, stranger) -> None:  # type: ignore[no-untyped-def]
    add_member_by_username(owner, team, stranger.username, "member")
    assert [t.name for t in teams_with_role(stranger, "viewer")] == ["Alpha", "Other"]


# --- change_role --------------------------------------------------------------------


@pytest.mark.parametrize("actor_name", ["owner", "team_admin"])
def test_it_lets_the_owner_and_admins_change_a_role(request, team, teammate, actor_name) -> None:  # type: ignore[no-untyped-def]
    actor = request.getfixturevalue(actor_name)
    changed = change_role(actor, team, membership(team, teammate).pk, "viewer")
    assert changed.role == "viewer" and role_of(teammate, team) == "viewer"


@pytest.mark.parametrize("actor_name", ["teammate", "viewer"])
def test_it_refuses_members_and_viewers_who_change_a_role(request, team, teammate, viewer,  # type: ignore[no-untyped-def]
                                                          actor_name) -> None:
    actor = request.getfixturevalue(actor_name)
    with pytest.raises(PermissionDenied):
        change_role(actor, team, membership(team, viewer).pk, "admin")
    assert role_of(viewer, team) == "viewer"


def test_it_answers_404_to_another_teams_user_who_changes_a_role(team, teammate, stranger) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Http404):
        change_role(stranger, team, membership(team, teammate).pk, "admin")
    assert role_of(teammate, team) == "member"


def test_it_answers_404_for_a_membership_of_another_team(team, owner, stranger) -> None:  # type: ignore[no-untyped-def]
    other = stranger.memberships.get()
    with pytest.raises(Http404):
        change_role(owner, team, other.pk, "viewer")
    with pytest.raises(Http404):
        remove_member(owner, team, other.pk)
    other.refresh_from_db()
    assert other.role == "owner"


@pytest.mark.parametrize("actor_name", ["owner", "team_admin"])
def test_no_one_demotes_the_owner(request, team, owner, actor_name) -> None:  # type: ignore[no-untyped-def]
    actor = request.getfixturevalue(actor_name)
    with pytest.raises(MembershipError, match="owner's role cannot be changed"):
        change_role(actor, team, membership(team, owner).pk, "viewer")
    assert role_of(owner, team) == "owner"


def test_an_admin_may_step_down_while_the_owner_remains(team, team_admin) -> None:  # type: ignore[no-untyped-def]
    change_role(team_admin, team, membership(team, team_admin).pk, "member")
    assert role_of(team_admin, team) == "member"


def test_the_last_admin_of_a_team_without_owner_cannot_step_down(team, owner, team_admin) -> None:  # type: ignore[no-untyped-def]
    Membership.objects.filter(team=team, user=owner).delete()
    with pytest.raises(MembershipError, match="last admin"):
        change_role(team_admin, team, membership(team, team_admin).pk, "viewer")
    assert role_of(team_admin, team) == "admin"


def test_it_refuses_an_unknown_role(team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MembershipError):
        change_role(owner, team, membership(team, teammate).pk, "superuser")
    assert role_of(teammate, team) == "member"


# --- remove_member ------------------------------------------------------------------


@pytest.mark.parametrize("actor_name", ["owner", "team_admin"])
def test_it_lets_the_owner_and_admins_remove_a_member(request, team, teammate, actor_name) -> None:  # type: ignore[no-untyped-def]
    actor = request.getfixturevalue(actor_name)
    remove_member(actor, team, membership(team, teammate).pk)
    assert role_of(teammate, team) is None


@pytest.mark.parametrize("actor_name", ["teammate", "viewer"])
def test_it_refuses_members_and_viewers_who_remove_someone(request, team, teammate, viewer,  # type: ignore[no-untyped-def]
                                                           team_admin, actor_name) -> None:
    actor = request.getfixturevalue(actor_name)
    with pytest.raises(PermissionDenied):
        remove_member(actor, team, membership(team, team_admin).pk)
    assert role_of(team_admin, team) == "admin"


def test_it_answers_404_to_another_teams_user_who_removes_someone(team, teammate, stranger) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Http404):
        remove_member(stranger, team, membership(team, teammate).pk)
    assert role_of(teammate, team) == "member"


@pytest.mark.parametrize("actor_name", ["owner", "team_admin"])
def test_no_one_removes_the_owner(request, team, owner, actor_name) -> None:  # type: ignore[no-untyped-def]
    actor = request.getfixturevalue(actor_name)
    with pytest.raises(MembershipError, match="owner cannot be removed"):
        remove_member(actor, team, membership(team, owner).pk)
    assert role_of(owner, team) == "owner"


def test_the_last_admin_of_a_team_without_owner_stays(team, owner, team_admin) -> None:  # type: ignore[no-untyped-def]
    Membership.objects.filter(team=team, user=owner).delete()
    with pytest.raises(MembershipError, match="last admin"):
        remove_member(team_admin, team, membership(team, team_admin).pk)
    assert role_of(team_admin, team) == "admin"


def test_an_admin_removed_by_another_admin_loses_the_right_to_manage(team, team_admin) -> None:  # type: ignore[no-untyped-def]
    second = make_user("sam")
    add_member(team, second, role="admin")
    remove_member(second, team, membership(team, team_admin).pk)
    with pytest.raises(Http404):
        add_member_by_username(team_admin, team, "sam", "viewer")


# --- reading ------------------------------------------------------------------------


def test_it_lists_members_owner_first_then_by_role_and_name(team, owner, teammate, viewer,  # type: ignore[no-untyped-def]
                                                            team_admin) -> None:
    add_member(team, make_user("aaron"), role="viewer")
    assert [(m.user.username, m.role) for m in members_of(team)] == [
        ("alpha-owner", "owner"), ("ada", "admin"), ("bob", "member"),
        ("aaron", "viewer"), ("vera", "viewer"),
    ]


def test_it_summarises_each_team_of_the_user_with_its_counts(team, owner, teammate, viewer) -> None:  # type: ignore[no-untyped-def]
    make_experiment(team)
    beta = make_team("Beta")
    add_member(beta, viewer, role="member")
    rows = team_summaries(viewer)
    assert [(r["team"].name, r["role"], r["members"], r["experiments"]) for r in rows] == [
        ("Alpha", "viewer", 3, 1), ("Beta", "member", 2, 0),
    ]
    assert rows[0]["datasets"] == 1


def test_it_lists_only_the_teams_where_the_user_holds_the_role(team, viewer) -> None:  # type: ignore[no-untyped-def]
    beta = make_team("Beta")
    add_member(beta, viewer, role="member")
    assert [t.name for t in teams_with_role(viewer, "member")] == ["Beta"]
    assert [t.name for t in teams_with_role(viewer, "viewer")] == ["Alpha", "Beta"]
    assert teams_with_role(viewer, "admin") == []
