"""Code experiments: unit-test verdicts and pass matrices feed majority, CodeT and B4."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from strategies.types import Candidate
from tests.factories import make_code_experiment
from webapp.experiments import code_verification as cv
from webapp.experiments.models import Experiment, Metric, PassMatrix, ProblemResult, Strategy
from webapp.experiments.pools import pool_demands, record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.services import claim_metrics_if_verified
from webapp.experiments.specs import StrategySpec
from webapp.experiments.verification import verifier_for

pytestmark = pytest.mark.django_db

GOOD = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)\n" \
       "               for j, b in enumerate(numbers) if i != j)\n"
WRONG = "    return False\n"
BROKEN = "    return (\n"
TESTS = ["assert has_close_elements([1.0, 1.1], 0.5) == True",
         "assert has_close_elements([1.0, 3.0], 0.5) == False",
         "assert has_close_elements([], 0.5) == True"]


def store(pool_id: int, problem_id: int, texts: list[str]) -> None:
    record_samples(pool_id, problem_id, {
        i: Candidate(text=t, prompt_tokens=10, generated_tokens=5, logprob_sum=-1.0,
                     finish_reason="eos", seconds=0.1) for i, t in enumerate(texts)
    }, requested=len(texts))


def build(team: Any) -> Experiment:
    experiment = make_code_experiment(team, [
        StrategySpec(temperature=0.7, selector="majority"),
        StrategySpec(temperature=0.7, selector="codet", selector_config={"test_samples": 2}),
        StrategySpec(temperature=0.7, selector="b4", selector_config={"test_samples": 2}),
        StrategySpec(temperature=0.7, selector="first"),
    ])
    problem = experiment.dataset.problems.get()
    codet = experiment.strategies.get(selector="codet")
    assert codet.test_pool_id is not None and codet.test_n == 2
    # One solution pool (shared by all four rows) of 4 and one test pool of 2.
    assert pool_demands(experiment) == {codet.pool_id: 4, codet.test_pool_id: 2}
    store(codet.pool_id, problem.pk, [WRONG, GOOD, GOOD, BROKEN])
    store(codet.test_pool_id, problem.pk, [
        "[1.0, 1.1], 0.5) == True\nassert has_close_elements([1.0, 3.0], 0.5) == False",
        "[1.0, 1.1], 0.5) == True\nassert has_close_elements([], 0.5) == True",
    ])
    key = verifier_for(experiment)
    runs = cv.unit_test_runs(experiment, key, codet.pool_id, [problem.pk])
    assert [r.sample_id is not None for r in runs] == [True] * 4
    assert all(r.source.rstrip().endswith("check(has_close_elements)") for r in runs)
    assert all(r.wall_seconds == 3.0 for r in runs)
    outcomes = {WRONG: ("failed", "AssertionError"), GOOD: ("passed", ""),
                BROKEN: ("error", "SyntaxError")}
    texts = dict(experiment.strategies.first().pool.samples.values_list("pk", "text"))
    cv.record_unit_test_verdicts(key, [(r, *outcomes[texts[r.sample_id]]) for r in runs])
    cv.record_test_pool_verdicts(key, codet.test_pool_id, [problem.pk], 5)
    return experiment


def test_the_matrix_job_takes_columns_per_test_sample_and_programs_per_solution(
        team: Any) -> None:
    experiment = build(team)
    problem = experiment.dataset.problems.get()
    [job] = cv.matrix_jobs(experiment, [problem.pk])
    assert job.tests == tuple(TESTS)
    assert job.columns == (0, 1, 0, 2) and job.column_samples == (0, 0, 1, 1)
    assert len(job.programs) == 4 and job.programs[1].endswith(GOOD)
    assert claim_metrics_if_verified(experiment.pk) is False  # the matrix is missing
    assert cv.missing_matrices(experiment) == 1


def test_codet_b4_and_majority_select_the_agreeing_correct_programs(team: Any) -> None:
    experiment = build(team)
    problem = experiment.dataset.problems.get()
    [job] = cv.matrix_jobs(experiment, [problem.pk])
    # WRONG passes only the wrong test (empty list -> True); GOOD the two right ones;
    # BROKEN never executed.
    cv.record_matrix(job, [[False, False, True], [True, True, False], [True, True, False], None])
    assert cv.missing_matrices(experiment) == 0
    assert cv.matrix_jobs(experiment, [problem.pk]) == []
    compute_results(experiment.pk)
    results = {r.strategy.selector: r for r in ProblemResult.objects.filter(
        strategy__experiment=experiment).select_related("strategy")}
    for name in ("codet", "b4", "majority"):
        assert results[name].selected_index == 1, name
        assert results[name].selected_credit == 1.0, name
    assert results["first"].selected_credit == 0.0
    first = experiment.strategies.get(selector="first")
    assert Metric.objects.get(strategy=first, name="pass_at_k", k=1).value == pytest.approx(0.5)
    codet = experiment.strategies.get(selector="codet")
    assert Metric.objects.get(strategy=codet, name="sel_at_k", k=4).value == pytest.approx(1.0)


def test_a_strategy_reading_fewer_test_samples_sees_a_sub_matrix(team: Any) -> None:
    experiment = build(team)
    problem = experiment.dataset.problems.get()
    [job] = cv.matrix_jobs(experiment, [problem.pk])
    cv.record_matrix(job, [[False, False, True], [True, True, False], [True, True, False], None])
    stored = PassMatrix.objects.get()
    array, executed = cv.matrix_view(stored, n=4, test_n=1)
    assert executed == [0, 1, 2]
    assert array.tolist() == [[0, 0], [1, 1], [1, 1]]
    array, executed = cv.matrix_view(stored, n=2, test_n=2)
    assert executed == [0, 1] and array.shape == (2, 4)
    assert np.array_equal(array[1], [1, 1, 1, 0])


def test_code_selectors_abstain_when_no_solution_executed(team: Any) -> None:
    experiment = build(team)
    problem = experiment.dataset.problems.get()
    [job] = cv.matrix_jobs(experiment, [problem.pk])
    cv.record_matrix(job, [None, None, None, None])
    compute_results(experiment.pk)
    codet: Strategy = experiment.strategies.get(selector="codet")
    result = ProblemResult.objects.get(strategy=codet)
    assert result.selected_index is None and result.selected_credit == 0.0


def test_test_pool_samples_get_their_assertions_as_verdicts(team: Any) -> None:
    experiment = build(team)
    codet = experiment.strategies.get(selector="codet")
    verdicts = list(codet.test_pool.samples.order_by("index").values_list(
        "verdicts__answer", "verdicts__outcome", "verdicts__detail"))
    assert verdicts[0] == ("\n".join(TESTS[:2]), "unjudged", "2 generated assertions")


def test_calibration_times_canonical_solutions_once(team: Any) -> None:
    experiment = build(team)
    problem = experiment.dataset.problems.get()
    [run] = cv.calibration_runs(experiment, [problem.pk])
    assert run.sample_id is None and "check(has_close_elements)" in run.source
    cv.record_calibration(problem.pk, "passed", 2.5, "")
    assert cv.calibration_runs(experiment, [problem.pk]) == []
    codet = experiment.strategies.get(selector="codet")
    from webapp.experiments.models import Verdict
    Verdict.objects.filter(sample__pool_id=codet.pool_id).delete()
    runs = cv.unit_test_runs(experiment, verifier_for(experiment), codet.pool_id, [problem.pk])
    assert {r.wall_seconds for r in runs} == {10.0}  # 4 x 2.5 s


def test_the_problem_page_shows_tests_verdict_details_and_matrix_escaped(
        client: Any, team: Any, owner: Any) -> None:
    from django.urls import reverse

    from tests.factories import PASSWORD
    from webapp.experiments.models import Verdict

    experiment = build(team)
    problem = experiment.dataset.problems.get()
    [job] = cv.matrix_jobs(experiment, [problem.pk])
    cv.record_matrix(job, [[False, False, True], [True, True, False], [True, True, False], None])
    Verdict.objects.filter(outcome="fail").update(detail="failed: <script>alert(1)</script>")
    compute_results(experiment.pk)
    assert client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("experiment-problem", args=[experiment.pk, problem.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "HumanEval/0" in body and "<code>has_close_elements</code>" in body
    assert "def check(candidate):" in body  # the unit tests
    assert "<script>alert(1)</script>" not in body
    assert "failed: &lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "4 generated tests (columns of the pass matrix)" in body
    assert "passes 3/4 generated tests" in body and "did not execute" in body
