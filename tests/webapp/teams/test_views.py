"""Team pages: the list of the user's teams and a team's members; admins and the owner
add, re-role and remove members, without JavaScript (redirects) and with htmx (the
``#members`` fragment). Every URL is checked for each persona."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_experiment, make_user
from webapp.teams.models import Membership
from webapp.teams.services import role_of

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def membership(team: Any, user: Any) -> Membership:
    return Membership.objects.get(team=team, user=user)


def detail(team: Any) -> str:
    return reverse("team-detail", args=[team.slug])


def add_url(team: Any) -> str:
    return reverse("team-member-add", args=[team.slug])


def role_url(team: Any, user: Any) -> str:
    return reverse("team-member-role", args=[team.slug, membership(team, user).pk])


def remove_url(team: Any, user: Any) -> str:
    return reverse("team-member-remove", args=[team.slug, membership(team, user).pk])


# --- Reading ------------------------------------------------------------------------


@pytest.mark.parametrize("persona, role", [
    ("owner", "Owner"), ("team_admin", "Admin"), ("teammate", "Member"), ("viewer", "Viewer"),
])
def test_every_member_sees_the_team_in_their_list_with_their_role(  # type: ignore[no-untyped-def]
    request, client, team, persona, role
) -> None:
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("team-list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert f'href="{detail(team)}"' in body and f'<span class="chip">{role}</span>' in body
    assert 'href="/teams/">Teams</a>' in body  # the nav link


def test_the_list_leaves_out_other_teams(client, team, stranger) -> None:  # type: ignore[no-untyped-def]
    client.force_login(stranger)
    body = client.get(reverse("team-list")).content.decode()
    assert "Other" in body and "Alpha" not in body


def test_a_user_in_no_team_is_told_how_to_join(client, db) -> None:  # type: ignore[no-untyped-def]
    client.force_login(make_user("loner"))
    body = client.get(reverse("team-list")).content.decode()
    assert "You belong to no team yet" in body and "<strong>loner</strong>" in body


@pytest.mark.parametrize("persona", ["owner", "team_admin"])
def test_managers_see_members_roles_and_the_forms_to_manage_them(  # type: ignore[no-untyped-def]
    request, client, team, owner, teammate, viewer, team_admin, persona
) -> None:
    client.force_login(request.getfixturevalue(persona))
    response = client.get(detail(team))
    body = response.content.decode()
    assert response.status_code == 200
    for name in ("alpha-owner", "ada", "bob", "vera"):
        assert name in body
    assert 'id="add-member"' in body and f'action="{add_url(team)}"' in body
    assert f'action="{role_url(team, teammate)}"' in body
    assert f'action="{remove_url(team, viewer)}"' in body
    # The owner has no forms: their role and membership are fixed.
    assert f'action="{remove_url(team, owner)}"' not in body
    assert f'action="{role_url(team, owner)}"' not in body
    assert body.count("csrfmiddlewaretoken") >= 1 + 2 * 3


@pytest.mark.parametrize("persona", ["teammate", "viewer"])
def test_members_and_viewers_see_the_members_without_forms(  # type: ignore[no-untyped-def]
    request, client, team, owner, teammate, viewer, persona
) -> None:
    client.force_login(request.getfixturevalue(persona))
    body = client.get(detail(team)).content.decode()
    assert "alpha-owner" in body and "bob" in body and "vera" in body
    assert "<form" not in body.split('id="members"')[1]
    assert "Only the team's admins and owner manage its members." in body


def test_a_stranger_gets_404_on_every_team_url(client, team, owner, teammate, stranger) -> None:  # type: ignore[no-untyped-def]
    make_user("nina")
    client.force_login(stranger)
    requests = [("get", detail(team), {}, {}), ("get", detail(team), {}, HTMX),
                ("post", add_url(team), {"username": "nina", "role": "admin"}, {}),
                ("post", add_url(team), {"username": "nina", "role": "admin"}, HTMX),
                ("post", role_url(team, teammate), {"role": "admin"}, {}),
                ("post", role_url(team, teammate), {"role": "admin"}, HTMX),
                ("post", remove_url(team, teammate), {}, {}),
                ("post", remove_url(team, teammate), {}, HTMX),
                ("post", remove_url(team, owner), {}, {})]
    for method, url, data, extra in requests:
        response = getattr(client, method)(url, data, **extra)
        assert response.status_code == 404, (method, url, extra)
    assert role_of(stranger, team) is None and role_of(teammate, team) == "member"
    assert not Membership.objects.filter(team=team, user__username="nina").exists()


def test_an_unknown_team_is_404(client, owner) -> None:  # type: ignore[no-untyped-def]
    client.force_login(owner)
    assert client.get(reverse("team-detail", args=["no-such-team"])).status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    urls = [("get", reverse("team-list")), ("get", detail(team)),
            ("post", add_url(team)), ("post", role_url(team, teammate)),
            ("post", remove_url(team, teammate))]
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login")), url
    assert role_of(teammate, team) == "member"


def test_the_change_urls_take_only_posts(client, team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    client.force_login(owner)
    for url in (add_url(team), role_url(team, teammate), remove_url(team, teammate)):
        assert client.get(url).status_code == 405, url
    assert client.post(reverse("team-list")).status_code == 405


def test_posts_need_the_csrf_token(team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    make_user("nina")
    assert client.post(add_url(team), {"username": "nina", "role": "member"}).status_code == 403
    assert client.post(remove_url(team, teammate)).status_code == 403
    assert not Membership.objects.filter(team=team, user__username="nina").exists()
    assert role_of(teammate, team) == "member"


# --- Changing, without JavaScript ---------------------------------------------------


@pytest.mark.parametrize("persona", ["owner", "team_admin"])
def test_managers_add_change_and_remove_members(request, client, team, teammate, persona) -> None:  # type: ignore[no-untyped-def]
    client.force_login(request.getfixturevalue(persona))
    nina = make_user("nina")
    response = client.post(add_url(team), {"username": "nina", "role": "viewer"})
    assert response.status_code == 302 and response.url == detail(team)
    assert role_of(nina, team) == "viewer"
    response = client.post(role_url(team, nina), {"role": "admin"})
    assert response.status_code == 302 and role_of(nina, team) == "admin"
    response = client.post(remove_url(team, teammate))
    assert response.status_code == 302 and role_of(teammate, team) is None
    page = client.get(detail(team)).content.decode()
    assert "nina" in page and ">bob<" not in page


@pytest.mark.parametrize("persona", ["teammate", "viewer"])
def test_members_and_viewers_get_403_on_every_change(  # type: ignore[no-untyped-def]
    request, client, team, owner, teammate, viewer, team_admin, persona
) -> None:
    client.force_login(request.getfixturevalue(persona))
    make_user("nina")
    posts = [(add_url(team), {"username": "nina", "role": "admin"}),
             (add_url(team), {}),  # an invalid form is still refused first
             (role_url(team, team_admin), {"role": "viewer"}),
             (role_url(team, request.getfixturevalue(persona)), {"role": "admin"}),
             (remove_url(team, team_admin), {}),
             (remove_url(team, owner), {})]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
        assert client.post(url, data, **HTMX).status_code == 403, url
    assert not Membership.objects.filter(team=team, user__username="nina").exists()
    assert {m.user.username: m.role for m in team.memberships.all()} == {
        "alpha-owner": "owner", "bob": "member", "vera": "viewer", "ada": "admin"}


def test_a_refused_change_shows_why_and_answers_400(client, team, owner, team_admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(team_admin)
    response = client.post(remove_url(team, owner))
    assert response.status_code == 400
    assert "The owner cannot be removed." in response.content.decode()
    response = client.post(role_url(team, owner), {"role": "viewer"})
    assert response.status_code == 400
    assert "The owner&#x27;s role cannot be changed." in response.content.decode()
    response = client.post(add_url(team), {"username": "ghost", "role": "member"})
    assert response.status_code == 400 and "no user called" in response.content.decode()
    response = client.post(add_url(team), {"username": "", "role": "member"})
    assert response.status_code == 400 and "This field is required." in response.content.decode()
    response = client.post(role_url(team, team_admin), {"role": "owner"})
    assert response.status_code == 400 and "Choose a role." in response.content.decode()
    assert role_of(owner, team) == "owner" and role_of(team_admin, team) == "admin"


def test_an_admin_who_removes_themselves_goes_to_their_teams(client, team, team_admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(team_admin)
    response = client.post(remove_url(team, team_admin))
    assert response.status_code == 302 and response.url == reverse("team-list")
    assert client.get(detail(team)).status_code == 404


# --- Changing, with htmx ------------------------------------------------------------


def test_htmx_adds_a_member_and_swaps_the_member_list(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    client.force_login(owner)
    make_user("nina")
    response = client.post(add_url(team), {"username": "nina", "role": "viewer"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and body.lstrip().startswith('<section id="members"')
    assert "Added nina as viewer." in body and 'hx-target="#members"' in body


def test_htmx_changes_a_role_and_removes_a_member(client, team, owner, teammate, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(owner)
    body = client.post(role_url(team, viewer), {"role": "member"}, **HTMX).content.decode()
    assert "vera is now member." in body and role_of(viewer, team) == "member"
    removal = remove_url(team, teammate)
    body = client.post(removal, **HTMX).content.decode()
    assert "Removed." in body and f'action="{removal}"' not in body
    assert role_of(teammate, team) is None


def test_htmx_shows_a_refusal_inside_the_fragment(client, team, owner, team_admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(team_admin)
    response = client.post(remove_url(team, owner), **HTMX)
    body = response.content.decode()
    # 200, not 400: htmx swaps no 4xx response, and the reason must show.
    assert response.status_code == 200 and body.lstrip().startswith('<section id="members"')
    assert 'role="alert">The owner cannot be removed.' in body


def test_htmx_sends_an_admin_who_removed_themselves_to_their_teams(  # type: ignore[no-untyped-def]
    client, team, team_admin
) -> None:
    client.force_login(team_admin)
    response = client.post(remove_url(team, team_admin), **HTMX)
    assert response.headers["HX-Redirect"] == reverse("team-list")


def test_the_forms_carry_both_a_plain_action_and_hx_post(client, team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    client.force_login(owner)
    body = client.get(detail(team)).content.decode()
    for url in (add_url(team), role_url(team, teammate), remove_url(team, teammate)):
        assert f'method="post" action="{url}"' in body and f'hx-post="{url}"' in body


# --- Access follows membership at once ----------------------------------------------


def test_a_removed_member_loses_access_with_their_next_request(  # type: ignore[no-untyped-def]
    client, team, owner, teammate
) -> None:
    experiment = make_experiment(team)
    page = reverse("experiment-detail", args=[experiment.pk])
    dataset_page = reverse("dataset-detail", args=[experiment.dataset_id])
    client.force_login(teammate)
    assert client.get(page).status_code == 200
    assert client.get(dataset_page).status_code == 200
    admin = Client()
    admin.force_login(owner)
    assert admin.post(remove_url(team, teammate)).status_code == 302
    # Same session, next request: gone.
    assert client.get(page).status_code == 404
    assert client.get(page, **HTMX).status_code == 404
    assert client.get(dataset_page).status_code == 404
    assert client.get(detail(team)).status_code == 404
    assert "Test experiment" not in client.get(reverse("experiment-list")).content.decode()


def test_a_demoted_member_loses_the_right_to_submit_at_once(client, team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    from tests.webapp.experiments.test_new_experiment import form_data

    client.force_login(teammate)
    admin = Client()
    admin.force_login(owner)
    admin.post(role_url(team, teammate), {"role": "viewer"})
    assert client.post(reverse("experiment-new"), form_data(team)).status_code == 403


# --- Escaping -----------------------------------------------------------------------


def test_member_names_are_escaped_everywhere(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    evil = '<script>alert(1)</script><b hx-get="/x">'
    make_user(evil)
    client.force_login(owner)
    response = client.post(add_url(team), {"username": evil, "role": "member"}, **HTMX)
    pages = [response.content.decode(), client.get(detail(team)).content.decode()]
    # A name that is not (yet) a user is echoed in the refusal, escaped too.
    pages.append(client.post(add_url(team), {"username": "<img src=x onerror=alert(1)>",
                                             "role": "member"}).content.decode())
    for body in pages:
        assert "<script>alert" not in body and "<b hx-get" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[2]


def test_the_team_pages_carry_no_inline_code(client, team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    from tests.webapp.test_deploy import INLINE_CODE, INLINE_SCRIPT

    client.force_login(owner)
    for url in (reverse("team-list"), detail(team)):
        html = client.get(url).content.decode()
        assert not INLINE_SCRIPT.search(html) and not INLINE_CODE.search(html), url
