"""Review views through the test client, as each persona: owner, member, viewer (comments
yes, labels 403), another team's user (404), anonymous (login). htmx gets fragments;
every form also works as a plain POST with a CSRF token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.webapp.review.conftest import EVIL, login, sampled
from webapp.experiments.models import Experiment, Sample
from webapp.review import services
from webapp.review.models import Comment, HumanLabel, LabelChange

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def urls(experiment: Experiment, problem: Any, sample: Sample, comment: Comment) -> dict[str, str]:
    args = [experiment.pk, problem.pk]
    return {
        "comments": reverse("review-comments", args=args),
        "edit": reverse("review-comment-edit", args=[*args, comment.pk]),
        "delete": reverse("review-comment-delete", args=[*args, comment.pk]),
        "candidate": reverse("review-candidate", args=[*args, sample.pk]),
        "candidate-comment": reverse("review-candidate-comment", args=[*args, sample.pk]),
        "label": reverse("review-label", args=[*args, sample.pk]),
        "revert": reverse("review-label-revert", args=[*args, sample.pk]),
    }


@pytest.fixture
def comment(experiment: Experiment, problem: Any, owner: Any) -> Comment:
    return services.add_comment(owner, experiment, problem, "owner's note")


def page(experiment: Experiment, problem: Any) -> str:
    return reverse("experiment-problem", args=[experiment.pk, problem.pk])


def test_it_sends_anonymous_users_to_login_everywhere(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        comment: Comment) -> None:
    for name, url in urls(experiment, problem, candidate, comment).items():
        for method in (client.get, client.post):
            response = method(url)
            if response.status_code == 405:
                continue
            assert response.status_code == 302, (name, method)
            assert response["Location"].startswith(reverse("login")), name
    assert Comment.objects.count() == 1


def test_it_gives_a_stranger_404_on_every_fragment_and_post(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        comment: Comment, stranger: Any) -> None:
    login(client, stranger)
    data = {"body": "hi", "outcome": "pass", "reason": "r"}
    for name, url in urls(experiment, problem, candidate, comment).items():
        for method in (client.get, client.post):
            response = method(url, data) if method == client.post else method(url)
            if response.status_code == 405:
                continue
            assert response.status_code == 404, (name, method)
            response = method(url, data, **HTMX) if method == client.post else method(url, **HTMX)
            assert response.status_code == 404, (name, "htmx")
    assert Comment.objects.count() == 1 and not HumanLabel.objects.exists()


def test_a_candidate_or_comment_of_another_problem_is_404(
        client: Client, team: Any, experiment: Experiment, problem: Any, owner: Any) -> None:
    from tests.factories import make_experiment
    from tests.webapp.review.conftest import store

    other = make_experiment(team, prompts=[("Other?", "1")], name="Other")
    other_problem = other.problems.get()
    store(other.strategies.get(position=1).pool_id, other_problem.pk, ["1"] * 4)
    foreign = Sample.objects.filter(problem=other_problem).first()
    assert foreign is not None
    foreign_comment = services.add_comment(owner, other, other_problem, "elsewhere")
    login(client, owner)
    args = [experiment.pk, problem.pk]
    for url in (reverse("review-candidate", args=[*args, foreign.pk]),
                reverse("review-comment-edit", args=[*args, foreign_comment.pk])):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("review-label", args=[*args, foreign.pk]),
                       {"outcome": "pass", "reason": "r"}).status_code == 404
    assert not HumanLabel.objects.exists()


@pytest.mark.parametrize("persona", ["owner", "teammate", "viewer", "team_admin"])
def test_everyone_in_the_team_comments_with_htmx_and_without(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        persona: str, request: Any) -> None:
    user = request.getfixturevalue(persona)
    login(client, user)
    comments_url = reverse("review-comments", args=[experiment.pk, problem.pk])
    # Plain POST: back to the page at the comments.
    response = client.post(comments_url, {"body": "plain post"})
    assert response.status_code == 302
    assert response["Location"] == page(experiment, problem) + "#comments"
    # htmx: the #comments fragment alone.
    response = client.post(comments_url, {"body": "with htmx"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="comments"')
    assert "plain post" in body and "with htmx" in body and user.username in body
    # On a candidate: its review block, with the problem's comments out of band.
    url = reverse("review-candidate-comment", args=[experiment.pk, problem.pk, candidate.pk])
    response = client.post(url, {"body": "candidate note"}, **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith(f'<div id="candidate-review-{candidate.pk}"')
    assert "candidate note" in body and "<details class=\"review-tools\" open>" in body
    assert '<section id="comments" class="comments panel" hx-swap-oob="true">' in body
    assert "B#1</a> (1)" in body
    response = client.post(url, {"body": "candidate plain"})
    assert response["Location"] == page(experiment, problem) + f"#candidate-{candidate.pk}"
    assert Comment.objects.filter(sample=candidate).count() == 2
    assert Comment.objects.filter(author=user).count() == 4


def test_an_empty_comment_is_refused_with_the_reason(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        viewer: Any) -> None:
    login(client, viewer)
    comments_url = reverse("review-comments", args=[experiment.pk, problem.pk])
    response = client.post(comments_url, {"body": "   "})
    assert response.status_code == 400
    assert "<html" in response.content.decode() and "Write something first." in \
        response.content.decode()
    response = client.post(comments_url, {"body": ""}, **HTMX)
    assert response.status_code == 200 and "Write something first." in response.content.decode()
    url = reverse("review-candidate-comment", args=[experiment.pk, problem.pk, candidate.pk])
    response = client.post(url, {"body": ""}, **HTMX)
    assert "Write something first." in response.content.decode()
    assert not Comment.objects.exists()


def test_comments_stay_inert_text(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        teammate: Any) -> None:
    login(client, teammate)
    client.post(reverse("review-comments", args=[experiment.pk, problem.pk]), {"body": EVIL})
    client.post(reverse("review-candidate-comment", args=[experiment.pk, problem.pk,
                                                          candidate.pk]),
                {"body": "<script>alert(3)</script>"})
    for url, kwargs in ((page(experiment, problem), {}),
                        (reverse("review-comments", args=[experiment.pk, problem.pk]), HTMX),
                        (reverse("review-candidate", args=[experiment.pk, problem.pk,
                                                           candidate.pk]), HTMX)):
        body = client.get(url, **kwargs).content.decode()
        assert "<img src=x" not in body and 'hx-get="/evil"' not in body, url
        assert "<script>alert(3)" not in body, url
    body = client.get(page(experiment, problem)).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;b hx-get=&quot;/evil&quot;" in body
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in body


def test_only_the_author_edits_and_deletes_a_comment(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        comment: Comment, owner: Any, teammate: Any) -> None:
    edit = reverse("review-comment-edit", args=[experiment.pk, problem.pk, comment.pk])
    delete = reverse("review-comment-delete", args=[experiment.pk, problem.pk, comment.pk])
    login(client, teammate)
    assert client.get(edit).status_code == 403
    assert client.post(edit, {"body": "hijack"}).status_code == 403
    assert client.post(delete).status_code == 403
    body = client.get(page(experiment, problem)).content.decode()
    assert edit not in body and delete not in body  # no buttons on others' comments

    login(client, owner)
    assert edit in client.get(page(experiment, problem)).content.decode()
    form = client.get(edit, **HTMX).content.decode()
    assert form.lstrip().startswith(f'<li class="comment editing" id="comment-{comment.pk}"')
    assert "owner&#x27;s note</textarea>" in form and "<html" not in form
    assert "<html" in client.get(edit).content.decode()  # a page of its own without JS
    refused = client.post(edit, {"body": " "}, **HTMX)
    assert refused["HX-Retarget"] == f"#comment-{comment.pk}"
    assert "Write something first." in refused.content.decode()
    response = client.post(edit, {"body": "owner's better note"}, **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="comments"')
    assert "owner&#x27;s better note" in body and "(edited)" in body
    assert client.post(edit, {"body": "plain edit"})["Location"].endswith("#comments")
    response = client.post(delete, **HTMX)
    assert response.status_code == 200 and "plain edit" not in response.content.decode()
    assert not Comment.objects.exists()

    # A candidate comment answers with its candidate's block.
    note = services.add_comment(owner, experiment, problem, "on B#1", sample=candidate)
    delete = reverse("review-comment-delete", args=[experiment.pk, problem.pk, note.pk])
    body = client.post(delete, **HTMX).content.decode()
    assert body.lstrip().startswith(f'<div id="candidate-review-{candidate.pk}"')
    assert client.post(delete).status_code == 404  # already gone


@pytest.mark.parametrize("persona", ["owner", "teammate", "team_admin"])
def test_members_label_revert_and_see_the_history(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        persona: str, request: Any) -> None:
    user = request.getfixturevalue(persona)
    login(client, user)
    label = reverse("review-label", args=[experiment.pk, problem.pk, candidate.pk])
    revert = reverse("review-label-revert", args=[experiment.pk, problem.pk, candidate.pk])
    response = client.post(label, {"outcome": "pass", "answer": "5", "reason": "Prompt says 5",
                                   "expected": ""}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith(f'<div id="candidate-review-{candidate.pk}"')
    assert "Automatic: <span class=\"outcome outcome-fail\">Fail</span>" in body
    assert "Human label: <strong>Pass</strong>, answer is <code>5</code>" in body
    assert "Label saved." in body and "“Prompt says 5”" in body
    assert "1 label change" in body
    # Without JavaScript: a redirect to the candidate.
    response = client.post(label, {"outcome": "fail", "reason": "Second look",
                                   "expected": "pass"})
    assert response.status_code == 302
    assert response["Location"] == page(experiment, problem) + f"#candidate-{candidate.pk}"
    assert HumanLabel.objects.get().outcome == "fail"
    response = client.post(revert, {"reason": "Verifier was right", "expected": "fail"}, **HTMX)
    body = response.content.decode()
    assert "Reverted to the automatic verdict." in body and "Human label" not in body
    assert "<strong>automatic</strong> (reverted)" in body and "3 label changes" in body
    assert not HumanLabel.objects.exists()
    assert list(LabelChange.objects.values_list("to_outcome", flat=True)) == ["", "fail", "pass"]
    # The page shows the history too.
    body = client.get(page(experiment, problem)).content.decode()
    assert "Verifier was right" in body and "Second look" in body


def test_a_label_needs_a_reason_and_a_changed_label_is_a_conflict(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        owner: Any, teammate: Any) -> None:
    label = reverse("review-label", args=[experiment.pk, problem.pk, candidate.pk])
    login(client, owner)
    response = client.post(label, {"outcome": "pass", "reason": ""})
    assert response.status_code == 400 and "a label needs a reason" in response.content.decode()
    response = client.post(label, {"outcome": "pass", "reason": " "}, **HTMX)
    assert response.status_code == 200 and "a label needs a reason" in response.content.decode()
    response = client.post(label, {"reason": "why"}, **HTMX)
    assert "Choose pass or fail." in response.content.decode()
    assert not LabelChange.objects.exists()

    services.set_label(teammate, experiment, candidate, outcome="pass", reason="first")
    response = client.post(label, {"outcome": "fail", "reason": "stale page", "expected": ""})
    assert response.status_code == 409
    assert "changed this label meanwhile" in response.content.decode()
    response = client.post(label, {"outcome": "fail", "reason": "stale", "expected": ""}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "changed this label meanwhile" in body
    assert "Human label: <strong>Pass</strong>" in body  # the fresh state, to look again
    assert HumanLabel.objects.get().outcome == "pass"


def test_a_viewer_reads_labels_but_gets_403_on_label_posts(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        teammate: Any, viewer: Any) -> None:
    services.set_label(teammate, experiment, candidate, outcome="pass", reason="first")
    login(client, viewer)
    body = client.get(page(experiment, problem)).content.decode()
    assert "Human label: <strong>Pass</strong>" in body and "“first”" in body
    assert 'class="label-form"' not in body and 'class="revert-form"' not in body
    assert 'class="comment-form"' in body
    for name in ("review-label", "review-label-revert"):
        url = reverse(name, args=[experiment.pk, problem.pk, candidate.pk])
        assert client.post(url, {"outcome": "fail", "reason": "x"}).status_code == 403
        assert client.post(url, {"outcome": "fail", "reason": "x"}, **HTMX).status_code == 403
        assert client.post(url, {}).status_code == 403  # refused before the form is read
    assert HumanLabel.objects.get().outcome == "pass" and LabelChange.objects.count() == 1


def test_the_candidate_fragment_and_its_page_fallback(
        client: Client, experiment: Experiment, problem: Any, candidate: Sample,
        viewer: Any) -> None:
    login(client, viewer)
    url = reverse("review-candidate", args=[experiment.pk, problem.pk, candidate.pk])
    body = client.get(url, **HTMX).content.decode()
    assert body.lstrip().startswith(f'<div id="candidate-review-{candidate.pk}"')
    assert "<html" not in body
    assert client.get(url)["Location"] == page(experiment, problem) + f"#candidate-{candidate.pk}"
    comments = reverse("review-comments", args=[experiment.pk, problem.pk])
    assert client.get(comments)["Location"] == page(experiment, problem) + "#comments"
    body = client.get(comments, **HTMX).content.decode()
    assert body.lstrip().startswith('<section id="comments"')


def test_forms_carry_a_csrf_token_and_posts_without_one_are_refused(
        experiment: Experiment, problem: Any, candidate: Sample, owner: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    login(client, owner)
    body = client.get(page(experiment, problem)).content.decode()
    forms = re.findall(r'<form[^>]*method="post".*?</form>', body, flags=re.S)
    # Log out, the problem's comment, and per candidate a comment and a label.
    assert len(forms) == 1 + 1 + 5 * 2
    assert all("csrfmiddlewaretoken" in form for form in forms)
    url = reverse("review-label", args=[experiment.pk, problem.pk, candidate.pk])
    assert client.post(url, {"outcome": "pass", "reason": "r"}).status_code == 403
    assert client.post(reverse("review-comments", args=[experiment.pk, problem.pk]),
                       {"body": "x"}).status_code == 403
    assert not HumanLabel.objects.exists() and not Comment.objects.exists()
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"outcome": "pass", "reason": "r"}, HTTP_X_CSRFTOKEN=token,
                           **HTMX)
    assert response.status_code == 200 and HumanLabel.objects.exists()


def test_the_page_counts_labels_per_pool(
        client: Client, experiment: Experiment, problem: Any, teammate: Any) -> None:
    for index in (0, 3):
        services.set_label(teammate, experiment, sampled(experiment, index), outcome="fail",
                           reason="r")
    login(client, teammate)
    body = client.get(page(experiment, problem)).content.decode()
    assert "· 4 candidates · 2 labelled" in body
    assert body.count("labelled human-fail") == 2
