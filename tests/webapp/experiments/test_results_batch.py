"""The metrics stage's vectorised selection gives exactly the per-problem selectors' rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.factories import make_experiment
from webapp.experiments import results, selection
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample, Verdict
from webapp.experiments.specs import StrategySpec
from webapp.experiments.verification import scoring_verifier, verifier_for

pytestmark = pytest.mark.django_db

N = 9
# (selector, config, whether strategies.select.batch runs it)
ROWS: list[tuple[str, dict[str, Any], bool]] = [
    ("first", {}, True),
    ("first", {"require_answer": True}, False),
    ("random", {}, False),
    ("majority", {}, True),
    ("weighted_majority", {}, True),
    ("weighted_majority", {"weight": "score"}, False),
    ("weighted_majority", {"weight": "sum_logprob"}, False),
    ("lowest_perplexity", {}, True),
    ("lowest_perplexity", {"require_answer": True}, False),
    ("best_of_n", {}, True),
    ("best_of_majority", {}, True),
    ("best_of_majority", {"alpha": 0.15, "k": 2, "pad": True}, True),
    ("best_of_majority", {"aggregation": "mean"}, False),
    ("rpc", {}, True),
    ("rpc", {"prune": False}, True),
    ("mbr", {"similarity": "answer"}, True),
    ("mbr", {"similarity": "answer", "max_references": 4}, False),  # subsamples with the rng
    ("mbr", {}, False),  # chrF on the texts
    ("adaptive_consistency", {}, True),
    ("adaptive_consistency", {"threshold": 0.8, "max_samples": 3}, True),
]


def build(team: Any, rows: list[tuple[str, dict[str, Any], bool]],
          unjudged: bool = True) -> Experiment:
    """Five problems of 6 to 9 samples in one pool: tied votes, missing answers and
    scores, repeated texts; the last problem has no reference (unjudged) if asked."""
    prompts = [(f"{i}+{i}?", str(2 * i)) for i in range(1, 6)]
    experiment = make_experiment(team, n=N, prompts=prompts, strategies=[
        StrategySpec(temperature=0.8, selector=name, selector_config=config)
        for name, config, _ in rows
    ])
    pool_id = experiment.strategies.first().pool_id
    assert set(experiment.strategies.values_list("pool_id", flat=True)) == {pool_id}
    rng = np.random.default_rng(3)
    samples = []
    for problem in experiment.dataset.problems.order_by("index"):
        for i in range(6 + problem.index % 4):
            samples.append(Sample(
                pool_id=pool_id, problem=problem, index=i,
                text=f"steps {int(rng.integers(3))}", prompt_tokens=9,
                generated_tokens=int(rng.integers(1, 4)),
                logprob_sum=float(rng.choice([-0.5, -1.0, -1.5])), finish_reason="eos",
                seconds=float(rng.uniform(0.1, 1.0))))
    Sample.objects.bulk_create(samples)
    key, verdicts = verifier_for(experiment), []
    last = experiment.dataset.problems.order_by("index").last()
    for sample in Sample.objects.filter(pool_id=pool_id).select_related("problem"):
        gold = int(sample.problem.answer)
        answer = rng.choice([None, str(gold), f"{gold}.0", str(gold + 1), str(gold + 2)])
        if unjudged and sample.problem_id == last.pk:
            outcome = Verdict.Outcome.UNJUDGED
        else:
            outcome = Verdict.Outcome.PASS if answer and float(answer) == gold \
                else Verdict.Outcome.FAIL
        verdicts.append(Verdict(sample=sample, verifier=key, answer=answer, outcome=outcome,
                                score=float(outcome == Verdict.Outcome.PASS)))
        if rng.random() < 0.8:  # some samples have no self-evaluation score
            verdicts.append(Verdict(sample=sample, verifier=scoring_verifier(),
                                    score=float(rng.choice([0.2, 0.5, 0.9])),
                                    outcome=Verdict.Outcome.UNJUDGED))
    Verdict.objects.bulk_create(verdicts)
    return experiment


def stored(experiment: Experiment) -> tuple[list[Any], list[Any]]:
    return (
        list(ProblemResult.objects.filter(strategy__experiment=experiment).order_by(
            "strategy__position", "problem__index").values_list(
            "strategy__position", "problem__index", "n", "n_correct", "selected_index",
            "selected_answer", "selected_credit", "tied_answers")),
        list(Metric.objects.filter(strategy__experiment=experiment).order_by(
            "strategy__position", "name", "k").values_list(
            "strategy__position", "name", "k", "value", "ci_low", "ci_high")),
    )


def test_it_routes_exactly_the_configs_batch_implements(
        team: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = build(team, ROWS)
    routed: dict[int, bool] = {}
    route = results.batch_route

    def spy(name: str, config: Any, size: int) -> selection.BatchSelector | None:
        chosen = route(name, config, size)
        routed[len(routed)] = chosen is not None
        return chosen

    monkeypatch.setattr(results, "batch_route", spy)
    results.compute_results(experiment.pk)
    assert [routed[i] for i in range(len(ROWS))] == [batched for _, _, batched in ROWS]


@pytest.mark.parametrize("cells", [selection.BATCH_CELLS, 100])  # 100: a row per call
def test_it_writes_the_same_rows_as_the_per_problem_selectors(
        team: Any, monkeypatch: pytest.MonkeyPatch, cells: int) -> None:
    experiment = build(team, ROWS)
    monkeypatch.setattr(selection, "BATCH_CELLS", cells)
    results.compute_results(experiment.pk)
    vectorised = stored(experiment)
    monkeypatch.setattr(results, "batch_route", lambda *args: None)
    results.compute_results(experiment.pk)
    assert stored(experiment) == vectorised
    assert len(vectorised[0]) == 5 * len(ROWS)
    assert any(len(row[-1]) > 1 for row in vectorised[0])  # ties are stored
    assert ProblemResult.objects.filter(selected_credit=None).count() == len(ROWS)  # unjudged
    sel_at_k = Metric.objects.filter(name="sel_at_k", strategy__experiment=experiment)
    assert sorted(set(sel_at_k.values_list("k", flat=True))) == [1, 2, 4, 8]


def test_the_oracle_needs_every_verdict_either_way(
        team: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = build(team, [("oracle", {}, True)])
    with pytest.raises(ValueError, match="the oracle needs is_correct"):
        results.compute_results(experiment.pk)
    monkeypatch.setattr(results, "batch_route", lambda *args: None)
    with pytest.raises(ValueError, match="the oracle needs is_correct"):
        results.compute_results(experiment.pk)


def test_it_matches_the_per_problem_oracle_on_judged_pools(
        team: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = build(team, [("oracle", {}, True), ("majority", {}, True)], unjudged=False)
    results.compute_results(experiment.pk)
    vectorised = stored(experiment)
    monkeypatch.setattr(results, "batch_route", lambda *args: None)
    results.compute_results(experiment.pk)
    assert stored(experiment) == vectorised


def test_strategies_reading_the_same_samples_load_and_measure_them_once(
        team: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = build(team, ROWS[:4])
    loads, measures = [], []
    load, measure = results.load_samples, results.measure_diversity
    monkeypatch.setattr(results, "load_samples", lambda *a: loads.append(a) or load(*a))
    monkeypatch.setattr(results, "measure_diversity",
                        lambda *a: measures.append(a) or measure(*a))
    results.compute_results(experiment.pk)
    assert len(loads) == len(measures) == 1
    rows = Metric.objects.filter(strategy__experiment=experiment, name="self_bleu_diversity")
    assert len({row.value for row in rows}) == 1 and rows.count() == 4


def test_maj_at_k_past_its_work_bound_is_resampled_alike_on_both_paths(
        team: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = build(team, [("majority", {}, True)], unjudged=False)
    results.compute_results(experiment.pk)
    exact = stored(experiment)
    monkeypatch.setattr(selection, "MAJORITY_DP_CELLS", 0)
    results.compute_results(experiment.pk)
    resampled = stored(experiment)
    monkeypatch.setattr(results, "batch_route", lambda *args: None)
    results.compute_results(experiment.pk)
    assert stored(experiment) == resampled
    assert resampled[0] == exact[0]
    changed = {row[1] for row, other in zip(exact[1], resampled[1], strict=True)
               if row != other}
    assert changed == {"sel_at_k"}


@pytest.mark.parametrize("name", ["first", "best_of_n"])
def test_sel_at_k_skips_unanswered_candidates_when_the_selector_does(
        team: Any, name: str) -> None:
    """Answers [none, 4, none, 4], the answered ones right: ``require_answer`` always
    picks an answered candidate from the whole pool, so sel@4 is 1 (the mean verdict,
    0.5, is the figure without it)."""
    experiment = make_experiment(team, n=4, prompts=[("2+2?", "4")], strategies=[
        StrategySpec(temperature=0.8, selector=name, selector_config=config)
        for config in ({"require_answer": True}, {})])
    pool_id = experiment.strategies.first().pool_id
    problem = experiment.dataset.problems.get()
    Sample.objects.bulk_create([
        Sample(pool_id=pool_id, problem=problem, index=i, text=f"t{i}", prompt_tokens=1,
               generated_tokens=1, logprob_sum=-1.0, finish_reason="eos", seconds=0.1)
        for i in range(4)])
    key = verifier_for(experiment)
    Verdict.objects.bulk_create([
        Verdict(sample=sample, verifier=key, answer=None if sample.index % 2 == 0 else "4",
                outcome=Verdict.Outcome.FAIL if sample.index % 2 == 0
                else Verdict.Outcome.PASS, score=None)
        for sample in Sample.objects.filter(pool_id=pool_id)])
    results.compute_results(experiment.pk)
    sel_at_4 = dict(Metric.objects.filter(
        strategy__experiment=experiment, name="sel_at_k", k=4).values_list(
        "strategy__position", "value"))
    assert sel_at_4 == {0: 1.0, 1: 0.5}
