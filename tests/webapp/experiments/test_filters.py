"""The experiment page's problem list: filters with counts, the URL as the state, htmx
fragments, pages, and the review queue the problem page walks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from tests.webapp.experiments.review_data import build, login, sample, strategies
from webapp.experiments import filters
from webapp.review.models import Comment, HumanLabel

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(team: Any) -> Any:
    return build(team)


def indices(experiment: Any, params: dict[str, Any]) -> list[int]:
    listing = filters.problem_list(experiment, {k: str(v) for k, v in params.items()})
    return [row["problem"].index for row in listing["rows"]]


def rendered_indices(body: str) -> list[int]:
    grid = body.split('id="problem-grid"', 1)[1].split("</table>", 1)[0]
    return [int(i) for i in re.findall(r'<tr[^>]*>\s*<td><a href="[^"]*">(\d+)</a>', grid)]


def test_it_counts_every_filter_by_hand(experiment: Any, owner: Any) -> None:
    greedy, majority, first = strategies(experiment)
    Comment.objects.create(team=experiment.team, experiment=experiment,
                           problem=experiment.problems.get(index=2),
                           author=owner, body="why 9?")
    HumanLabel.objects.create(team=experiment.team, sample=sample(experiment, first, 3, 0),
                              outcome="pass", reason="7 is fine here", author=owner)
    listing = filters.problem_list(experiment, {})
    counts = {f["filter"].key: f["count"] for f in listing["filters"]}
    assert counts == {"all": 5, "disagree": 2, "missed": 2, "unsolved": 1, "solved": 1,
                      "passed": 2, "failed": 3, "commented": 1, "labelled": 1}
    per_strategy = {row["strategy"].pk: (row["passed"], row["failed"])
                    for row in listing["strategies"]}
    assert per_strategy == {greedy.pk: (2, 3), majority.pk: (3, 2), first.pk: (2, 3)}


@pytest.mark.parametrize(("key", "expected"), [
    ("all", [0, 1, 2, 3, 4]), ("disagree", [3, 4]), ("missed", [2, 3]),
    ("unsolved", [1]), ("solved", [0]),
])
def test_it_lists_the_problems_of_each_filter(experiment: Any, key: str,
                                              expected: list[int]) -> None:
    assert indices(experiment, {"filter": key}) == expected


def test_it_lists_what_a_chosen_strategy_passed_and_failed(experiment: Any) -> None:
    greedy, majority, _ = strategies(experiment)
    assert indices(experiment, {"filter": "passed", "strategy": majority.pk}) == [0, 3, 4]
    assert indices(experiment, {"filter": "failed", "strategy": majority.pk}) == [1, 2]
    assert indices(experiment, {"filter": "passed", "strategy": greedy.pk}) == [0, 3]
    # Without a strategy the first one is meant.
    assert indices(experiment, {"filter": "passed"}) == [0, 3]


def test_it_lists_problems_with_comments_and_with_labels(experiment: Any, owner: Any,
                                                         stranger: Any) -> None:
    _, majority, _ = strategies(experiment)
    Comment.objects.create(team=experiment.team, experiment=experiment,
                           problem=experiment.problems.get(index=4),
                           sample=sample(experiment, majority, 4, 3), author=owner, body="x")
    HumanLabel.objects.create(team=experiment.team, sample=sample(experiment, majority, 1, 2),
                              outcome="fail", reason="r", author=owner)
    # Another team's label on the same (shared) pool is not this team's.
    HumanLabel.objects.create(team=stranger.memberships.get().team,
                              sample=sample(experiment, majority, 2, 0), outcome="pass",
                              reason="r", author=stranger)
    assert indices(experiment, {"filter": "commented"}) == [4]
    assert indices(experiment, {"filter": "labelled"}) == [1]


def test_it_falls_back_to_all_problems_on_what_it_does_not_know(experiment: Any) -> None:
    state = filters.problem_list(experiment, {"filter": "bogus", "strategy": "x",
                                              "page": "-3"})["state"]
    assert state.filter.key == "all" and state.page == 1
    assert state.strategy == strategies(experiment)[0]


@pytest.mark.parametrize("persona", ["owner", "teammate", "viewer"])
def test_it_shows_each_member_the_filter_in_the_url(client: Any, experiment: Any,
                                                    persona: str, request: Any) -> None:
    login(client, request.getfixturevalue(persona))
    url = reverse("experiment-detail", args=[experiment.pk])
    response = client.get(url, {"filter": "disagree"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body
    assert rendered_indices(body) == [3, 4]
    assert 'id="problem-list"' in body
    # Every filter is a link that works without JavaScript and swaps the list with htmx.
    link = re.search(r'<a class="filter active"[^>]*data-filter="disagree"[^>]*>', body,
                     re.S)
    assert link is not None
    tag = link.group(0)
    assert f'href="{url}?filter=disagree"' in tag
    assert f'hx-get="{url}?filter=disagree"' in tag
    assert 'hx-target="#problem-list"' in tag and 'hx-push-url="true"' in tag
    assert "Strategies disagree <span class=\"count\">2</span>" in body
    # The review queue starts at the filter's first problem and carries the filter.
    first = experiment.problems.get(index=3).pk
    assert (f'href="{reverse("experiment-problem", args=[experiment.pk, first])}'
            f'?filter=disagree"') in body


def test_it_returns_only_the_problem_list_to_htmx(client: Any, experiment: Any,
                                                  owner: Any) -> None:
    login(client, owner)
    _, majority, _ = strategies(experiment)
    response = client.get(reverse("experiment-detail", args=[experiment.pk]),
                          {"filter": "failed", "strategy": majority.pk},
                          HTTP_HX_REQUEST="true", HTTP_HX_TARGET="problem-list")
    body = response.content.decode()
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="problem-list"')
    assert 'id="results-table"' not in body
    assert rendered_indices(body) == [1, 2]
    assert "HX-Request" in response["Vary"] and "HX-Target" in response["Vary"]
    # The strategy chooser keeps the chosen strategy.
    assert f'<option value="{majority.pk}" selected>' in body


def test_it_gives_the_whole_page_to_a_history_restore(client: Any, experiment: Any,
                                                      owner: Any) -> None:
    login(client, owner)
    body = client.get(reverse("experiment-detail", args=[experiment.pk]),
                      {"filter": "unsolved"}, HTTP_HX_REQUEST="true",
                      HTTP_HX_TARGET="problem-list",
                      HTTP_HX_HISTORY_RESTORE_REQUEST="true").content.decode()
    assert "<html" in body and rendered_indices(body) == [1]


def test_it_keeps_the_live_fragment_for_plain_htmx_polls(client: Any, experiment: Any,
                                                         owner: Any) -> None:
    login(client, owner)
    body = client.get(reverse("experiment-detail", args=[experiment.pk]),
                      {"filter": "solved"}, HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<section id="live"')
    assert rendered_indices(body) == [0]


def test_it_pages_the_problem_list(client: Any, experiment: Any, owner: Any,
                                   monkeypatch: Any) -> None:
    monkeypatch.setattr(filters, "PAGE_SIZE", 2)
    login(client, owner)
    url = reverse("experiment-detail", args=[experiment.pk])
    first = client.get(url, {"filter": "all"}).content.decode()
    assert rendered_indices(first) == [0, 1]
    assert "Page 1 of 3" in first and f'href="{url}?filter=all&amp;page=2"' in first
    last = client.get(url, {"filter": "all", "page": 3}, HTTP_HX_REQUEST="true",
                      HTTP_HX_TARGET="problem-list").content.decode()
    assert rendered_indices(last) == [4]
    assert f'href="{url}?filter=all&amp;page=2"' in last and "Next" not in last
    # A page past the end shows the last one.
    assert rendered_indices(client.get(url, {"page": 9}).content.decode()) == [4]


def test_it_reads_the_list_in_a_bounded_number_of_queries(
    client: Any, experiment: Any, owner: Any, django_assert_max_num_queries: Any
) -> None:
    login(client, owner)
    with django_assert_max_num_queries(12):
        client.get(reverse("experiment-detail", args=[experiment.pk]),
                   {"filter": "disagree"}, HTTP_HX_REQUEST="true",
                   HTTP_HX_TARGET="problem-list")


def test_it_hides_the_list_from_strangers_and_anonymous_users(client: Any, experiment: Any,
                                                             stranger: Any) -> None:
    url = reverse("experiment-detail", args=[experiment.pk])
    response = client.get(url, {"filter": "disagree"}, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="problem-list")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    login(client, stranger)
    assert client.get(url, {"filter": "disagree"}).status_code == 404
    assert client.get(url, {"filter": "disagree"}, HTTP_HX_REQUEST="true",
                      HTTP_HX_TARGET="problem-list").status_code == 404


def test_it_walks_a_filter_in_order_for_the_review_queue(experiment: Any) -> None:
    pk = {p.index: p.pk for p in experiment.problems.all()}
    params = {"filter": "disagree"}
    at_first = filters.review_position(experiment, pk[3], params)
    assert at_first == {"label": "Strategies disagree", "query": "filter=disagree",
                        "position": 1, "total": 2, "previous_pk": None, "next_pk": pk[4]}
    at_last = filters.review_position(experiment, pk[4], params)
    assert (at_last["position"], at_last["previous_pk"], at_last["next_pk"]) == (2, pk[3], None)
    # A problem outside the filter still gets its neighbours in it.
    outside = filters.review_position(experiment, pk[0], params)
    assert (outside["position"], outside["previous_pk"], outside["next_pk"]) == (None, None, pk[3])
    assert filters.review_position(experiment, pk[3], {}) is None


def test_it_renders_the_review_nav_with_keyboard_targets(experiment: Any) -> None:
    _, majority, _ = strategies(experiment)
    pk = {p.index: p.pk for p in experiment.problems.all()}
    review = filters.review_position(
        experiment, pk[1], {"filter": "failed", "strategy": str(majority.pk)})
    html = render_to_string("experiments/partials/review-nav.html",
                            {"experiment": experiment, "review": review})
    query = f"filter=failed&amp;strategy={majority.pk}"
    assert 'id="review-nav"' in html and "1 of 2" in html
    assert (f'data-key="next" rel="next" href="'
            f'{reverse("experiment-problem", args=[experiment.pk, pk[2]])}?{query}"') in html
    assert 'data-key="prev"' not in html
    assert "Failed: " + majority.label in html
    assert '<script src="/static/js/review_keys.js" defer></script>' in html
    assert render_to_string("experiments/partials/review-nav.html",
                            {"experiment": experiment, "review": None}).strip() == ""
