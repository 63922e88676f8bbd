"""A label "the answer is X" through the problem page: stored beside the automatic
extraction, judged by the experiment's verifier, shown beside the extracted answer in the
candidate's header (out of band after an htmx change), and refused with the reason where
it cannot be judged."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.webapp.review.conftest import login, sampled
from webapp.experiments.models import Experiment, Sample, Verdict
from webapp.review.models import HumanLabel, LabelChange

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def label_url(experiment: Experiment, problem: Any, sample: Sample) -> str:
    return reverse("review-label", args=[experiment.pk, problem.pk, sample.pk])


def header(body: str, sample: Sample) -> str:
    article = body[body.index(f'id="candidate-{sample.pk}"'):]
    return article[:article.index("</header>")]


def test_a_member_says_what_the_answer_is_and_the_verifier_judges_it(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        teammate: Any) -> None:
    login(client, teammate)
    # The candidate "I think it is 5. The answer is 5" (reference 4), read again as a 4.
    response = client.post(label_url(experiment, problem, candidate),
                           {"outcome": "answer", "answer": "4.0", "reason": "typo for 4",
                            "expected": ""}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<div id="candidate-review-{candidate.pk}"')
    assert ('Human label: answer is <code class="corrected-answer">4.0</code>, '
            "<strong>right</strong>") in body
    assert "by the math verifier" in body
    # The header's mark follows out of band: the corrected answer beside the extracted one.
    assert f'<span class="label-mark" id="label-mark-{candidate.pk}" hx-swap-oob="true">' in body
    label = HumanLabel.objects.get()
    assert (label.outcome, label.answer, label.reason) == ("answer", "4.0", "typo for 4")
    # The automatic extraction and verdict stay as they were.
    verdict = Verdict.objects.get(sample=candidate)
    assert (verdict.answer, verdict.outcome) == ("5", "fail")
    change = LabelChange.objects.get()
    assert (change.from_outcome, change.to_outcome, change.to_answer) == ("", "answer", "4.0")
    assert "<strong>answer is <code>4.0</code></strong>" in body  # the history

    page = client.get(reverse("experiment-problem", args=[experiment.pk, problem.pk]))
    top = header(page.content.decode(), candidate)
    assert "· answer <code>5</code>" in top and "Fail" in top
    assert '<code class="corrected-answer"' in top and ">4.0</code>" in top
    assert '<span class="human-verdict human-pass">pass</span>' in top


def test_a_wrong_stated_answer_is_a_fail(client: Client, experiment: Experiment,
                                         problem: Any, owner: Any) -> None:
    right = sampled(experiment, 0)  # "... the answer is 4": pass
    login(client, owner)
    client.post(label_url(experiment, problem, right),
                {"outcome": "answer", "answer": "44", "reason": "it says 44"}, **HTMX)
    top = header(client.get(reverse("experiment-problem", args=[experiment.pk, problem.pk]))
                 .content.decode(), right)
    assert '<span class="human-verdict human-fail">fail</span>' in top


@pytest.mark.parametrize(("data", "message"), [
    ({"outcome": "answer", "reason": "r"}, "Write the answer the candidate gives."),
    ({"outcome": "maybe", "reason": "r"}, "Select a valid choice"),
    ({"outcome": "answer", "answer": "4", "reason": ""}, "Say why"),
])
def test_a_stated_answer_without_what_it_needs_is_refused_with_the_reason(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample, owner: Any,
        data: dict[str, str], message: str) -> None:
    login(client, owner)
    url = label_url(experiment, problem, candidate)
    response = client.post(url, data)
    assert response.status_code == 400 and message in response.content.decode()
    response = client.post(url, data, **HTMX)
    assert response.status_code == 200 and message in response.content.decode()
    assert not HumanLabel.objects.exists()


def test_a_viewer_cannot_state_an_answer_and_a_stranger_cannot_see_it(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        viewer: Any, stranger: Any) -> None:
    data = {"outcome": "answer", "answer": "4", "reason": "r"}
    login(client, viewer)
    assert client.post(label_url(experiment, problem, candidate), data).status_code == 403
    assert client.post(label_url(experiment, problem, candidate), data, **HTMX).status_code == 403
    login(client, stranger)
    assert client.post(label_url(experiment, problem, candidate), data).status_code == 404
    assert not HumanLabel.objects.exists()


def test_a_stated_answer_stays_inert_text(client: Client, experiment: Experiment,
                                          problem: Any, candidate: Sample, owner: Any) -> None:
    from tests.webapp.review.test_problem_page import assert_inert

    login(client, owner)
    evil = '<img src=x onerror=alert(3)> hx-get="/evil"'
    client.post(label_url(experiment, problem, candidate),
                {"outcome": "fail", "answer": evil, "reason": "<b>why</b>"})
    body = client.get(reverse("experiment-problem", args=[experiment.pk, problem.pk])
                      ).content.decode()
    assert_inert(body)
    assert "&lt;img src=x onerror=alert(3)&gt; hx-get=&quot;/evil&quot;" in header(body, candidate)
