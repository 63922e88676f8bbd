"""``manage.py create_team``: a login and a team for a new installation, idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import PASSWORD, make_user
from webapp.teams.models import Membership, Team
from webapp.teams.services import role_of

pytestmark = pytest.mark.django_db

SECRET = "a-long-enough-secret"


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_team", *args, stdout=out)
    return out.getvalue()


def test_it_creates_the_user_and_the_team_with_the_user_as_owner(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADMIN_PASSWORD", SECRET)
    output = run("Reasoning Lab", "--user", "alice", "--password-from-env", "ADMIN_PASSWORD")
    team = Team.objects.get()
    alice = get_user_model().objects.get(username="alice")
    assert (team.name, team.slug) == ("Reasoning Lab", "reasoning-lab")
    assert role_of(alice, team) == "owner"
    assert authenticate(username="alice", password=SECRET) == alice
    assert "Created user alice." in output and "/teams/reasoning-lab/" in output


def test_it_is_idempotent(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADMIN_PASSWORD", SECRET)
    args = ("Reasoning Lab", "--user", "alice", "--password-from-env", "ADMIN_PASSWORD")
    run(*args)
    monkeypatch.setenv("ADMIN_PASSWORD", "another-long-secret")
    output = run(*args)
    assert Team.objects.count() == 1 and Membership.objects.count() == 1
    assert get_user_model().objects.filter(username="alice").count() == 1
    # The second run changes nothing, the password included.
    assert authenticate(username="alice", password=SECRET) is not None
    assert "password unchanged" in output and "alice owns it" in output


def test_an_existing_user_needs_no_password_and_keeps_theirs(db) -> None:  # type: ignore[no-untyped-def]
    bob = make_user("bob")
    run("Beta", "--user", "bob")
    assert role_of(bob, Team.objects.get(slug="beta")) == "owner"
    assert authenticate(username="bob", password=PASSWORD) == bob


def test_it_asks_for_the_password_twice(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    answers = iter([SECRET, SECRET])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    run("Gamma", "--user", "carol", "--password-prompt")
    assert authenticate(username="carol", password=SECRET) is not None


def test_it_refuses_prompted_passwords_that_differ(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    answers = iter([SECRET, SECRET + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(CommandError, match="differ"):
        run("Gamma", "--user", "carol", "--password-prompt")
    assert not get_user_model().objects.exists() and not Team.objects.exists()


def test_a_new_user_without_a_password_is_refused_and_nothing_is_stored(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="--password-from-env VAR or --password-prompt"):
        run("Gamma", "--user", "carol")
    assert not get_user_model().objects.exists() and not Team.objects.exists()


def test_an_unset_variable_or_a_short_password_is_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    with pytest.raises(CommandError, match="NO_SUCH_VAR is unset or empty"):
        run("Gamma", "--user", "carol", "--password-from-env", "NO_SUCH_VAR")
    monkeypatch.setenv("SHORT", "abc")
    with pytest.raises(CommandError, match="Password refused"):
        run("Gamma", "--user", "carol", "--password-from-env", "SHORT")
    assert not get_user_model().objects.exists() and not Team.objects.exists()


def test_it_does_not_take_over_a_team_someone_else_owns(team, teammate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="already exists, owned by alpha-owner"):
        run("Alpha", "--user", "bob")
    assert role_of(teammate, team) == "member"
    assert team.memberships.filter(role="owner").count() == 1


def test_both_password_sources_at_once_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError):
        run("Gamma", "--user", "carol", "--password-from-env", "X", "--password-prompt")


def test_a_name_without_letters_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="at least one letter"):
        run("!!!", "--user", "carol")
