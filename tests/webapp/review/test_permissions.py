"""Every URL of team review, compare and teams, and every POST, for each persona: an
anonymous user goes to login, another team's user gets 404, a viewer reads and comments
but gets 403 on every other write, a member labels. The URL lists are read from the URL
configuration, so a URL added later without a row here fails this test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.webapp.review.conftest import login, sampled
from webapp.experiments.models import Experiment
from webapp.review import services
from webapp.review import urls as review_urls
from webapp.teams import urls as team_urls
from webapp.teams.models import Membership
from webapp.teams.services import has_role

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

#: (URL name, method, data, who may: "viewer" (reads, comments) or "member" (writes) or
#: "admin" (manages members)). Each row is asked with htmx, as the page asks it.
Row = tuple[str, str, dict[str, str], str]

REVIEW_ROWS: list[Row] = [
    ("review-comments", "get", {}, "viewer"),
    ("review-comments", "post", {"body": "x"}, "viewer"),
    ("review-comment-edit", "get", {}, "viewer"),
    ("review-comment-edit", "post", {"body": "edited"}, "viewer"),
    ("review-comment-delete", "post", {}, "viewer"),
    ("review-candidate", "get", {}, "viewer"),
    ("review-candidate-comment", "post", {"body": "x"}, "viewer"),
    ("review-label", "post", {"outcome": "fail", "reason": "r"}, "member"),
    ("review-label", "post", {"outcome": "answer", "answer": "4", "reason": "r"}, "member"),
    ("review-label-revert", "post", {"reason": "r"}, "member"),
]
TEAM_ROWS: list[Row] = [
    ("team-list", "get", {}, "viewer"),
    ("team-detail", "get", {}, "viewer"),
    ("team-member-add", "post", {"username": "newcomer", "role": "viewer"}, "admin"),
    ("team-member-role", "post", {"role": "viewer"}, "admin"),
    ("team-member-remove", "post", {}, "admin"),
]
RANK = {"viewer": 0, "member": 1, "admin": 2}
PERSONAS = {"viewer": "viewer", "teammate": "member", "team_admin": "admin"}


def test_every_review_and_team_url_is_audited() -> None:
    assert {p.name for p in review_urls.urlpatterns} == {r[0] for r in REVIEW_ROWS}
    assert {p.name for p in team_urls.urlpatterns} == {r[0] for r in TEAM_ROWS}


def review_url(name: str, experiment: Experiment, problem: Any, user: Any) -> str:
    """The URL, with a fresh comment of ``user`` where it needs one and a label where a
    revert needs one."""
    args = [experiment.pk, problem.pk]
    candidate = sampled(experiment, 1)
    if name in ("review-comment-edit", "review-comment-delete"):
        owner = experiment.team.memberships.get(role="owner").user
        author = user if has_role(user, experiment.team, "viewer") else owner
        comment = services.add_comment(author, experiment, problem, "mine")
        return reverse(name, args=[*args, comment.pk])
    if name == "review-label-revert":
        owner = experiment.team.memberships.get(role="owner").user
        services.set_label(owner, experiment, candidate, outcome="pass", reason="first")
    if name.startswith("review-candidate") or name.startswith("review-label"):
        return reverse(name, args=[*args, candidate.pk])
    return reverse(name, args=args)


def team_url(name: str, team: Any) -> str:
    from tests.factories import make_user
    from webapp.teams.services import add_member

    if name == "team-list":
        return reverse(name)
    if name in ("team-member-role", "team-member-remove"):
        membership = add_member(team, make_user(f"target-{name}"))
        return reverse(name, args=[team.slug, membership.pk])
    return reverse(name, args=[team.slug])


def ask(client: Client, method: str, url: str, data: dict[str, str]) -> int:
    call: Callable[..., Any] = getattr(client, method)
    return int(call(url, data, **HTMX).status_code)


@pytest.mark.parametrize("row", REVIEW_ROWS,
                         ids=lambda r: f"{r[0]}-{r[1]}-{r[2].get('outcome', '')}")
@pytest.mark.parametrize("persona", ["anonymous", "stranger", *PERSONAS])
def test_each_review_url_answers_each_persona(
        client: Client, request: Any, experiment: Experiment, problem: Any, persona: str,
        row: Row) -> None:
    from django.contrib.auth.models import AnonymousUser

    name, method, data, needs = row
    user = AnonymousUser() if persona == "anonymous" else request.getfixturevalue(persona)
    url = review_url(name, experiment, problem, user)
    if persona != "anonymous":
        login(client, user)
    status = ask(client, method, url, data)
    if persona == "anonymous":
        assert status == 302
    elif persona == "stranger":
        assert status == 404
    elif RANK[PERSONAS[persona]] >= RANK[needs]:
        assert status == 200
    else:
        assert status == 403


@pytest.mark.parametrize("row", TEAM_ROWS, ids=lambda r: r[0])
@pytest.mark.parametrize("persona", ["anonymous", "stranger", *PERSONAS])
def test_each_team_url_answers_each_persona(client: Client, request: Any, team: Any,
                                            persona: str, row: Row) -> None:
    name, method, data, needs = row
    from tests.factories import make_user

    make_user("newcomer")
    url = team_url(name, team)
    if persona != "anonymous":
        login(client, request.getfixturevalue(persona))
    response = getattr(client, method)(url, data, **HTMX)
    if persona == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif persona == "stranger":
        # Their own list of teams is theirs to read; this team does not exist for them.
        assert response.status_code == (200 if name == "team-list" else 404)
        assert team.name not in response.content.decode()
    elif RANK[PERSONAS[persona]] >= RANK[needs]:
        assert response.status_code in (200, 204)
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("persona", ["anonymous", "stranger", *PERSONAS])
def test_each_review_page_and_fragment_answers_each_persona(
        client: Client, request: Any, experiment: Experiment, problem: Any,
        persona: str) -> None:
    pool_id = experiment.strategies.get(position=1).pool_id
    detail = reverse("experiment-detail", args=[experiment.pk])
    page = reverse("experiment-problem", args=[experiment.pk, problem.pk])
    compare = reverse("experiment-compare")
    asks = [
        (page, {}, {}),
        (page, HTMX, {"pool": str(pool_id), "group": "1", "page": "1"}),
        (page, HTMX, {"diff": f"{sampled(experiment, 0).pk},{sampled(experiment, 1).pk}"}),
        (detail, {**HTMX, "HTTP_HX_TARGET": "problem-list"}, {"filter": "disagree"}),
        (detail, {**HTMX, "HTTP_HX_TARGET": "labelled-figures"}, {}),
        (compare, {}, {"s": [str(s.pk) for s in experiment.strategies.all()[:2]]}),
    ]
    if persona != "anonymous":
        login(client, request.getfixturevalue(persona))
    for url, headers, query in asks:
        response = client.get(url, query, **headers)
        if persona == "anonymous":
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login"))
        elif persona == "stranger":
            assert response.status_code == 404, (url, query)
        else:
            assert response.status_code == 200, (url, query)


def test_a_removed_viewer_loses_comments_at_once(client: Client, experiment: Experiment,
                                                 problem: Any, viewer: Any) -> None:
    login(client, viewer)
    url = reverse("review-comments", args=[experiment.pk, problem.pk])
    assert client.post(url, {"body": "still here"}, **HTMX).status_code == 200
    Membership.objects.filter(user=viewer).delete()
    assert client.post(url, {"body": "gone"}, **HTMX).status_code == 404
