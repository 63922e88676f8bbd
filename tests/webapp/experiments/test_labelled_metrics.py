"""Metrics follow the labels: a label change marks the figures with labels stale and
enqueues their recompute; the task stores them beside the automatic ones, which stay; the
page shows both, what the labels changed, "updating" meanwhile, and the agreement."""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.urls import reverse

from tests.webapp.experiments.review_data import build, login, sample, strategies
from webapp import queue
from webapp.experiments import queries, results
from webapp.experiments.labelled import label_agreement
from webapp.experiments.models import Comparison, Experiment, Metric
from webapp.review.models import HumanLabel
from webapp.review.services import on_labels_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(team: Any) -> Any:
    return build(team)


def accuracy(strategy: Any, labelled: bool) -> float:
    return Metric.objects.get(strategy=strategy, name="selected_accuracy", k=0,
                              labelled=labelled).value


def label(experiment: Any, strategy: Any, problem: int, index: int, outcome: str,
          answer: str | None = None) -> HumanLabel:
    owner = experiment.team.memberships.get(role="owner").user
    return HumanLabel.objects.create(
        team=experiment.team, sample=sample(experiment, strategy, problem, index),
        outcome=outcome, answer=answer, reason="read it", author=owner)


def change_labels(experiment: Any, django_capture_on_commit_callbacks: Any) -> mock.Mock:
    """What the problem page does after a label change: call the hook, commit."""
    with mock.patch.object(queue, "send") as send, \
            django_capture_on_commit_callbacks(execute=True):
        on_labels_changed(experiment.pk)
    return send


def run_task(experiment: Any) -> None:
    from workers import tasks

    tasks.compute_labelled_metrics(experiment.pk)


def test_it_recomputes_majority_accuracy_with_labels_and_keeps_the_automatic_one(
    experiment: Any, django_capture_on_commit_callbacks: Any
) -> None:
    greedy, majority, first = strategies(experiment)
    before = {s.pk: accuracy(s, labelled=False) for s in (greedy, majority, first)}
    assert before == {greedy.pk: pytest.approx(0.4), majority.pk: pytest.approx(0.6),
                      first.pk: pytest.approx(0.4)}
    # Problem 2: the majority answer 0 (sample 0 of the shared pool, also what "first"
    # picks) is marked right; problem 0: the greedy answer is marked wrong.
    label(experiment, majority, 2, 0, "pass")
    label(experiment, greedy, 0, 0, "fail")
    send = change_labels(experiment, django_capture_on_commit_callbacks)
    send.assert_called_once_with(queue.COMPUTE_LABELLED_METRICS, experiment.pk)
    experiment.refresh_from_db()
    assert experiment.is_labelling_pending
    assert not Metric.objects.filter(labelled=True).exists()

    run_task(experiment)

    experiment.refresh_from_db()
    assert not experiment.is_labelling_pending
    assert {s.pk: accuracy(s, labelled=False) for s in (greedy, majority, first)} == before
    assert accuracy(majority, labelled=True) == pytest.approx(0.8)
    assert accuracy(first, labelled=True) == pytest.approx(0.6)
    assert accuracy(greedy, labelled=True) == pytest.approx(0.2)
    # pass@1 of the shared pool: 10 of 20 candidates right, 11 with the label.
    assert Metric.objects.get(strategy=majority, name="pass_at_k", k=1,
                              labelled=True).value == pytest.approx(0.55)
    assert set(Metric.objects.filter(labelled=True).values_list("name", flat=True)) == set(
        results.LABELLED_METRICS)
    # The readers of the automatic figures still see the automatic ones.
    summary = {row["strategy"].pk: row["accuracy"].value
               for row in queries.summary_rows(experiment)}
    assert summary == before


def test_it_counts_an_answer_label_in_the_vote(experiment: Any,
                                               django_capture_on_commit_callbacks: Any) -> None:
    _, majority, _ = strategies(experiment)
    # Problem 2's pool reads 0 0 4 9: saying the 9 is really a (right) 4 ties 0 and 4,
    # so the majority vote gets half credit there: (1 + 0 + 0.5 + 1 + 1) / 5.
    label(experiment, majority, 2, 3, "pass", answer="4")
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    assert accuracy(majority, labelled=True) == pytest.approx(0.7)
    assert accuracy(majority, labelled=False) == pytest.approx(0.6)


