"""Comments are the team's: one written on a problem (or a candidate) from one experiment
shows on every experiment of the team that includes that problem (or reads that
candidate), says where it was written, and counts in the "has comments" filter there."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_experiment
from tests.webapp.review.conftest import SAMPLED, finish, login, sampled, store
from webapp.experiments import filters
from webapp.experiments.models import Experiment
from webapp.experiments.specs import StrategySpec
from webapp.review import services
from webapp.review.models import Comment

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def rerun(team: Any, experiment: Experiment) -> Experiment:
    """A second experiment of the team on the same problem: the same sampled pool (the
    same recipe) read by its first 2 samples only, and majority vote."""
    other = make_experiment(
        team, prompts=[("What is 2+2? <script>alert(2)</script>", "4")], n=2,
        name="Second look", strategies=[StrategySpec(temperature=0.7, selector="majority")])
    assert other.dataset_id == experiment.dataset_id
    assert other.strategies.get().pool_id == experiment.strategies.get(position=1).pool_id
    store(other.strategies.get().pool_id, other.problems.get().pk, SAMPLED)
    return finish(other)


def page(client: Client, experiment: Experiment) -> str:
    problem = experiment.problems.get()
    response = client.get(reverse("experiment-problem", args=[experiment.pk, problem.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_comment_on_a_problem_shows_on_every_experiment_of_the_team_with_it(
        client: Client, experiment: Experiment, rerun: Experiment, problem: Any,
        teammate: Any, viewer: Any) -> None:
    services.add_comment(teammate, experiment, problem, "The reference looks right")
    login(client, viewer)
    here = page(client, experiment)
    there = page(client, rerun)
    for body in (here, there):
        comments = body.split('id="comments"', 1)[1]
        assert "The reference looks right" in comments
    # Where it was written, said on the other experiment only (with a link back).
    written = reverse("experiment-problem", args=[experiment.pk, problem.pk])
    assert f'on <a href="{written}">{experiment.name}</a>' in there
    assert "comment-origin" not in here.split('id="comments"', 1)[1]
    assert "{#" not in there and "{%" not in there  # template comments stay comments
    assert filters.problem_list(rerun, {"filter": "commented"})["total"] == 1


def test_a_comment_on_a_candidate_shows_where_the_candidate_is_read(
        client: Client, experiment: Experiment, rerun: Experiment, problem: Any,
        owner: Any) -> None:
    read_by_both = sampled(experiment, 1)
    read_here_only = sampled(experiment, 3)  # the rerun reads samples 0 and 1
    services.add_comment(owner, experiment, problem, "Why 5?", sample=read_by_both)
    services.add_comment(owner, experiment, problem, "No answer at all", sample=read_here_only)
    login(client, owner)
    there = page(client, rerun)
    assert "Why 5?" in there and "No answer at all" not in there
    assert f'<a href="#candidate-{read_by_both.pk}">A#1</a> (1)' in there
    here = page(client, experiment)
    assert "Why 5?" in here and "No answer at all" in here
    # Only the problem's comments-on-candidates count where they are shown.
    services.delete_comment(owner, Comment.objects.get(body="Why 5?"))
    assert filters.problem_list(rerun, {"filter": "commented"})["total"] == 0
    assert filters.problem_list(experiment, {"filter": "commented"})["total"] == 1


def test_its_author_edits_and_deletes_it_from_either_experiment(
        client: Client, experiment: Experiment, rerun: Experiment, problem: Any,
        teammate: Any, owner: Any) -> None:
    comment = services.add_comment(teammate, experiment, problem, "first thought")
    args = [rerun.pk, rerun.problems.get().pk, comment.pk]
    login(client, owner)
    assert client.post(reverse("review-comment-edit", args=args),
                       {"body": "not mine"}).status_code == 403
    login(client, teammate)
    response = client.post(reverse("review-comment-edit", args=args), {"body": "second"},
                           **HTMX)
    assert response.status_code == 200 and "second" in response.content.decode()
    assert client.post(reverse("review-comment-delete", args=args), **HTMX).status_code == 200
    assert not Comment.objects.exists()


def test_it_stays_in_its_team_and_outlives_its_experiment(
        client: Client, experiment: Experiment, rerun: Experiment, problem: Any, owner: Any,
        stranger: Any) -> None:
    comment = services.add_comment(owner, experiment, problem, "team only")
    assert comment.team == experiment.team
    login(client, stranger)
    edit = reverse("review-comment-edit", args=[rerun.pk, problem.pk, comment.pk])
    assert client.get(edit).status_code == 404
    # Deleting the experiment it was written from keeps the team's discussion.
    Experiment.objects.filter(pk=experiment.pk).delete()
    comment.refresh_from_db()
    assert comment.experiment is None
    login(client, owner)
    body = page(client, rerun)
    assert "team only" in body and "on a deleted experiment" in body
