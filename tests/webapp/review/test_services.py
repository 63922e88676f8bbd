"""Review services: who may comment and label, the label history, reverts, conflicts,
the hook after every label change, and the lookups the problem list uses."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from tests.factories import make_experiment
from tests.webapp.review.conftest import finish, sampled, store
from webapp.experiments.models import Experiment, Sample, Verdict
from webapp.review import services
from webapp.review.models import Comment, HumanLabel, LabelChange

pytestmark = pytest.mark.django_db


def test_it_lets_everyone_in_the_team_comment_and_nobody_else(
        experiment: Experiment, problem: Any, candidate: Sample, owner: Any, teammate: Any,
        viewer: Any, stranger: Any) -> None:
    for user in (owner, teammate, viewer):
        services.add_comment(user, experiment, problem, f"  from {user.username}  ")
    services.add_comment(viewer, experiment, problem, "on a candidate", sample=candidate)
    assert [c.body for c in Comment.objects.all()] == [
        "from alpha-owner", "from bob", "from vera", "on a candidate"]
    with pytest.raises(Http404):
        services.add_comment(stranger, experiment, problem, "hello")
    with pytest.raises(services.ReviewError, match="Write something"):
        services.add_comment(owner, experiment, problem, "   ")


def test_it_lets_only_the_author_edit_or_delete_a_comment(
        experiment: Experiment, problem: Any, owner: Any, teammate: Any) -> None:
    comment = services.add_comment(teammate, experiment, problem, "first")
    with pytest.raises(PermissionDenied):
        services.edit_comment(owner, comment, "not mine")
    with pytest.raises(PermissionDenied):
        services.delete_comment(owner, comment)
    assert services.edit_comment(teammate, comment, "second") is True
    comment.refresh_from_db()
    assert comment.body == "second" and comment.edited is not None
    assert services.delete_comment(teammate, comment) is True
    assert services.delete_comment(teammate, comment) is False  # already gone
    assert services.edit_comment(teammate, comment, "third") is False


def test_it_keeps_the_automatic_verdict_and_every_label_change(
        experiment: Experiment, candidate: Sample, teammate: Any, owner: Any) -> None:
    automatic = Verdict.objects.get(sample=candidate)
    assert automatic.outcome == "fail"
    first = services.set_label(teammate, experiment, candidate, outcome="pass",
                               reason="5 is right for this prompt", expected="")
    assert first is not None
    label = HumanLabel.objects.get()
    assert (label.team_id, label.outcome, label.author) == (experiment.team_id, "pass", teammate)
    second = services.set_label(owner, experiment, candidate, outcome="fail", answer="5",
                                reason="Checked again", expected="pass")
    assert second is not None
    # Same label again: nothing recorded.
    assert services.set_label(owner, experiment, candidate, outcome="fail", answer=" 5 ",
                              reason="again") is None
    reverted = services.revert_label(teammate, experiment, candidate, reason="Verifier was right",
                                     expected="fail")
    assert reverted is not None
    assert not HumanLabel.objects.exists()
    assert services.revert_label(teammate, experiment, candidate, reason="nothing") is None
    history = [(c.author.username, c.from_outcome, c.from_answer, c.to_outcome, c.to_answer,
                c.reason) for c in LabelChange.objects.order_by("created", "pk")]
    assert history == [
        ("bob", "", None, "pass", None, "5 is right for this prompt"),
        ("alpha-owner", "pass", None, "fail", "5", "Checked again"),
        ("bob", "fail", "5", "", None, "Verifier was right"),
    ]
    automatic.refresh_from_db()
    assert automatic.outcome == "fail"  # never touched


def test_it_refuses_a_label_changed_since_the_page_was_loaded(
        experiment: Experiment, candidate: Sample, teammate: Any, owner: Any) -> None:
    services.set_label(teammate, experiment, candidate, outcome="pass", reason="looks right",
                       expected="")
    with pytest.raises(services.LabelConflict, match="changed this label meanwhile"):
        services.set_label(owner, experiment, candidate, outcome="fail", reason="no",
                           expected="")
    with pytest.raises(services.LabelConflict):
        services.revert_label(owner, experiment, candidate, reason="no", expected="fail")
    assert HumanLabel.objects.get().outcome == "pass"
    assert LabelChange.objects.count() == 1


def test_it_requires_a_reason_and_a_known_outcome(
        experiment: Experiment, candidate: Sample, teammate: Any) -> None:
    with pytest.raises(services.ReviewError, match="reason"):
        services.set_label(teammate, experiment, candidate, outcome="pass", reason="  ")
    with pytest.raises(services.ReviewError, match="pass or fail"):
        services.set_label(teammate, experiment, candidate, outcome="maybe", reason="hm")
    with pytest.raises(services.ReviewError, match="reason"):
        services.revert_label(teammate, experiment, candidate, reason="")
    assert not LabelChange.objects.exists()


def test_viewers_may_not_label_and_strangers_do_not_see_the_team(
        experiment: Experiment, candidate: Sample, viewer: Any, stranger: Any) -> None:
    with pytest.raises(PermissionDenied):
        services.set_label(viewer, experiment, candidate, outcome="pass", reason="x")
    with pytest.raises(PermissionDenied):
        services.revert_label(viewer, experiment, candidate, reason="x")
    with pytest.raises(Http404):
        services.set_label(stranger, experiment, candidate, outcome="pass", reason="x")
    assert not HumanLabel.objects.exists() and not LabelChange.objects.exists()


def test_it_calls_the_hook_after_commit_for_every_experiment_reading_the_candidate(
        team: Any, experiment: Experiment, candidate: Sample, teammate: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    # The same recipe in a second experiment of the team reuses the pool: the label
    # counts there too.
    again = make_experiment(team, prompts=[(experiment.problems.get().prompt, "4")],
                            name="Again")
    assert again.strategies.get(position=1).pool_id == candidate.pool_id
    with mock.patch.object(services, "on_labels_changed") as hook:
        with django_capture_on_commit_callbacks(execute=True):
            services.set_label(teammate, experiment, candidate, outcome="pass", reason="r")
        assert [c.args for c in hook.call_args_list] == [(experiment.pk,), (again.pk,)]
        hook.reset_mock()
        with django_capture_on_commit_callbacks(execute=True):
            services.revert_label(teammate, experiment, candidate, reason="r")
        assert [c.args for c in hook.call_args_list] == [(experiment.pk,), (again.pk,)]
        hook.reset_mock()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.revert_label(teammate, experiment, candidate, reason="no label now")
        assert callbacks == [] and hook.call_count == 0


def test_the_hook_waits_for_the_commit(
        experiment: Experiment, candidate: Sample, teammate: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    with mock.patch.object(services, "on_labels_changed") as hook:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.set_label(teammate, experiment, candidate, outcome="pass", reason="r")
        hook.assert_not_called()
        assert len(callbacks) == 1
        callbacks[0]()
        hook.assert_called_once_with(experiment.pk)


def test_it_lists_problems_with_comments_and_labels(
        team: Any, experiment: Experiment, teammate: Any, stranger: Any) -> None:
    other = make_experiment(team, prompts=[("1+1?", "2"), ("2+3?", "5")], name="Other")
    one, two = other.problems.order_by("index")
    pool_id = other.strategies.get(position=1).pool_id
    store(pool_id, one.pk, ["the answer is 2"] * 4)
    store(pool_id, two.pk, ["the answer is 5"] * 4)
    finish(other)
    assert services.problems_with_comments(other) == set()
    assert services.problems_with_labels(other, team) == set()
    services.add_comment(teammate, other, two, "look")
    labelled = Sample.objects.get(pool_id=pool_id, problem=one, index=3)
    services.set_label(teammate, other, labelled, outcome="fail", reason="copied")
    assert services.problems_with_comments(other) == {two.pk}
    assert services.problems_with_labels(other, team) == {one.pk}
    assert services.problems_with_labels(other, stranger.memberships.get().team) == set()
    # Comments and labels elsewhere do not leak in.
    services.add_comment(teammate, experiment, experiment.problems.get(), "elsewhere")
    services.set_label(teammate, experiment, sampled(experiment, 0), outcome="fail", reason="r")
    assert services.problems_with_comments(other) == {two.pk}
    assert services.problems_with_labels(other, team) == {one.pk}


def test_a_candidate_outside_the_experiment_is_404(
        team: Any, experiment: Experiment, problem: Any) -> None:
    other = make_experiment(team, prompts=[("Another", "1")], name="Other", n=2)
    other_problem = other.problems.get()
    store(other.strategies.get(position=1).pool_id, other_problem.pk, ["1", "2"])
    foreign = Sample.objects.filter(problem=other_problem).first()
    assert foreign is not None
    with pytest.raises(Http404):
        services.get_candidate(experiment, problem, foreign.pk)
    assert services.get_candidate(experiment, problem, sampled(experiment, 3).pk).index == 3
