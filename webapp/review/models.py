"""Team review: comments on problems and candidates, and human verdict labels.

Sample pools are shared across teams (a pool is keyed by its recipe), so everything a
team writes about a sample belongs to that team: its comments and labels are never seen
by another team, and the automatic verdict stays as it was, beside the label.

Both belong to the team, not to one experiment: a comment on a problem (or a candidate)
and a label on a candidate show on every experiment of the team that reads that problem
(or candidate), as the team discusses the problem, not one run of it. Each keeps the
experiment it was written from, for context.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.datasets.models import Problem
from webapp.experiments.models import Experiment, Sample
from webapp.teams.models import Team


class Comment(models.Model):
    """A team's comment on a problem, or on one of its candidates."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="comments")
    # The experiment page it was written from; the comment shows on each of the team's
    # experiments that reads its problem (or candidate), and outlives this one.
    experiment = models.ForeignKey(
        Experiment, on_delete=models.SET_NULL, null=True, blank=True, related_name="comments"
    )
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="comments")
    # The candidate commented on; empty for the problem as a whole.
    sample = models.ForeignKey(
        Sample, on_delete=models.CASCADE, related_name="comments", null=True, blank=True
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    edited = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "pk"]
        indexes = [models.Index(fields=["team", "problem"])]


class HumanLabel(models.Model):
    """A team's verdict on a candidate, beside the automatic one: pass or fail
    (optionally with the answer it really gives, which then counts in the vote), or
    "the answer is X", judged against the reference by each experiment's verifier."""

    class Outcome(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        ANSWER = "answer", "Answer is"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="labels")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="labels")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    answer = models.TextField(null=True, blank=True)
    reason = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "sample"], name="one_label_per_team_sample")
        ]


class LabelChange(models.Model):
    """One change of a team's label on a candidate, kept for good: who, when, from what
    to what and why. An empty ``to_outcome`` is a revert to the automatic verdict."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="label_changes")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="label_changes")
    # The experiment page the change was made from (the label applies team-wide).
    experiment = models.ForeignKey(
        Experiment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    from_outcome = models.CharField(max_length=10, blank=True, default="")
    from_answer = models.TextField(null=True, blank=True)
    to_outcome = models.CharField(max_length=10, blank=True, default="")
    to_answer = models.TextField(null=True, blank=True)
    reason = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]
