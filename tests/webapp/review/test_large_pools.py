"""A large pool on the problem page: candidates grouped by answer with counts, each group
paginated (its first page at first; "more" appends the next page with htmx and is a plain
link without JavaScript), so a pool of 1,000 never puts 1,000 outputs in one response."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_experiment
from tests.webapp.review.conftest import finish, login, store
from tests.webapp.review.test_problem_page import assert_inert
from webapp.experiments.models import Experiment, Sample
from webapp.experiments.queries import COLUMN_TEXTS, GROUP_PAGE
from webapp.experiments.specs import StrategySpec

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def large(team: Any, texts: list[str], name: str = "Large") -> Experiment:
    """One problem (reference 4), one sampled pool of ``len(texts)`` read by majority vote
    (past the form's cap on N when asked: a pool grows across experiments)."""
    experiment = make_experiment(
        team, prompts=[("What is 2+2?", "4")], n=min(len(texts), 256), name=name,
        strategies=[StrategySpec(temperature=0.7, selector="majority")])
    experiment.strategies.update(n=len(texts))
    store(experiment.strategies.get().pool_id, experiment.problems.get().pk, texts)
    return finish(experiment)


def url(experiment: Experiment, query: str = "") -> str:
    problem = experiment.problems.get()
    return reverse("experiment-problem", args=[experiment.pk, problem.pk]) + query


def shown(body: str, experiment: Experiment) -> list[int]:
    """Indices of the candidates the response renders, in order."""
    ids = [int(pk) for pk in re.findall(r'<article class="candidate[^"]*" id="candidate-(\d+)"',
                                        body)]
    index = dict(Sample.objects.filter(pk__in=ids).values_list("pk", "index"))
    return [index[pk] for pk in ids]


def test_a_group_shows_its_first_page_and_more_appends_the_next(
        client: Client, team: Any, owner: Any) -> None:
    # 45 right answers (one group), then 3 wrong ones: groups of 45 and 3.
    experiment = large(team, ["The answer is 4"] * 45 + ["The answer is 5"] * 3)
    pool_id = experiment.strategies.get().pool_id
    login(client, owner)
    body = client.get(url(experiment)).content.decode()
    assert shown(body, experiment) == [*range(GROUP_PAGE), 45, 46, 47]
    assert "45 of 48 · 94% · 45 pass" in body  # the group's count, whatever is shown
    more = re.search(r'<a class="more-candidates" id="more-A-1" href="([^"]+)" '
                     r'hx-get="([^"]+)" hx-target="this" hx-swap="outerHTML">'
                     r'Show 20 more <small>\(25 not shown\)</small></a>', body)
    assert more is not None
    href, hx_get = (m.replace("&amp;", "&") for m in more.groups())
    assert href == url(experiment, f"?pool={pool_id}&group=1&page=2#cluster-A-1")
    assert hx_get == url(experiment, f"?pool={pool_id}&group=1&page=2")

    # htmx: the next page alone, with the link to the one after it.
    fragment = client.get(hx_get, **HTMX)
    text = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith('<div class="group-page" id="group-page-A-1-2">')
    assert shown(text, experiment) == list(range(20, 40))
    assert "Show 5 more <small>(5 not shown)</small>" in text
    assert f"pool={pool_id}&amp;group=1&amp;page=3" in text
    last = client.get(url(experiment, f"?pool={pool_id}&group=1&page=3"), **HTMX)
    assert shown(last.content.decode(), experiment) == list(range(40, 45))
    assert "more-candidates" not in last.content.decode()
    # The fragment's forms work like the page's: each candidate has its review block.
    assert text.count('class="review"') == 20 and 'class="label-form"' in text

    # Without JavaScript the link is a page: that group at page 3, with a way back.
    page = client.get(url(experiment, f"?pool={pool_id}&group=1&page=3")).content.decode()
    assert shown(page, experiment) == [40, 41, 42, 43, 44, 45, 46, 47]
    assert "Candidates 41–45 of 45" in page and "back to the first 20" in page
    assert "<html" in page


def test_a_pool_of_a_thousand_renders_a_bounded_page(
        client: Client, team: Any, viewer: Any, django_assert_max_num_queries: Any) -> None:
    # 400 right answers, then 600 different wrong ones (one group each), the model's
    # markup in every output.
    texts = ["<b hx-get='/evil'>x</b> The answer is 4"] * 400 + [
        f"<img src=x onerror=alert({i})> The answer is {i + 10}" for i in range(600)]
    experiment = large(team, texts)
    pool_id = experiment.strategies.get().pool_id
    login(client, viewer)
    with django_assert_max_num_queries(40):
        response = client.get(url(experiment))
    body = response.content.decode()
    indices = shown(body, experiment)
    assert len(indices) <= COLUMN_TEXTS + GROUP_PAGE
    assert indices[:GROUP_PAGE] == list(range(GROUP_PAGE))  # the big group's first page
    assert len(body) < 1_500_000
    assert "1000 candidates" in body and "400 of 1000 · 40% · 400 pass" in body
    # The histogram lists the largest answers and sums the rest in one row.
    assert "576 other answers" in body
    # Groups past the first screenful show their heading and a link to their candidates.
    collapsed = re.findall(r'<a class="more-candidates" id="more-A-(\d+)" href="[^"]*" '
                           r'hx-get="([^"]*)"[^>]*>Show the candidate</a>', body)
    assert len(collapsed) > 500
    number, hx_get = collapsed[-1]
    fragment = client.get(hx_get.replace("&amp;", "&"), **HTMX).content.decode()
    assert len(shown(fragment, experiment)) == 1
    assert f'id="group-page-A-{number}-1"' in fragment
    assert_inert(body)
    assert_inert(fragment)
    assert f"pool={pool_id}" in hx_get


def test_the_selection_mark_links_to_the_page_that_shows_the_candidate(
        client: Client, team: Any, owner: Any) -> None:
    # "first" picks sample 0, which has no answer: its group is listed last, past the
    # groups the first screen shows, so the mark links to that group's page.
    texts = ["I do not know"] + [f"The answer is {i}" for i in range(1, 80)]
    experiment = make_experiment(
        team, prompts=[("What is 2+2?", "4")], n=len(texts), name="First",
        strategies=[StrategySpec(temperature=0.7, selector="first")])
    store(experiment.strategies.get().pool_id, experiment.problems.get().pk, texts)
    finish(experiment)
    pool_id = experiment.strategies.get().pool_id
    chosen = Sample.objects.get(pool_id=pool_id, index=0)
    login(client, owner)
    body = client.get(url(experiment)).content.decode()
    assert 0 not in shown(body, experiment)
    link = url(experiment, f"?pool={pool_id}&amp;group=80&amp;page=1#candidate-{chosen.pk}")
    assert f'(<a href="{link}">A#0</a>)' in body
    target = client.get(link.replace("&amp;", "&").split("#")[0]).content.decode()
    assert f'id="candidate-{chosen.pk}"' in target


def test_a_page_of_a_group_the_problem_lacks_is_404_and_hidden_from_strangers(
        client: Client, team: Any, owner: Any, stranger: Any) -> None:
    experiment = large(team, ["The answer is 4"] * 3)
    pool_id = experiment.strategies.get().pool_id
    login(client, owner)
    for query in (f"?pool={pool_id}&group=2&page=1", f"?pool={pool_id + 99}&group=1&page=1",
                  "?pool=x&group=1&page=1", f"?pool={pool_id}&group=0&page=1"):
        assert client.get(url(experiment, query)).status_code == 404, query
        assert client.get(url(experiment, query), **HTMX).status_code == 404, query
    # A page past the end shows the last one.
    assert shown(client.get(url(experiment, f"?pool={pool_id}&group=1&page=9"), **HTMX)
                 .content.decode(), experiment) == [0, 1, 2]
    good = url(experiment, f"?pool={pool_id}&group=1&page=1")
    client.logout()
    response = client.get(good, **HTMX)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    login(client, stranger)
    assert client.get(good, **HTMX).status_code == 404
    assert client.get(good).status_code == 404
