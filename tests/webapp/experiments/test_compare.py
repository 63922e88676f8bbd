"""The compare page: two experiments (strategies paired by label) or two strategies, on
their shared problems, checked against a hand count; who may see it; how it is reached."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from strategies.metrics.stats import holm_bonferroni
from tests.factories import make_experiment
from tests.webapp.experiments.review_data import build, login, strategies
from webapp.experiments import compare

pytestmark = pytest.mark.django_db

# A second run (another seed, so other pools) on the same five problems. Per problem
# (greedy, majority, first) credit, against the first run's:
#   problem   A: greedy majority first     B: greedy majority first
#   0            1      1        1            1      1        1
#   1            0      0        0            1      1        1
#   2            0      0        0            0      1        1
#   3            1      1        0            1      1        1
#   4            0      1        1            0      0        0
SECOND = {
    0: (["2"], ["2", "2", "2", "2"]),
    1: (["3"], ["3", "3", "3", "0"]),
    2: (["0"], ["4", "4", "4", "9"]),
    3: (["5"], ["5", "5", "5", "1"]),
    4: (["0"], ["0", "0", "6", "0"]),
}


@pytest.fixture
def runs(team: Any) -> tuple[Any, Any]:
    return build(team, name="First <i>run</i>"), build(team, SECOND, seed=1, name="Second run")


def url(**params: Any) -> str:
    from urllib.parse import urlencode

    return reverse("experiment-compare") + "?" + urlencode(params, doseq=True)


def test_it_pairs_the_strategies_and_tests_them_as_counted_by_hand(runs: Any) -> None:
    a, b = runs
    result = compare.compare_experiments(a, b)
    assert [(p.a.label, p.b.label) for p in result["pairs"]] == [
        (s.label, s.label) for s in strategies(a)]
    rows = {row["pair"].a.selector + str(row["pair"].a.is_greedy): row for row in result["rows"]}
    greedy, majority, first = rows["firstTrue"], rows["majorityFalse"], rows["firstFalse"]
    for row in (greedy, majority, first):
        assert row["problems"] == 5
    # A minus B per problem: greedy 0 -1 0 0 0; majority 0 -1 -1 0 +1; first 0 -1 -1 -1 +1.
    assert (greedy["test"].wins, greedy["test"].ties, greedy["test"].losses) == (0, 4, 1)
    assert (majority["test"].wins, majority["test"].ties, majority["test"].losses) == (1, 2, 2)
    assert (first["test"].wins, first["test"].ties, first["test"].losses) == (1, 1, 3)
    assert greedy["test"].mean_diff == pytest.approx(-0.2)
    assert majority["test"].mean_diff == pytest.approx(-0.2)
    assert first["test"].mean_diff == pytest.approx(-0.4)
    # Exact McNemar on the discordant problems: min(1, 2 * BinomCDF(min(b, c); b + c, 1/2)).
    assert greedy["test"].p_value_mcnemar == pytest.approx(1.0)      # b=0, c=1
    assert majority["test"].p_value_mcnemar == pytest.approx(1.0)    # b=1, c=2
    assert first["test"].p_value_mcnemar == pytest.approx(0.625)     # b=1, c=3: 2 * 5/16
    # One non-zero difference: every sign flip reaches |mean|, so p = 1.
    assert greedy["test"].p_value_sign_flip == 1.0
    raw = [row["test"].p_value_sign_flip for row in result["rows"]]
    assert [row["p_holm"] for row in result["rows"]] == pytest.approx(
        list(holm_bonferroni(raw)))
    assert all(row["p_holm"] >= p for row, p in zip(result["rows"], raw, strict=True))
    assert (majority["a_accuracy"].value, majority["b_accuracy"].value) == pytest.approx(
        (0.6, 0.8))
    assert majority["a_accuracy"].low <= 0.6 <= majority["a_accuracy"].high
    # pass@1 on the shared problems: A's shared pool has 10 of 20 right, B's 14 of 20.
    assert (majority["a_pass1"].value, majority["b_pass1"].value) == pytest.approx((0.5, 0.7))
    # Problems where some pair's selections differ: 1, 2, 3 and 4.
    assert [d["problem"].index for d in result["differing"]] == [1, 2, 3, 4]
    assert result["differing_total"] == 4
    stored = {f["title"]: f for f in majority["stored"]}
    assert stored["Selected accuracy"]["delta"] == pytest.approx(-0.2)


def test_it_compares_two_strategies_of_one_experiment(runs: Any) -> None:
    a, _ = runs
    _, majority, first = strategies(a)
    result = compare.compare_strategies(majority, first)
    (row,) = result["rows"]
    # Majority minus first on the first run: 0 0 0 +1 0.
    assert (row["test"].wins, row["test"].ties, row["test"].losses) == (1, 4, 0)
    assert [d["problem"].index for d in result["differing"]] == [3]


@pytest.mark.parametrize("persona", ["owner", "teammate", "viewer"])
def test_it_shows_the_comparison_to_every_member(client: Any, runs: Any, persona: str,
                                                 request: Any) -> None:
    a, b = runs
    login(client, request.getfixturevalue(persona))
    response = client.get(url(e=[a.pk, b.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "First &lt;i&gt;run&lt;/i&gt;" in body and "<i>run" not in body
    for table in ("compare-table", "stored-table", "differing-table"):
        assert f'id="{table}"' in body, table
    assert "0 / 4 / 1" in body and "1 / 2 / 2" in body and "1 / 1 / 3" in body
    assert "Where they differ (4 problems)" in body
    problem = a.problems.get(index=1).pk
    assert f'href="{reverse("experiment-problem", args=[a.pk, problem])}"' in body
    assert f'href="{reverse("experiment-problem", args=[b.pk, problem])}"' in body
    compare_table = body.split('id="compare-table"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"-0\.400 <small", compare_table)


def test_it_compares_two_strategies_by_id(client: Any, runs: Any, owner: Any) -> None:
    a, b = runs
    login(client, owner)
    majority_a, majority_b = strategies(a)[1], strategies(b)[1]
    body = client.get(url(s=[majority_a.pk, majority_b.pk])).content.decode()
    assert "1 / 2 / 2" in body and body.count("<tr>") >= 2


def test_it_gives_404_for_another_teams_experiment_or_strategy(client: Any, runs: Any,
                                                               stranger: Any,
                                                               owner: Any) -> None:
    a, b = runs
    theirs = make_experiment(stranger.memberships.get().team, name="Theirs")
    login(client, owner)
    assert client.get(url(e=[a.pk, theirs.pk])).status_code == 404
    assert client.get(url(s=[strategies(a)[0].pk, theirs.strategies.first().pk])
                      ).status_code == 404
    assert client.get(url(e=[a.pk, "x"])).status_code == 404
    login(client, stranger)
    assert client.get(url(e=[a.pk, b.pk])).status_code == 404
    assert client.get(url(s=[strategies(a)[0].pk, strategies(b)[0].pk])).status_code == 404
    body = client.get(reverse("experiment-compare")).content.decode()
    assert "First" not in body and "Second run" not in body


def test_it_sends_anonymous_users_to_login(client: Any, runs: Any) -> None:
    a, b = runs
    for target in (reverse("experiment-compare"), url(e=[a.pk, b.pk])):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith(
            reverse("login"))


def test_it_asks_for_exactly_two(client: Any, runs: Any, owner: Any) -> None:
    a, b = runs
    login(client, owner)
    picker = client.get(reverse("experiment-compare"))
    assert picker.status_code == 200
    body = picker.content.decode()
    assert 'id="pick-experiments"' in body and 'id="pick-strategies"' in body
    one = client.get(url(e=[a.pk]))
    assert one.status_code == 400 and "Pick exactly two" in one.content.decode()


def test_it_is_reached_from_the_list_and_from_an_experiment(client: Any, runs: Any,
                                                            owner: Any) -> None:
    a, b = runs
    login(client, owner)
    listing = client.get(reverse("experiment-list")).content.decode()
    form = listing.split('id="compare-form"', 1)[1].split("</form>", 1)[0]
    assert f'action="{reverse("experiment-compare")}"' in listing
    assert 'method="get"' in listing.split('id="compare-form"', 1)[0].rsplit("<form", 1)[1]
    assert f'name="e" value="{a.pk}"' in form and f'name="e" value="{b.pk}"' in form
    detail = client.get(reverse("experiment-detail", args=[a.pk])).content.decode()
    compare_with = detail.split('class="compare-with"', 1)[1].split("</form>", 1)[0]
    assert f'<input type="hidden" name="e" value="{a.pk}">' in compare_with
    assert f'<option value="{b.pk}">' in compare_with
