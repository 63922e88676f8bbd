"""State changes of team review: comments, human labels and their history.

Every function takes plain arguments (the acting user, the experiment, the problem or
the candidate) and checks the actor's role itself with ``require_role``, so a view
cannot forget it: anyone in the team may comment (viewers included), members and above
label. Label changes run in one transaction and are conditional: the caller may say which
label it saw (``expected``) and the change is refused when somebody changed it since.

Comments and labels are the team's: written from one experiment's page, they show on
every experiment of the team that reads the problem or candidate (``team_comments_q``,
``affected_experiments``).

After a committed label change, ``on_labels_changed`` is called once for every experiment
of the team that reads the candidate, so figures computed with human labels can follow.
"""

from __future__ import annotations

import logging
from functools import partial

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Max, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import OperationalError

from webapp import queue
from webapp.datasets.models import Problem
from webapp.experiments.models import Experiment, ExperimentProblem, Sample, Strategy
from webapp.experiments.verification import CODE_VERIFIERS, judge_stated_answer
from webapp.review.models import Comment, HumanLabel, LabelChange
from webapp.teams.models import Membership, Team
from webapp.teams.services import require_role

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser

MAX_COMMENT = 10_000
MAX_REASON = 2_000
MAX_ANSWER = 500
#: The value ``expected`` takes for "no human label: the automatic verdict stands".
AUTOMATIC = ""


class ReviewError(ValueError):
    """A comment or label the rules refuse; the message says why, for the page."""


class LabelConflict(ReviewError):
    """The label changed since the person acting loaded the page."""


# --- Lookups --------------------------------------------------------------------------


def visible_samples_q(experiment: Experiment, prefix: str = "") -> Q:
    """A filter on samples (through ``prefix``) to the candidates this experiment's
    strategies read: each pool's first ``n`` samples for its largest ``n`` (a subquery,
    so building the filter reads nothing)."""
    largest = (
        Strategy.objects.filter(experiment_id=experiment.pk, pool_id=OuterRef(f"{prefix}pool_id"))
        .values("pool_id").annotate(largest=Max("n")).values("largest")
    )
    return Q(**{f"{prefix}index__lt": Subquery(largest)})


def get_candidate(experiment: Experiment, problem: Problem, sample_id: int) -> Sample:
    """The candidate, if the experiment shows it on this problem's page; 404 otherwise."""
    sample = (
        Sample.objects.filter(visible_samples_q(experiment), pk=sample_id, problem=problem)
        .select_related("pool")
        .first()
    )
    if sample is None:
        raise Http404("No such candidate on this problem")
    return sample


def team_comments_q(experiment: Experiment) -> Q:
    """A filter on comments to those this experiment's pages show: the team's comments
    on its problems, and on the candidates it reads, from whichever experiment."""
    return (
        Q(team_id=experiment.team_id)
        & experiment.problem_q()
        & (Q(sample__isnull=True) | visible_samples_q(experiment, "sample__"))
    )


def problems_with_comments(experiment: Experiment) -> set[int]:
    """Ids of the experiment's problems that have a comment of its team (on the problem
    or on one of the candidates the experiment reads)."""
    return set(
        Comment.objects.filter(team_comments_q(experiment)).values_list("problem_id", flat=True)
    )


def problems_with_labels(experiment: Experiment, team: Team) -> set[int]:
    """Ids of the experiment's problems where ``team`` labelled a candidate that the
    experiment reads."""
    return set(
        HumanLabel.objects.filter(
            visible_samples_q(experiment, "sample__"),
            experiment.problem_q("sample__problem"),
            team=team,
        ).values_list("sample__problem_id", flat=True)
    )


def label_verdict(experiment: Experiment, outcome: str, answer: str | None,
                  reference: str) -> bool | None:
    """Whether a label of the team makes the candidate right in this experiment: pass and
    fail say so; "the answer is X" is X judged against the reference by the experiment's
    verifier (None where it cannot judge a stated answer: the automatic verdict stands)."""
    if outcome == HumanLabel.Outcome.ANSWER:
        return judge_stated_answer(experiment, answer or "", reference)
    return outcome == HumanLabel.Outcome.PASS