def test_it_drops_the_labelled_figures_when_every_label_is_reverted(
    experiment: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _, majority, _ = strategies(experiment)
    mark = label(experiment, majority, 2, 0, "pass")
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    assert Metric.objects.filter(labelled=True).exists()
    mark.delete()
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    assert not Metric.objects.filter(labelled=True).exists()
    assert accuracy(majority, labelled=False) == pytest.approx(0.6)


def test_it_lets_a_slower_run_for_older_labels_write_nothing(experiment: Any) -> None:
    _, majority, _ = strategies(experiment)
    label(experiment, majority, 2, 0, "pass")
    Experiment.objects.filter(pk=experiment.pk).update(labels_version=3, labelled_version=4)
    assert results.compute_labelled_results(experiment.pk) is False
    assert not Metric.objects.filter(labelled=True).exists()
    Experiment.objects.filter(pk=experiment.pk).update(labels_version=5)
    assert results.compute_labelled_results(experiment.pk) is True
    assert Experiment.objects.get(pk=experiment.pk).labelled_version == 5


def test_it_keeps_the_labelled_figures_when_the_automatic_ones_are_recomputed(
    experiment: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _, majority, _ = strategies(experiment)
    label(experiment, majority, 2, 0, "pass")
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    labelled = Metric.objects.filter(labelled=True).count()
    automatic = Metric.objects.filter(labelled=False).count()
    compared = Comparison.objects.filter(labelled=True).count()
    assert compared == 2
    results.compute_results(experiment.pk)
    assert Metric.objects.filter(labelled=True).count() == labelled
    assert Metric.objects.filter(labelled=False).count() == automatic
    assert Comparison.objects.filter(labelled=True).count() == compared


def test_it_leaves_a_running_experiment_to_its_metrics_task(
    experiment: Any, monkeypatch: Any
) -> None:
    from workers import tasks

    _, majority, _ = strategies(experiment)
    # A label the team put on this pool's sample before (pools are reused): the metrics
    # task of a new run counts it at once.
    label(experiment, majority, 2, 0, "pass")
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    tasks.compute_labelled_metrics(experiment.pk)
    assert not Metric.objects.filter(labelled=True).exists()
    monkeypatch.setattr(tasks, "embed_texts", None)
    tasks.compute_metrics(experiment.pk)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    assert accuracy(majority, labelled=True) == pytest.approx(0.8)


def wins_ties_losses(labelled: bool) -> dict[str, tuple[int, int, int, float]]:
    return {c.strategy.label: (c.wins, c.ties, c.losses, round(c.mean_diff, 6))
            for c in queries.comparisons(Experiment.objects.get(), labelled=labelled)}


def test_it_compares_with_the_labels_when_they_change_and_drops_them_with_the_labels(
    experiment: Any, django_capture_on_commit_callbacks: Any
) -> None:
    greedy, majority, first = strategies(experiment)
    # Per-problem credit, automatic: greedy 1 0 0 1 0, majority 1 0 0 1 1, first 1 0 0 0 1.
    automatic = {majority.label: (1, 4, 0, 0.2), first.label: (1, 3, 1, 0.0)}
    assert wins_ties_losses(labelled=False) == automatic
    assert wins_ties_losses(labelled=True) == {}
    label(experiment, majority, 2, 0, "pass")
    label(experiment, greedy, 0, 0, "fail")
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    # With the labels: greedy 0 0 0 1 0, majority 1 0 1 1 1, first 1 0 1 0 1.
    assert wins_ties_losses(labelled=True) == {majority.label: (3, 2, 0, 0.6),
                                               first.label: (3, 1, 1, 0.4)}
    assert wins_ties_losses(labelled=False) == automatic
    HumanLabel.objects.all().delete()  # every label reverted
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    assert wins_ties_losses(labelled=True) == {}
    assert wins_ties_losses(labelled=False) == automatic


def test_it_shows_the_comparison_with_labels_beside_the_automatic_one(
    client: Any, experiment: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _, majority, _ = strategies(experiment)
    login(client, owner)
    url = reverse("experiment-detail", args=[experiment.pk])
    assert 'id="labelled-comparison-table"' not in client.get(url).content.decode()
    label(experiment, majority, 2, 0, "pass")
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    fragment = client.get(url, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="labelled-figures").content.decode()
    table = fragment.split('id="labelled-comparison-table"', 1)[1].split("</table>", 1)[0]
    row = table.split(majority.label, 1)[1].split("</tr>", 1)[0]
    assert "2 / 3 / 0" in row  # majority minus greedy: problems 2 and 4 won
    page = client.get(url).content.decode()
    automatic = page.split('id="comparison-table"', 1)[1].split("</table>", 1)[0]
    assert "1 / 4 / 0" in automatic.split(majority.label, 1)[1].split("</tr>", 1)[0]


def test_it_routes_the_task_to_the_cpu_queue() -> None:
    from workers import tasks
    from workers.celery import app

    assert settings.CELERY_TASK_ROUTES[queue.COMPUTE_LABELLED_METRICS] == {"queue": "cpu"}
    assert tasks.compute_labelled_metrics.name == queue.COMPUTE_LABELLED_METRICS
    assert queue.COMPUTE_LABELLED_METRICS in app.tasks


def test_it_tables_the_labels_against_the_verifier(experiment: Any) -> None:
    greedy, majority, first = strategies(experiment)
    label(experiment, majority, 2, 0, "pass")   # verifier: fail
    label(experiment, greedy, 0, 0, "fail")     # verifier: pass
    label(experiment, first, 1, 1, "fail")      # verifier: fail
    agreement = label_agreement(experiment)
    assert agreement["table"] == [[0, 1], [1, 1]]
    assert (agreement["fail_to_pass"], agreement["pass_to_fail"], agreement["agree"]) == (1, 1, 1)
    # p_o = 1/3; margins 1/2 and 1/2: p_e = (1*1 + 2*2) / 9 = 5/9;
    # kappa = (3/9 - 5/9) / (4/9) = -0.5.
    assert agreement["kappa"] == pytest.approx(-0.5)


@pytest.mark.parametrize("persona", ["owner", "teammate", "viewer"])
def test_it_shows_both_figures_the_changes_and_the_agreement(
    client: Any, experiment: Any, persona: str, request: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    greedy, majority, _ = strategies(experiment)
    label(experiment, majority, 2, 0, "pass")
    label(experiment, greedy, 0, 0, "fail")
    change_labels(experiment, django_capture_on_commit_callbacks)
    run_task(experiment)
    login(client, request.getfixturevalue(persona))
    body = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert "2 labels</strong>: 1 fail→pass, 1 pass→fail, 0 agree" in body
    table = body.split('id="labelled-table"', 1)[1].split("</table>", 1)[0]
    row = table.split(majority.label, 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<td class="num[^"]*">(.*?)</td>', row, re.S)
    assert cells[0].startswith("0.600") and cells[1].startswith("0.800")
    assert cells[2].strip() == "+0.200"
    assert 'id="label-agreement"' in body and '<strong id="kappa">-1.00</strong>' in body
    assert "Updating" not in body


def test_it_says_updating_and_polls_only_while_the_recompute_is_pending(
    client: Any, experiment: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _, majority, _ = strategies(experiment)
    label(experiment, majority, 2, 0, "pass")
    change_labels(experiment, django_capture_on_commit_callbacks)
    login(client, owner)
    url = reverse("experiment-detail", args=[experiment.pk])
    page = client.get(url).content.decode()
    section = page.split('<section id="labelled-figures"', 1)[1].split(">", 1)[0]
    assert 'hx-trigger="every 2s"' in section and f'hx-get="{url}"' in section
    assert "Updating" in page
    poll = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="labelled-figures")
    fragment = poll.content.decode()
    assert fragment.lstrip().startswith('<section id="labelled-figures"')
    assert "<html" not in fragment and 'id="problem-list"' not in fragment
    assert "Updating" in fragment

    run_task(experiment)
    fragment = client.get(url, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="labelled-figures").content.decode()
    assert "hx-trigger" not in fragment and "Updating" not in fragment
    assert 'id="labelled-table"' in fragment


def test_it_gives_strangers_404_on_the_figures_fragment(client: Any, experiment: Any,
                                                        stranger: Any) -> None:
    url = reverse("experiment-detail", args=[experiment.pk])
    response = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="labelled-figures")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    login(client, stranger)
    assert client.get(url, HTTP_HX_REQUEST="true",
                      HTTP_HX_TARGET="labelled-figures").status_code == 404


def test_it_invites_labels_when_there_are_none(client: Any, experiment: Any,
                                               owner: Any) -> None:
    login(client, owner)
    body = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert "No human labels yet" in body and 'id="labelled-table"' not in body
