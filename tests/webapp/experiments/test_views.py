"""Experiment pages through the Django test client: who sees what, and fragments."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from strategies.types import Candidate
from tests.factories import PASSWORD, make_experiment
from webapp.experiments.models import Comparison, Experiment
from webapp.experiments.pools import record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.verification import record_verdicts

pytestmark = pytest.mark.django_db


def login(client, user):  # type: ignore[no-untyped-def]
    assert client.login(username=user.username, password=PASSWORD)


def finished(experiment: Experiment) -> Experiment:
    """Store hand-written samples for every pool, verify, select, finish."""
    for strategy in experiment.strategies.all():
        for problem in experiment.dataset.problems.all():
            records = {
                i: Candidate(text=f"The answer is {problem.answer if i % 2 else 0}.",
                             prompt_tokens=10, generated_tokens=6, logprob_sum=-3.0,
                             finish_reason="eos", seconds=0.1)
                for i in range(strategy.n)
            }
            record_samples(strategy.pool_id, problem.pk, records)
        record_verdicts(experiment, strategy.pool_id,
                        list(experiment.dataset.problems.values_list("pk", flat=True)))
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    compute_results(experiment.pk)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FINISHED)
    experiment.refresh_from_db()
    return experiment


def test_it_sends_anonymous_users_to_login(client, team) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team)
    problem = experiment.dataset.problems.first()
    for url in [
        reverse("experiment-list"),
        reverse("experiment-new"),
        reverse("experiment-strategy-row"),
        reverse("experiment-detail", args=[experiment.pk]),
        reverse("experiment-problem", args=[experiment.pk, problem.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_it_shows_the_owner_and_teammate_their_experiment(client, team, owner, teammate) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team, name="Visible <b>run</b>")
    for user in (owner, teammate):
        login(client, user)
        listing = client.get(reverse("experiment-list"))
        assert "Visible &lt;b&gt;run&lt;/b&gt;" in listing.content.decode()
        detail = client.get(reverse("experiment-detail", args=[experiment.pk]))
        assert detail.status_code == 200
        assert 'id="progress"' in detail.content.decode()


def test_it_gives_a_stranger_404_on_every_page_and_fragment(client, team, stranger) -> None:  # type: ignore[no-untyped-def]
    experiment = finished(make_experiment(team))
    problem = experiment.dataset.problems.first()
    login(client, stranger)
    assert "Test experiment" not in client.get(reverse("experiment-list")).content.decode()
    urls = [
        reverse("experiment-detail", args=[experiment.pk]),
        reverse("experiment-problem", args=[experiment.pk, problem.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404, url


def test_it_returns_only_the_live_fragment_to_htmx_while_running(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team)
    login(client, owner)
    response = client.get(
        reverse("experiment-detail", args=[experiment.pk]), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="live"')
    assert 'hx-trigger="every 2s"' in body
    assert "Generate" in body and "Verify" in body and "Select and measure" in body


def test_it_counts_progress_once_after_a_redelivered_verification(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team, n=4)  # three problems, a greedy and a sampled pool
    problems = list(experiment.problems.order_by("index"))
    pools = {s.pool_id: s.n for s in experiment.strategies.all()}
    for pool_id, n in pools.items():
        for problem in problems[:2]:
            record_samples(pool_id, problem.pk, {
                i: Candidate(text=f"The answer is {problem.answer}.", prompt_tokens=10,
                             generated_tokens=6, logprob_sum=-3.0, finish_reason="eos",
                             seconds=0.1) for i in range(n)}, requested=n)
        for _ in range(2):  # the verification task delivered twice
            record_verdicts(experiment, pool_id, [p.pk for p in problems])
    login(client, owner)
    body = client.get(reverse("experiment-detail", args=[experiment.pk]),
                      HTTP_HX_REQUEST="true").content.decode()
    counts = dict(re.findall(r'stage-(\w+)">.*?class="stage-count">(\d+ / \d+)<', body,
                             re.DOTALL))
    assert counts == {"generate": "10 / 15", "verify": "10 / 15", "select": "0 / 9"}


def test_it_stops_polling_and_shows_results_when_finished(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = finished(make_experiment(team))
    login(client, owner)
    fragment = client.get(
        reverse("experiment-detail", args=[experiment.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "hx-trigger" not in fragment
    assert 'id="results-table"' in fragment
    assert "pass@4" in fragment and "pass@1" in fragment
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert "<html" in page and 'id="problem-grid"' in page
    for table in ("selk-table", "diversity-table", "comparison-table"):
        assert f'id="{table}"' in page, table
    assert "p (Holm)" in page and "sel@4" in page and "pass^2" in page


def test_it_shows_only_the_comparisons_stored_with_the_metrics(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = finished(make_experiment(team))
    stored = Comparison.objects.filter(strategy__experiment=experiment, labelled=False)
    assert stored.count() == 2  # the two strategies after the first, against it
    login(client, owner)
    url = reverse("experiment-detail", args=[experiment.pk])
    assert 'id="comparison-table"' in client.get(url).content.decode()
    stored.delete()
    assert 'id="comparison-table"' not in client.get(url).content.decode()


def test_it_embeds_the_chart_data_as_json_not_inline_script(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    import json
    import re

    experiment = finished(make_experiment(team))
    login(client, owner)
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    match = re.search(r'<script id="passk-data" type="application/json">(.*?)</script>', page)
    assert match is not None
    data = json.loads(match.group(1))
    assert data["k_values"] == [1, 2, 4]
    labels = {series["label"] for series in data["series"]}
    assert any("pass@k" in label for label in labels) and any("sel@k" in label for label in labels)
    assert 'src="/static/vendor/chart.umd.min.js"' in page and "cdn" not in page.lower()


def test_it_shows_every_strategys_candidates_escaped(client, team, owner) -> None:  # type: ignore[no-untyped-def]
    experiment = make_experiment(team, prompts=[("<script>alert(1)</script> 2+2?", "4")])
    problem = experiment.dataset.problems.get()
    for strategy in experiment.strategies.all():
        record_samples(strategy.pool_id, problem.pk, {
            i: Candidate(text="<img src=x onerror=alert(1)> The answer is 4",
                         prompt_tokens=5, generated_tokens=7, logprob_sum=-1.0,
                         finish_reason="eos", seconds=0.1)
            for i in range(strategy.n)
        })
        record_verdicts(experiment, strategy.pool_id, [problem.pk])
    login(client, owner)
    body = client.get(
        reverse("experiment-problem", args=[experiment.pk, problem.pk])
    ).content.decode()
    assert "<img src=x" not in body and "<script>alert(1)" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    # One column per sample pool: the two sampled strategies share theirs.
    assert body.count('class="column"') == 2
    assert "Pass" in body and "7 tokens" in body
