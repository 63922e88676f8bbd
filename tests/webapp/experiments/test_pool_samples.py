"""A pool's samples as columns: one query without the text, verdicts and scores as the
candidates would hold them, labels on top, answers grouped once per problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from strategies.select.base import answer_groups
from tests.factories import make_experiment
from webapp.experiments.models import Experiment, Sample, Verdict
from webapp.experiments.pool_samples import FAIL, PASS, UNJUDGED, load_samples
from webapp.experiments.specs import StrategySpec
from webapp.experiments.verification import scoring_verifier, verifier_for

pytestmark = pytest.mark.django_db


def build(team: Any) -> tuple[Experiment, int]:
    """Problem 0: samples 0, 1 and 3 (2 is missing), every kind of verdict and score;
    problem 1: no samples; problem 2: two samples with equal texts."""
    experiment = make_experiment(team, n=4, prompts=[("1+1?", "2"), ("2+2?", "4"),
                                                     ("3+3?", "6")],
                                 strategies=[StrategySpec(temperature=0.8, selector="first")])
    pool_id = experiment.strategies.get().pool_id
    problems = list(experiment.dataset.problems.order_by("index"))
    rows = [(problems[0], 3, "three"), (problems[0], 0, "zero"), (problems[0], 1, "one"),
            (problems[2], 0, "same"), (problems[2], 1, "same")]
    Sample.objects.bulk_create([
        Sample(pool_id=pool_id, problem=problem, index=index, text=text, prompt_tokens=7,
               generated_tokens=index + 1, logprob_sum=-1.5 * (index + 1),
               finish_reason="eos", seconds=0.5)
        for problem, index, text in rows])
    sample = {(s.problem_id, s.index): s for s in Sample.objects.filter(pool_id=pool_id)}
    key, scorer = verifier_for(experiment), scoring_verifier()
    first, last = problems[0].pk, problems[2].pk
    Verdict.objects.bulk_create([
        Verdict(sample=sample[first, 0], verifier=key, answer="2", outcome="pass", score=1.0),
        Verdict(sample=sample[first, 1], verifier=key, answer="2.0", outcome="fail", score=0.0),
        Verdict(sample=sample[first, 3], verifier=key, answer=None, outcome="unjudged",
                score=0.3),
        Verdict(sample=sample[first, 0], verifier=scorer, outcome="unjudged", score=0.9),
        Verdict(sample=sample[first, 1], verifier=scorer, outcome="unjudged", score=None),
        Verdict(sample=sample[last, 0], verifier=key, answer="6", outcome="pass", score=1.0),
        Verdict(sample=sample[last, 1], verifier=key, answer="7", outcome="error", score=0.0),
    ])
    return experiment, pool_id


def test_it_reads_each_problems_samples_in_index_order(team: Any) -> None:
    experiment, pool_id = build(team)
    data = load_samples(experiment, pool_id, 4)
    problems = list(experiment.dataset.problems.order_by("index"))
    assert data.problem_ids.tolist() == [problems[0].pk, problems[2].pk]  # none: left out
    assert data.indices.tolist() == [0, 2] and data.golds == ["2", "6"]
    assert data.sizes.tolist() == [3, 2]
    assert data.answers[0, :3].tolist() == ["2", "2.0", None]
    assert data.verdicts[0, :3].tolist() == [PASS, FAIL, UNJUDGED]
    assert data.verdicts[1, :2].tolist() == [PASS, FAIL]  # an error fails
    # The self-evaluation score where one is stored (even empty), else the verifier's.
    assert np.array_equal(data.scores[0, :3], [0.9, np.nan, 0.3], equal_nan=True)
    assert data.generated_tokens[0, :3].tolist() == [1, 2, 4]
    assert data.judged.tolist() == [False, True]
    assert data.seconds == 2.5
    assert load_samples(experiment, pool_id, 2).sizes.tolist() == [2, 2]


def test_candidates_and_arrays_agree_with_the_columns(team: Any) -> None:
    experiment, pool_id = build(team)
    data = load_samples(experiment, pool_id, 4)
    pools = data.pools()
    first = pools[0].candidates
    assert [c.text for c in first] == ["zero", "one", "three"]
    assert [c.is_correct for c in first] == [True, False, None]
    assert [c.score for c in first] == [0.9, None, 0.3]
    assert [c.mean_logprob for c in first] == pytest.approx([-1.5, -1.5, -1.5])
    for row, pool in enumerate(pools):
        n = len(pool.candidates)
        assert data.groups()[row, :n].tolist() == answer_groups(pool.candidates)[0].tolist()
    assert data.firsts_ == [["2"], ["6", "7"]]
    arrays = data.arrays(texts=True)
    assert arrays.texts is not None and arrays.texts[1, 0] == arrays.texts[1, 1]
    assert arrays.texts[0, 0] != arrays.texts[0, 1]
    assert data.arrays().texts is None  # the text is read only when asked for


def test_labels_replace_verdicts_and_answers(team: Any) -> None:
    experiment, pool_id = build(team)
    sample = dict(Sample.objects.filter(pool_id=pool_id).values_list("text", "pk"))
    data = load_samples(experiment, pool_id, 4, labels={
        sample["one"]: (True, None), sample["three"]: (None, "2"), sample["same"]: (False, None),
    })
    assert data.verdicts[0, :3].tolist() == [PASS, PASS, UNJUDGED]
    assert data.answers[0, :3].tolist() == ["2", "2.0", "2"]
    assert data.labelled.tolist() == [True, True]
    assert data.groups()[0, :3].tolist() == [0, 0, 0]
