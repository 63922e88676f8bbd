"""sel@k with human labels: recomputed by the metrics stage's own selector paths (closed
forms where they hold, the same seeded subsets otherwise), so a problem no label touches
keeps its value exactly; "the answer is X" labels count in the vote and are judged by the
experiment's verifier; the results page shows sel@k automatic and with labels."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from django.urls import reverse

from strategies.select.base import answer_groups, selection_credit
from strategies.select.majority import select_majority
from strategies.types import Candidate
from tests.webapp.experiments.review_data import build, login, sample, strategies
from webapp.experiments import results
from webapp.experiments.labelled import label_agreement
from webapp.experiments.models import Metric
from webapp.experiments.selection import majority_at_k_by_verdicts
from webapp.review import services
from webapp.review.models import HumanLabel


def pool_of(answers: list[str | None], correct: list[bool]) -> list[Candidate]:
    return [Candidate(text="", answer=a, is_correct=c)
            for a, c in zip(answers, correct, strict=True)]


def by_verdicts(pool: list[Candidate], ks: list[int]) -> dict[int, float] | None:
    return majority_at_k_by_verdicts(answer_groups(pool)[0],
                                     np.array([bool(c.is_correct) for c in pool]), ks)


def brute_force(pool: list[Candidate], k: int) -> float:
    """The mean credit of the per-problem majority selector over every k-subset."""
    values = []
    for subset in itertools.combinations(range(len(pool)), k):
        chosen = [pool[i] for i in subset]
        values.append(selection_credit(select_majority(chosen), chosen) or 0.0)
    return float(np.mean(values))


@pytest.mark.parametrize(("answers", "correct"), [
    # Two right answers (a label passed the 5s): each wins some subsets, ties split.
    (["4", "5", "4", "5", "7", None, "7", "7"],
     [True, True, True, True, False, False, False, False]),
    # A label failed the reference's group: nothing right is left but the 9.
    (["4", "4", "9", None, "4"], [False, False, True, False, False]),
    (["1", "2", "3"], [False, False, False]),
])
def test_the_vote_by_verdicts_matches_every_subset_counted_by_hand(
        answers: list[str | None], correct: list[bool]) -> None:
    pool = pool_of(answers, correct)
    ks = list(range(1, len(answers) + 1))
    exact = by_verdicts(pool, ks)
    assert exact is not None
    for k in ks:
        assert exact[k] == pytest.approx(brute_force(pool, k), abs=1e-12), k


def test_a_group_split_by_a_label_is_left_to_resampling() -> None:
    # The two 4s disagree (a label failed one): the credit depends on which comes first.
    assert by_verdicts(pool_of(["4", "4", "5"], [True, False, False]), [1, 2]) is None


# --- Through the metrics stage on the hand-built experiment --------------------------

def figure(strategy: Any, name: str, k: int, labelled: bool) -> float:
    return Metric.objects.get(strategy=strategy, name=name, k=k, labelled=labelled).value


def label(experiment: Any, strategy: Any, problem: int, index: int, outcome: str,
          answer: str | None = None) -> None:
    owner = experiment.team.memberships.get(role="owner").user
    HumanLabel.objects.create(team=experiment.team, sample=sample(experiment, strategy,
                                                                  problem, index),
                              outcome=outcome, answer=answer, reason="read it", author=owner)


@pytest.fixture
def experiment(team: Any) -> Any:
    return build(team)


@pytest.mark.django_db
def test_it_recomputes_majority_sel_at_k_where_a_stated_answer_moves_the_vote(
        experiment: Any) -> None:
    _, majority, first = strategies(experiment)
    assert experiment.k_values == [1, 2, 4]
    # Problem 2's pool reads 0 0 4 9 (reference 4). The 9 is really a 4: the vote is 0 0 4 4.
    # Without the label, maj@k = 1/4, 1/4, 0 (k = 1, 2, 4); with it 2/4, 3/6, 1/2.
    label(experiment, majority, 2, 3, "answer", answer="4")
    assert results.compute_labelled_results(experiment.pk)
    for k, change in ((1, 0.25), (2, 0.25), (4, 0.5)):
        # The other four problems keep their values exactly: one fifth of the change.
        assert figure(majority, "sel_at_k", k, True) - figure(majority, "sel_at_k", k, False) \
            == pytest.approx(change / 5, abs=1e-12), k
    # "first" reads sample 0 first, sel@k = the pool's accuracy: 1/4 more on problem 2.
    for k in (1, 2, 4):
        assert figure(first, "sel_at_k", k, True) - figure(first, "sel_at_k", k, False) \
            == pytest.approx(0.25 / 5, abs=1e-12)
    assert figure(majority, "selected_accuracy", 0, True) == pytest.approx(0.7)


@pytest.mark.django_db
def test_a_pass_or_fail_inside_a_group_changes_sel_at_k_through_the_subsets(
        experiment: Any) -> None:
    _, majority, first = strategies(experiment)
    # Problem 0: 2 2 2 2, all right; a label fails sample 2. The vote over all four still
    # picks sample 0 (right): maj@4 stays; smaller subsets led by sample 2 now miss.
    label(experiment, majority, 0, 2, "fail")
    assert results.compute_labelled_results(experiment.pk)
    assert figure(majority, "sel_at_k", 4, True) == pytest.approx(
        figure(majority, "sel_at_k", 4, False))
    assert figure(majority, "sel_at_k", 1, True) < figure(majority, "sel_at_k", 1, False)
    for k in (1, 2, 4):
        assert figure(first, "sel_at_k", k, True) - figure(first, "sel_at_k", k, False) \
            == pytest.approx(-0.25 / 5, abs=1e-12)
    assert figure(majority, "selected_accuracy", 0, True) == pytest.approx(0.6)


@pytest.mark.django_db
def test_a_stated_answer_is_right_or_wrong_by_the_experiments_verifier(
        experiment: Any, owner: Any) -> None:
    greedy, majority, _ = strategies(experiment)
    # The greedy answer of problem 0 is a right 2; a reviewer says it really answers 3.
    services.set_label(owner, experiment, sample(experiment, greedy, 0, 0), outcome="answer",
                       answer="3", reason="it wrote 3 at the end")
    # Problem 1's sampled 0 is really 3.0, which the math verifier takes for the 3.
    services.set_label(owner, experiment, sample(experiment, majority, 1, 0),
                       outcome="answer", answer="3.0", reason="misread")
    assert results.compute_labelled_results(experiment.pk)
    assert figure(greedy, "selected_accuracy", 0, False) == pytest.approx(0.4)
    assert figure(greedy, "selected_accuracy", 0, True) == pytest.approx(0.2)
    assert figure(majority, "pass_at_k", 1, True) - figure(majority, "pass_at_k", 1, False) \
        == pytest.approx(0.25 / 5)
    agreement = label_agreement(experiment)
    # Human pass (3.0 is right) against verifier fail; human fail (3 is wrong) against pass.
    assert agreement["table"] == [[0, 1], [1, 0]]
    assert (agreement["answers"], agreement["undecided"]) == (2, 0)


@pytest.mark.django_db
def test_a_stated_answer_needs_a_reference_and_a_verifier_that_reads_answers(
        team: Any, owner: Any, experiment: Any) -> None:
    from tests.factories import make_experiment

    greedy = strategies(experiment)[0]
    candidate = sample(experiment, greedy, 0, 0)
    with pytest.raises(services.ReviewError, match="Write the answer"):
        services.set_label(owner, experiment, candidate, outcome="answer", reason="r")
    open_ended = make_experiment(team, prompts=[("Write a poem", "")], name="Open")
    from tests.webapp.review.conftest import store

    pool_id = open_ended.strategies.get(position=0).pool_id
    store(pool_id, open_ended.problems.get().pk, ["roses"])
    poem = open_ended.problems.get().samples.get(pool_id=pool_id)
    with pytest.raises(services.ReviewError, match="no reference answer"):
        services.set_label(owner, open_ended, poem, outcome="answer", answer="x", reason="r")
    assert not HumanLabel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["owner", "viewer"])
def test_the_page_shows_sel_at_k_automatic_and_with_labels(
        client: Any, experiment: Any, persona: str, request: Any) -> None:
    _, majority, _ = strategies(experiment)
    label(experiment, majority, 2, 3, "answer", answer="4")
    results.compute_labelled_results(experiment.pk)
    login(client, request.getfixturevalue(persona))
    body = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    table = body.split('id="labelled-table"', 1)[1].split("</table>", 1)[0]
    for k in (1, 2, 4):
        row = table.split(f'data-strategy="{majority.pk}" data-figure="sel_at_k-{k}"', 1)[1]
        row = row.split("</tr>", 1)[0]
        assert f"<td>sel@{k}</td>" in row
        automatic = figure(majority, "sel_at_k", k, False)
        labelled = figure(majority, "sel_at_k", k, True)
        assert f"{automatic:.3f}" in row and f"{labelled:.3f}" in row
        assert f"+{labelled - automatic:.3f}" in row and 'class="changed"' in row
    assert "1 of them states the answer" in body
