"""Read-only review data for the problem page, shaped as plain data for templates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from webapp.datasets.models import Problem
from webapp.experiments.models import Experiment, Sample, Verdict
from webapp.experiments.queries import pool_names, shown_candidates
from webapp.experiments.verification import verifier_for
from webapp.review.diff import side_by_side
from webapp.review.models import Comment, HumanLabel, LabelChange
from webapp.review.services import AUTOMATIC, get_candidate, label_verdict, team_comments_q
from webapp.teams.models import Membership
from webapp.teams.services import has_role


def permissions(user: AbstractBaseUser | AnonymousUser, experiment: Experiment) -> dict[str, Any]:
    """What the page offers ``user``: everyone in the team comments, members label. The
    services check the same again on every POST."""
    return {
        "can_comment": has_role(user, experiment.team, Membership.Role.VIEWER),
        "can_label": has_role(user, experiment.team, Membership.Role.MEMBER),
        "user_id": user.pk if user.is_authenticated else None,
    }


def candidate_reviews(experiment: Experiment,
                      sample_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """For each candidate: the team's label (or None), whether the label makes it right
    here (``label_passes``: None without a label, or for a stated answer this experiment's
    verifier cannot judge), its label history (newest first) and the team's comments on
    it (oldest first), from whichever experiment they were written."""
    ids = list(sample_ids)
    out: dict[int, dict[str, Any]] = {
        pk: {"label": None, "label_passes": None, "history": [], "comments": []} for pk in ids
    }
    team = experiment.team
    for label in HumanLabel.objects.filter(team=team, sample_id__in=ids).select_related(
            "author", "sample__problem"):
        out[label.sample_id]["label"] = label
        out[label.sample_id]["label_passes"] = label_verdict(
            experiment, label.outcome, label.answer, label.sample.problem.answer)
    for change in LabelChange.objects.filter(team=team, sample_id__in=ids).select_related("author"):
        out[change.sample_id]["history"].append(change)
    for comment in Comment.objects.filter(team_comments_q(experiment), sample_id__in=ids
                                          ).select_related("author", "experiment"):
        out[comment.sample_id]["comments"].append(comment)
    return out


def attach_reviews(experiment: Experiment, columns: list[dict[str, Any]]) -> None:
    """Add each shown candidate's ``review`` (``candidate_reviews``) to the page's
    columns, and to each column how many of all its candidates the team labelled."""
    shown = shown_candidates(columns)
    reviews = candidate_reviews(experiment, [c["sample"].pk for c in shown])
    for candidate in shown:
        candidate["review"] = reviews[candidate["sample"].pk]
    problems = {c["sample"].problem_id for column in columns for c in column["candidates"]}
    labelled = set(HumanLabel.objects.filter(
        team=experiment.team, sample__problem_id__in=problems,
    ).values_list("sample_id", flat=True))
    for column in columns:
        column["labelled"] = sum(1 for c in column["candidates"] if c["sample"].pk in labelled)


def candidate_review(experiment: Experiment, sample: Sample) -> dict[str, Any]:
    """One candidate's review block: its sample, automatic verdict and ``review``."""
    verdict = Verdict.objects.filter(sample=sample, verifier=verifier_for(experiment)).first()
    return {
        "sample": sample,
        "verdict": verdict,
        "review": candidate_reviews(experiment, [sample.pk])[sample.pk],
    }


def expected_outcome(review: dict[str, Any]) -> str:
    """The label outcome the page shows, sent back so a change can be refused when
    somebody else changed the label meanwhile."""
    label = review["label"]
    return label.outcome if label is not None else AUTOMATIC


def problem_comments(experiment: Experiment, problem: Problem) -> dict[str, Any]:
    """The team's comments on the problem itself (oldest first, from any of its
    experiments) and how many each commented candidate of this experiment has, for the
    ``#comments`` section."""
    shown = Comment.objects.filter(team_comments_q(experiment), problem=problem)
    comments = list(shown.filter(sample__isnull=True).select_related("author", "experiment"))
    counts: dict[int, int] = defaultdict(int)
    samples: dict[int, Sample] = {}
    for comment in shown.filter(sample__isnull=False).select_related("sample"):
        assert comment.sample is not None
        counts[comment.sample_id] += 1
        samples[comment.sample_id] = comment.sample
    names = pool_names(experiment) if counts else {}
    on_candidates = [
        {"sample": samples[pk], "count": count,
         "name": f"{names.get(samples[pk].pool_id, '?')}#{samples[pk].index}"}
        for pk, count in sorted(counts.items(), key=lambda item: (
            samples[item[0]].pool_id, samples[item[0]].index))
    ]
    return {"comments": comments, "on_candidates": on_candidates}


def candidate_diff(experiment: Experiment, problem: Problem, ids: list[int]) -> dict[str, Any]:
    """The side-by-side diff of two of the page's candidates, or why there is none."""
    if len(ids) != 2:
        return {"ids": ids, "error": "Pick two candidates to compare."}
    try:
        left, right = (get_candidate(experiment, problem, pk) for pk in ids)
    except Http404:
        return {"ids": ids, "error": "Those are not two candidates of this problem."}
    names = pool_names(experiment)
    verdicts = {v.sample_id: v for v in Verdict.objects.filter(
        sample__in=[left, right], verifier=verifier_for(experiment))}
    rows = side_by_side(left.text, right.text)
    return {
        "ids": ids,
        "sides": [
            {"sample": s, "name": f"{names[s.pool_id]}#{s.index}", "verdict": verdicts.get(s.pk)}
            for s in (left, right)
        ],
        "rows": rows,
        "changed": sum(1 for r in rows if r.kind != "equal"),
        "identical": left.text == right.text,
    }
