"""The experiment endpoints: submit (enqueued as the form enqueues), list, detail with
progress, metrics, results, samples with labels, and the lifecycle calls."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, make_experiment
from tests.webapp.api.conftest import token_client
from tests.webapp.api.test_spec_json import SPEC
from tests.webapp.experiments import review_data
from tests.webapp.experiments.test_new_experiment import form_data
from webapp.experiments.models import Experiment, Metric, ProblemResult, SamplePool
from webapp.review.services import set_label

pytestmark = pytest.mark.django_db

EXPERIMENTS = "/api/v1/experiments/"


def queued(redis_url: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message waiting on the gpu queue."""
    messages = []
    for raw in redis.Redis.from_url(redis_url).lrange("gpu", 0, -1):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], args))
    return sorted(messages, key=lambda m: json.dumps(m[1]))


def without_id(messages: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    return [(task, args[1:]) for task, args in messages]


def test_a_spec_is_stored_and_enqueued_as_the_form_does(
    owner: Any, team: Any, broker: str, django_capture_on_commit_callbacks: Any
) -> None:
    api = token_client(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(EXPERIMENTS, {**SPEC, "team": team.slug},
                            content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    by_api = Experiment.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["team"] == team.slug
    assert [s["selector"] for s in body["strategies"]] == ["first", "majority", "first"]
    assert [stage["key"] for stage in body["progress"]] == ["generate", "verify", "select"]
    assert by_api.created_by == owner
    from_api = queued(broker)
    assert from_api and {task for task, _ in from_api} == {"workers.tasks.generate_chunk"}
    assert all(args[0] == by_api.pk for _, args in from_api)

    redis.Redis.from_url(broker).flushdb()
    browser = Client()
    assert browser.login(username=owner.username, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.post(reverse("experiment-new"), form_data(team)).status_code == 302
    by_form = Experiment.objects.exclude(pk=by_api.pk).get()
    # The same pools (reused), so the same generation work, slice for slice.
    assert SamplePool.objects.count() == 2
    assert without_id(queued(broker)) == without_id(from_api)
    assert by_form.strategies.count() == by_api.strategies.count()


def test_a_spec_may_ask_for_10000_samples_and_its_pools_go_out_in_ranges(
    owner: Any, team: Any, broker: str, django_capture_on_commit_callbacks: Any
) -> None:
    api = token_client(owner)
    too_many = api.post(EXPERIMENTS, {**SPEC, "team": team.slug, "n_samples": 10_001},
                        content_type="application/json")
    assert too_many.status_code == 400
    assert too_many.json()["errors"] == {
        "n_samples": ["Samples per problem (N) can be at most 10,000."]}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(EXPERIMENTS, {**SPEC, "team": team.slug, "n_samples": 10_000,
                                          "dataset": {"source": "arithmetic", "size": 1}},
                            content_type="application/json")
    assert response.status_code == 201, response.content
    experiment = Experiment.objects.get(pk=response.json()["id"])
    assert experiment.k_values[-1] == 8192
    greedy, sampled, _ = experiment.strategies.order_by("position")
    problem = experiment.problems.get().pk
    # The greedy pool's one sample; the sampled pool's 10,000 in ranges of 1,024.
    assert queued(broker) == sorted(
        [("workers.tasks.generate_chunk", [experiment.pk, [[greedy.pool_id, 1]], [problem]])]
        + [("workers.tasks.generate_chunk",
            [experiment.pk, [[sampled.pool_id, 10_000]], [problem], None,
             [first, min(first + 1024, 10_000)]]) for first in range(0, 10_000, 1024)],
        key=lambda m: json.dumps(m[1]))

    # Amending: at most 10,000 too.
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FINISHED,
                                                       n_samples=8)
    grown = api.post(f"{EXPERIMENTS}{experiment.pk}/amend/", {"n_samples": 10_001},
                     content_type="application/json")
    assert grown.status_code == 400
    assert "Samples per problem (N) can be at most 10,000." in str(grown.json())


def test_a_bad_spec_is_a_400_with_errors_by_path(owner: Any, team: Any) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["strategies"][2]["selector"] = "adaptive_consistency"
    spec["strategies"][2]["selector_config"] = {"threshold": 2}
    response = token_client(owner).post(EXPERIMENTS, {**spec, "team": team.slug},
                                        content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["strategies[2].selector_config.threshold"]
    assert "threshold must be in (0.5, 1]" in errors["strategies[2].selector_config.threshold"][0]
    assert not Experiment.objects.exists()


def test_a_pool_drawn_whole_takes_at_most_256(owner: Any, team: Any) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["strategies"][2]["prompt_scheme"] = "refine"
    response = token_client(owner).post(EXPERIMENTS, {**spec, "team": team.slug,
                                                      "n_samples": 300},
                                        content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"strategies[2].prompt_scheme": [
        "The refine prompting scheme draws a problem's N samples in one run: N is at most "
        "256 for it (plain sampling goes to 10,000)."]}
    assert not Experiment.objects.exists()


def test_submitting_needs_a_team_of_yours_and_a_members_role(
    owner: Any, team: Any, viewer: Any, stranger: Any
) -> None:
    body = {**SPEC, "team": team.slug}
    assert token_client(viewer).post(EXPERIMENTS, body,
                                     content_type="application/json").status_code == 403
    response = token_client(stranger).post(EXPERIMENTS, body, content_type="application/json")
    assert response.status_code == 400 and "team" in response.json()["errors"]
    assert Client().post(EXPERIMENTS, body, content_type="application/json").status_code == 401
    missing = token_client(owner).post(EXPERIMENTS, SPEC, content_type="application/json")
    assert missing.status_code == 400 and "team" in missing.json()["errors"]
    not_json = token_client(owner).post(EXPERIMENTS, {"team": team.slug})
    assert not_json.status_code == 415
    assert not Experiment.objects.exists()


def test_the_list_is_the_users_teams_paged_and_filtered(owner: Any, team: Any,
                                                        stranger: Any) -> None:
    for i in range(3):
        make_experiment(team, name=f"Run {i}")
    make_experiment(stranger.memberships.get().team, name="Theirs")
    api = token_client(owner)
    page = api.get(EXPERIMENTS, {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert [e["name"] for e in page["results"]] == ["Run 2", "Run 1"]
    assert api.get(EXPERIMENTS, {"status": "finished"}).json()["count"] == 0
    assert api.get(EXPERIMENTS, {"team": "other"}).json()["count"] == 0
    # NUL characters match nothing (PostgreSQL refuses them in a query).
    assert api.get(EXPERIMENTS, {"team": "al\x00pha", "status": "\x00"}).status_code == 200
    assert api.post(EXPERIMENTS, {**SPEC, "team": "al\x00pha"},
                    content_type="application/json").status_code == 400
    assert Client().get(EXPERIMENTS, headers={"Authorization": "Bearer stl_\x00abcdefgh"}
                        ).status_code == 401


@pytest.fixture
def finished(team: Any) -> Experiment:
    return review_data.build(team)


def test_the_detail_shows_status_strategies_and_progress(owner: Any,
                                                        finished: Experiment) -> None:
    body = token_client(owner).get(f"{EXPERIMENTS}{finished.pk}/").json()
    assert body["status"] == "finished"
    assert [s["label"] for s in body["strategies"]] == [
        s.label for s in finished.strategies.order_by("position")]
    generate = body["progress"][0]
    assert generate["key"] == "generate" and generate["done"] == generate["total"] == 5 * (1 + 4)


def test_metrics_come_per_strategy_with_intervals(owner: Any, finished: Experiment) -> None:
    body = token_client(owner).get(f"{EXPERIMENTS}{finished.pk}/metrics/").json()
    greedy, majority, _ = review_data.strategies(finished)
    assert [row["strategy"] for row in body] == [greedy.pk, majority.pk, _.pk]
    accuracy = next(m for m in body[1]["metrics"] if m["name"] == "selected_accuracy")
    stored = Metric.objects.get(strategy=majority, name="selected_accuracy", labelled=False)
    assert (accuracy["value"], accuracy["ci_low"], accuracy["ci_high"]) == (
        stored.value, stored.ci_low, stored.ci_high)
    assert accuracy["value"] == pytest.approx(3 / 5)
    assert body[1]["labelled_metrics"] == []


def test_results_are_per_problem_and_filterable(owner: Any, finished: Experiment) -> None:
    api = token_client(owner)
    body = api.get(f"{EXPERIMENTS}{finished.pk}/results/").json()
    assert body["count"] == ProblemResult.objects.filter(
        strategy__experiment=finished).count() == 15
    _, majority, _ = review_data.strategies(finished)
    rows = api.get(f"{EXPERIMENTS}{finished.pk}/results/", {"strategy": majority.pk}).json()
    assert [r["selected_answer"] for r in rows["results"]] == ["2", "0", "0", "5", "6"]
    assert api.get(f"{EXPERIMENTS}{finished.pk}/results/",
                   {"strategy": 999999}).status_code == 404


def test_samples_carry_answers_verdicts_and_the_teams_labels(owner: Any,
                                                            finished: Experiment) -> None:
    _, majority, first = review_data.strategies(finished)
    sample = review_data.sample(finished, majority, 2, 3)  # answer 9 to 2+2: wrong
    set_label(owner, finished, sample, outcome="pass", reason="checked by hand")
    api = token_client(owner)
    body = api.get(f"{EXPERIMENTS}{finished.pk}/samples/",
                   {"strategy": majority.pk, "page_size": 100}).json()
    assert body["count"] == 5 * 4
    row = next(r for r in body["results"] if r["id"] == sample.pk)
    assert (row["answer"], row["outcome"], row["problem_index"]) == ("9", "fail", 2)
    assert sorted(row["strategies"]) == sorted([majority.pk, first.pk])
    assert row["label"]["outcome"] == "pass" and row["label"]["reason"] == "checked by hand"
    assert row["text"] == "The answer is 9." and row["generated_tokens"] == 6
    others = [r for r in body["results"] if r["id"] != sample.pk]
    assert all(r["label"] is None for r in others)
    everything = api.get(f"{EXPERIMENTS}{finished.pk}/samples/").json()
    assert everything["count"] == 5 * (1 + 4) and len(everything["results"]) == 25


def test_cancel_delete_amend_and_export(owner: Any, team: Any, finished: Experiment,
                                        broker: str) -> None:
    api = token_client(owner)
    running = make_experiment(team, name="To stop")
    response = api.post(f"{EXPERIMENTS}{running.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert api.post(f"{EXPERIMENTS}{finished.pk}/cancel/").status_code == 409

    export = api.get(f"{EXPERIMENTS}{finished.pk}/export/", {"what": "samples",
                                                              "format": "csv"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    assert "attachment" in export["Content-Disposition"]
    text = b"".join(export.streaming_content).decode()
    assert text.count("The answer is") == 25
    bad = api.get(f"{EXPERIMENTS}{finished.pk}/export/", {"format": "humaneval"})
    assert bad.status_code == 400 and "code experiments" in bad.json()["detail"]

    wrong = api.post(f"{EXPERIMENTS}{finished.pk}/amend/",
                     {"strategies": [{"selector": "majority", "top_p": 0}]},
                     content_type="application/json")
    assert wrong.status_code == 400 and "strategies[0].top_p" in wrong.json()["errors"]
    shrink = api.post(f"{EXPERIMENTS}{finished.pk}/amend/", {"n_samples": 2},
                      content_type="application/json")
    assert shrink.status_code == 400 and "N can only grow" in str(shrink.json())
    grown = api.post(f"{EXPERIMENTS}{finished.pk}/amend/",
                     {"n_samples": 8, "strategies": [{"temperature": 0.7, "label": "more"}]},
                     content_type="application/json")
    assert grown.status_code == 202, grown.content
    body = grown.json()
    assert body["status"] == "queued" and body["n_samples"] == 8
    assert body["strategies"][-1]["label"] == "more"

    assert api.delete(f"{EXPERIMENTS}{running.pk}/").status_code == 204
    assert not Experiment.objects.filter(pk=running.pk).exists()
    assert api.get(f"{EXPERIMENTS}{running.pk}/").status_code == 404