def affected_experiments(team: Team, sample: Sample) -> list[int]:
    """Ids of the team's experiments that read ``sample``: a label is the team's, so it
    counts in each of them."""
    rows = (
        Experiment.objects.filter(
            team=team, dataset_id=sample.problem.dataset_id,
            strategies__pool_id=sample.pool_id, strategies__n__gt=sample.index,
        )
        .values_list("pk", "subset")
        .distinct()
    )
    subset_ids = [pk for pk, subset in rows if subset]
    chosen = set(
        ExperimentProblem.objects.filter(experiment_id__in=subset_ids, problem=sample.problem)
        .values_list("experiment_id", flat=True)
    )
    return sorted({pk for pk, subset in rows if not subset or pk in chosen})


# --- Comments ---------------------------------------------------------------------------


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise ReviewError("Write something first.")
    if len(body) > MAX_COMMENT:
        raise ReviewError(f"A comment holds at most {MAX_COMMENT:,} characters.")
    return body


def add_comment(author: User, experiment: Experiment, problem: Problem, body: str,
                sample: Sample | None = None) -> Comment:
    """A comment on the problem, or on one of its candidates; anyone in the team."""
    require_role(author, experiment.team, Membership.Role.VIEWER)
    body = _clean_body(body)
    if sample is not None and sample.problem_id != problem.pk:
        raise ReviewError("That candidate belongs to another problem.")
    comment = Comment.objects.create(
        team=experiment.team, experiment=experiment, problem=problem, sample=sample,
        author=author, body=body,
    )
    logger.info("%s commented on problem %s of experiment %s", author, problem.pk, experiment.pk)
    return comment


def _own(author: User, comment: Comment) -> None:
    require_role(author, comment.team, Membership.Role.VIEWER)
    if not author.is_authenticated or comment.author_id != author.pk:
        raise PermissionDenied("Only its author may change a comment.")


def edit_comment(author: User, comment: Comment, body: str) -> bool:
    """Replace the text of one's own comment; False when it was deleted meanwhile."""
    _own(author, comment)
    body = _clean_body(body)
    now = timezone.now()
    won = Comment.objects.filter(pk=comment.pk, author_id=author.pk).update(body=body, edited=now)
    if won:
        comment.body, comment.edited = body, now
    return bool(won)


def delete_comment(author: User, comment: Comment) -> bool:
    """Delete one's own comment; False when it was already gone."""
    _own(author, comment)
    deleted, _ = Comment.objects.filter(pk=comment.pk, author_id=author.pk).delete()
    return bool(deleted)


# --- Human labels -----------------------------------------------------------------------


def on_labels_changed(experiment_id: int) -> None:
    """Called once per affected experiment after every committed label change or revert:
    the experiment's figures with human labels are stale from now on.

    Bumps the experiment's ``labels_version`` (the page says "updating" until the figures
    catch up with it) and, once that is committed, enqueues their recompute on the cpu
    queue. Each bump is followed by a task that reads the labels after it, so the figures
    end up computed from the latest labels whatever order the tasks run in.
    """
    Experiment.objects.filter(pk=experiment_id).update(labels_version=F("labels_version") + 1)

    def enqueue() -> None:
        try:
            queue.send(queue.COMPUTE_LABELLED_METRICS, experiment_id)
        except OperationalError as exc:
            # The label stands; its figures wait for the next change to enqueue them.
            logger.warning("could not enqueue the labelled metrics of experiment %s: %s",
                           experiment_id, exc)

    transaction.on_commit(enqueue)


def _notify(team: Team, sample: Sample, experiment: Experiment) -> None:
    ids = affected_experiments(team, sample)
    # The experiment the change was made from first, then the others reading the sample.
    ordered = [experiment.pk] + [pk for pk in ids if pk != experiment.pk]
    for pk in ordered:
        transaction.on_commit(partial(on_labels_changed, pk))


def _check_expected(current: HumanLabel | None, expected: str | None) -> None:
    seen = current.outcome if current is not None else AUTOMATIC
    if expected is not None and expected != seen:
        now = f"labelled {seen}" if seen else "back to the automatic verdict"
        raise LabelConflict(f"Someone changed this label meanwhile (it is {now}); "
                            "look again before changing it.")


def _clean_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ReviewError("Say why: a label needs a reason.")
    if len(reason) > MAX_REASON:
        raise ReviewError(f"A reason holds at most {MAX_REASON:,} characters.")
    return reason


