"""Selection and metrics over stored samples, for every registered non-code selector."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from strategies import registry
from strategies.types import Candidate
from tests.factories import make_experiment
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample
from webapp.experiments.pools import record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.specs import StrategySpec
from webapp.experiments.verification import record_scores, record_verdicts

pytestmark = pytest.mark.django_db

SELECTORS = [name for name in registry.names("selector") if name not in ("codet", "b4")]
N = 6


def run(team: Any) -> Experiment:
    experiment = make_experiment(
        team, n=N, prompts=[("2+2?", "4"), ("3+3?", "6"), ("5+5?", "10")],
        strategies=[StrategySpec(temperature=0.8, selector=name) for name in SELECTORS],
    )
    pool_id = experiment.strategies.first().pool_id
    rng = np.random.default_rng(0)
    for problem in experiment.dataset.problems.order_by("index"):
        gold = int(problem.answer)
        answers = [gold, gold + 1, gold, gold + 2, gold + 1, gold]
        record_samples(pool_id, problem.pk, {
            i: Candidate(text=f"Working... the answer is {a}", prompt_tokens=9,
                         generated_tokens=5 + i, logprob_sum=float(-rng.uniform(1, 5)),
                         finish_reason="eos", seconds=0.01)
            for i, a in enumerate(answers[: problem.index + 4])  # 4, 5, 6 samples
        })
    ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    record_verdicts(experiment, pool_id, ids)
    sample_ids = Sample.objects.values_list("pk", flat=True)
    record_scores([(pk, float(rng.uniform())) for pk in sample_ids])
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    compute_results(experiment.pk)
    return experiment


def metric(strategy: Any, name: str, k: int = 0) -> Metric:
    return Metric.objects.get(strategy=strategy, name=name, k=k)


def test_it_selects_and_measures_with_every_selector(team: Any) -> None:
    experiment = run(team)
    for strategy in experiment.strategies.all():
        assert ProblemResult.objects.filter(strategy=strategy).count() == 3, strategy.selector
        accuracy = metric(strategy, "selected_accuracy")
        assert 0 <= accuracy.value <= 1, strategy.selector
        assert accuracy.ci_low <= accuracy.value <= accuracy.ci_high
        # k = 1, 2, 4 are at most every problem's n (4, 5, 6); 8 exceeds N.
        assert sorted(Metric.objects.filter(strategy=strategy, name="sel_at_k")
                      .values_list("k", flat=True)) == [1, 2, 4]
        # Each pool holds three distinct answers: gold, gold + 1 and gold + 2.
        assert metric(strategy, "unique_answers").value == pytest.approx(3.0)


def test_it_gives_the_oracle_coverage_and_first_sample_pass_at_1(team: Any) -> None:
    experiment = run(team)
    oracle = experiment.strategies.get(selector="oracle")
    first = experiment.strategies.get(selector="first")
    majority = experiment.strategies.get(selector="majority")
    # Every problem has a correct sample: the oracle is always right.
    assert metric(oracle, "selected_accuracy").value == 1.0
    assert metric(oracle, "oracle_gap").value == 0.0
    # first@k is the mean of pass@1 whatever k.
    pass1 = metric(first, "pass_at_k", 1).value
    for k in (1, 2, 4):
        assert metric(first, "sel_at_k", k).value == pytest.approx(pass1)
    # Gold wins the vote in the pools of 4 and 6; in the pool of 5 it ties with
    # gold + 1 (two votes each), which earns half credit.
    assert metric(majority, "selected_accuracy").value == pytest.approx((1 + 0.5 + 1) / 3)
    assert metric(majority, "sel_at_k", 1).value == pytest.approx(pass1)


def test_it_replaces_results_when_run_twice(team: Any) -> None:
    experiment = run(team)
    before = Metric.objects.count(), ProblemResult.objects.count()
    compute_results(experiment.pk)
    assert (Metric.objects.count(), ProblemResult.objects.count()) == before