def _check_stated_answer(experiment: Experiment, sample: Sample, answer: str | None) -> None:
    """Refuse "the answer is X" where this experiment could not judge X."""
    if answer is None:
        raise ReviewError("Write the answer the candidate gives.")
    if experiment.verifier in CODE_VERIFIERS:
        raise ReviewError("A program is labelled pass or fail, not by an answer.")
    if not sample.problem.answer:
        raise ReviewError("This problem has no reference answer to judge the answer "
                          "against; label the candidate pass or fail.")
    if judge_stated_answer(experiment, answer, sample.problem.answer) is None:
        raise ReviewError(f"The {experiment.verifier} verifier cannot judge a stated "
                          "answer; label the candidate pass or fail.")


def set_label(author: User, experiment: Experiment, sample: Sample, *, outcome: str,
              reason: str, answer: str | None = None,
              expected: str | None = None) -> LabelChange | None:
    """Label a candidate for the experiment's team, keeping the automatic verdict;
    members and above. ``outcome`` is pass or fail (an ``answer`` then only changes how
    the candidate votes), or "answer": the candidate's answer is ``answer``, right or
    wrong as each experiment's verifier judges it against the reference.

    Returns the recorded change, or None when the label already said exactly that.
    ``expected`` is the outcome the actor saw ("" for none); a different current label
    raises ``LabelConflict``.
    """
    team = experiment.team
    require_role(author, team, Membership.Role.MEMBER)
    if outcome not in HumanLabel.Outcome.values:
        raise ReviewError("Choose pass or fail, or say what the answer is.")
    reason = _clean_reason(reason)
    answer = (answer or "").strip() or None
    if answer is not None and len(answer) > MAX_ANSWER:
        raise ReviewError(f"An answer holds at most {MAX_ANSWER} characters.")
    if outcome == HumanLabel.Outcome.ANSWER:
        _check_stated_answer(experiment, sample, answer)
    with transaction.atomic():
        current = HumanLabel.objects.select_for_update().filter(team=team, sample=sample).first()
        _check_expected(current, expected)
        if current is not None and (current.outcome, current.answer) == (outcome, answer):
            return None
        if current is None:
            try:
                with transaction.atomic():
                    HumanLabel.objects.create(team=team, sample=sample, outcome=outcome,
                                              answer=answer, reason=reason, author=author)
            except IntegrityError as exc:  # another first label won the race
                raise LabelConflict("Someone labelled this candidate meanwhile; "
                                    "look again before changing it.") from exc
        else:
            won = HumanLabel.objects.filter(
                pk=current.pk, outcome=current.outcome, answer=current.answer
            ).update(outcome=outcome, answer=answer, reason=reason, author=author,
                     updated=timezone.now())
            if not won:
                raise LabelConflict("Someone changed this label meanwhile; "
                                    "look again before changing it.")
        change = LabelChange.objects.create(
            team=team, sample=sample, experiment=experiment, author=author,
            from_outcome=current.outcome if current else AUTOMATIC,
            from_answer=current.answer if current else None,
            to_outcome=outcome, to_answer=answer, reason=reason,
        )
        _notify(team, sample, experiment)
    logger.info("%s labelled sample %s %s for %s", author, sample.pk, outcome, team.slug)
    return change


def revert_label(author: User, experiment: Experiment, sample: Sample, *, reason: str,
                 expected: str | None = None) -> LabelChange | None:
    """Drop the team's label so the automatic verdict counts again, keeping the change in
    the history; members and above. None when there was no label."""
    team = experiment.team
    require_role(author, team, Membership.Role.MEMBER)
    reason = _clean_reason(reason)
    with transaction.atomic():
        current = HumanLabel.objects.select_for_update().filter(team=team, sample=sample).first()
        _check_expected(current, expected)
        if current is None:
            return None
        deleted, _ = HumanLabel.objects.filter(
            pk=current.pk, outcome=current.outcome, answer=current.answer
        ).delete()
        if not deleted:
            raise LabelConflict("Someone changed this label meanwhile; "
                                "look again before changing it.")
        change = LabelChange.objects.create(
            team=team, sample=sample, experiment=experiment, author=author,
            from_outcome=current.outcome, from_answer=current.answer,
            to_outcome=AUTOMATIC, to_answer=None, reason=reason,
        )
        _notify(team, sample, experiment)
    logger.info("%s reverted the label of sample %s for %s", author, sample.pk, team.slug)
    return change
