"""Lifecycle services: cancel, delete, amend and run again, as conditional UPDATEs; and
every worker-side write checks the cancel in its own transaction."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.types import Candidate
from tests.factories import make_experiment
from webapp.experiments import generation, lifecycle, pools, results, services, verification
from webapp.experiments.models import (
    Comparison,
    Experiment,
    Metric,
    PoolProblem,
    ProblemResult,
    Sample,
    SamplePool,
    Strategy,
    Verdict,
)
from webapp.experiments.specs import StrategySpec

pytestmark = pytest.mark.django_db


def _candidates(problem: Any, n: int, *, start: int = 0) -> dict[int, Candidate]:
    """Candidates of indices start..n-1; even ones give the reference answer."""
    return {i: Candidate(text=f"The answer is {problem.answer if i % 2 == 0 else -1}",
                         prompt_tokens=3, generated_tokens=4, logprob_sum=-1.5 - i,
                         finish_reason="eos", seconds=0.01)
            for i in range(start, n)}


def run_without_model(experiment: Experiment) -> None:
    """What the workers do, with stored text in place of the model's: samples for every
    pool's demand, verdicts, the metrics stage, the finish."""
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    problems = list(experiment.problems.order_by("index"))
    for pool_id, n in pools.pool_demands(experiment).items():
        for problem in problems:
            have = pools.existing_sample_indices(pool_id, problem.pk)
            pools.record_samples(pool_id, problem.pk, {
                i: c for i, c in _candidates(problem, n).items() if i not in have
            }, requested=n)
        verification.record_verdicts(experiment, pool_id, [p.pk for p in problems])
    assert services.claim_metrics_if_verified(experiment.pk)
    results.compute_results(experiment.pk)
    assert services.finish_experiment(experiment.pk)
    experiment.refresh_from_db()


# --- Cancel ---------------------------------------------------------------------------


def test_it_cancels_a_queued_or_running_experiment_once(team: Any) -> None:
    queued = make_experiment(team, name="queued")
    assert lifecycle.cancel_experiment(queued.pk)
    queued.refresh_from_db()
    assert queued.status == Experiment.Status.CANCELLED and queued.finished is not None
    assert queued.is_done and not services.is_active(queued.pk)
    assert not lifecycle.cancel_experiment(queued.pk)  # the second call changes nothing

    running = make_experiment(team, name="running")
    assert services.claim_experiment(running.pk)
    assert lifecycle.cancel_experiment(running.pk)
    # A cancelled experiment is not claimed, failed or finished by a late task.
    assert not services.claim_experiment(running.pk)
    assert not services.fail_experiment(running.pk, "late")
    assert not services.finish_experiment(running.pk)
    running.refresh_from_db()
    assert running.status == Experiment.Status.CANCELLED and running.error == ""


def test_a_finished_experiment_is_not_cancelled(team: Any) -> None:
    experiment = make_experiment(team, n=2)
    run_without_model(experiment)
    assert not lifecycle.cancel_experiment(experiment.pk)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED


def test_no_sample_verdict_or_figure_is_stored_once_cancelled(team: Any) -> None:
    experiment = make_experiment(team, n=2)
    services.claim_experiment(experiment.pk)
    problem_ids = list(experiment.problems.values_list("pk", flat=True))
    [work] = generation.chunk_work(experiment.pk, [[experiment.strategies.get(position=1)
                                                   .pool_id, 2]], problem_ids)
    job = work.lacking[0]
    problem = experiment.problems.get(pk=job.problem_id)

    # While running, a store writes the samples and the marker.
    assert generation.store_candidates(job, list(_candidates(problem, 2).values()))
    stored = Sample.objects.count()
    assert stored == 2 and PoolProblem.objects.count() == 1

    assert lifecycle.cancel_experiment(experiment.pk)
    other = work.lacking[1]
    assert not generation.store_candidates(
        other, list(_candidates(experiment.problems.get(pk=other.problem_id), 2).values()))
    sample_ids = list(Sample.objects.values_list("pk", flat=True))
    generation.record_scores(job, [(pk, "x") for pk in sample_ids], [0.5] * len(sample_ids))
    assert verification.record_verdicts(experiment, job.pool_id, problem_ids) == 0
    results.compute_results(experiment.pk)
    assert Sample.objects.count() == stored and PoolProblem.objects.count() == 1
    assert Verdict.objects.count() == 0
    assert ProblemResult.objects.count() == Metric.objects.count() == 0
    assert Comparison.objects.count() == 0


def test_a_failed_experiment_still_keeps_what_its_tasks_finish(team: Any) -> None:
    experiment = make_experiment(team, n=2)
    services.claim_experiment(experiment.pk)
    problem_ids = list(experiment.problems.values_list("pk", flat=True))
    [work] = generation.chunk_work(experiment.pk, [[experiment.strategies.get(position=1)
                                                   .pool_id, 2]], problem_ids)
    services.fail_experiment(experiment.pk, "another chunk failed")
    job = work.lacking[0]
    problem = experiment.problems.get(pk=job.problem_id)
    assert generation.store_candidates(job, list(_candidates(problem, 2).values()))
    assert Sample.objects.count() == 2  # pools are shared: the samples are worth keeping


# --- Delete ---------------------------------------------------------------------------


def test_it_deletes_an_experiment_with_its_results_and_the_pools_only_it_read(
    team: Any,
) -> None:
    shared_rows = [StrategySpec(temperature=0.0, selector="first"),
                   StrategySpec(temperature=0.7, selector="majority")]
    own = StrategySpec(temperature=0.9, top_k=5, selector="majority")
    doomed = make_experiment(team, n=2, name="doomed", strategies=[*shared_rows, own])
    kept = make_experiment(team, n=2, name="kept", strategies=shared_rows)
    run_without_model(doomed)
    run_without_model(kept)
    own_pool = doomed.strategies.get(position=2).pool
    shared = {s.pool_id for s in kept.strategies.all()}
    kept_samples = Sample.objects.filter(pool_id__in=shared).count()
    kept_metrics = Metric.objects.filter(strategy__experiment=kept).count()
    assert Sample.objects.filter(pool=own_pool).exists()

    lifecycle.delete_experiment(doomed.pk)

    assert not Experiment.objects.filter(pk=doomed.pk).exists()
    assert not Strategy.objects.filter(experiment_id=doomed.pk).exists()
    assert not ProblemResult.objects.filter(strategy__experiment_id=doomed.pk).exists()
    assert not SamplePool.objects.filter(pk=own_pool.pk).exists()
    assert not Sample.objects.filter(pool_id=own_pool.pk).exists()
    assert not Verdict.objects.filter(sample__pool_id=own_pool.pk).exists()
    # The pools the other experiment reads keep every sample; its figures stay.
    assert set(SamplePool.objects.values_list("pk", flat=True)) == shared
    assert Sample.objects.filter(pool_id__in=shared).count() == kept_samples
    assert Metric.objects.filter(strategy__experiment=kept).count() == kept_metrics
    lifecycle.delete_experiment(doomed.pk)  # deleting again is harmless


def test_deleting_a_running_experiment_cancels_it_first(team: Any) -> None:
    experiment = make_experiment(team, n=2)
    services.claim_experiment(experiment.pk)
    problem_ids = list(experiment.problems.values_list("pk", flat=True))
    [work] = generation.chunk_work(experiment.pk, [[experiment.strategies.get(position=1)
                                                   .pool_id, 2]], problem_ids)
    lifecycle.delete_experiment(experiment.pk)
    # A task still holding its work stores nothing (no error: the guard finds no row).
    job = work.lacking[0]
    assert not generation.store_candidates(job, [Candidate(text="late")] * 2)
    assert Sample.objects.count() == 0 and not services.is_active(experiment.pk)


# --- Amend ----------------------------------------------------------------------------


def test_it_grows_n_queues_the_experiment_again_and_drops_its_stale_figures(
    team: Any,
) -> None:
    experiment = make_experiment(team, n=2)
    run_without_model(experiment)
    greedy, sampled, first = experiment.strategies.order_by("position")
    assert Metric.objects.filter(strategy__experiment=experiment).exists()
    claimed = experiment.metrics_claimed_at
    assert claimed is not None

    amended = lifecycle.amend_experiment(experiment.pk, n_samples=4)

    assert amended.status == Experiment.Status.QUEUED and amended.n_samples == 4
    assert amended.metrics_claimed_at is None and amended.finished is None
    assert amended.k_values == [1, 2, 4]
    assert [s.n for s in amended.strategies.order_by("position")] == [1, 4, 4]
    # Same pools (N is not in a pool's key); the old figures are gone until recomputed.
    assert [s.pool_id for s in amended.strategies.order_by("position")] == [
        greedy.pool_id, sampled.pool_id, first.pool_id]
    assert not ProblemResult.objects.filter(strategy__experiment=experiment).exists()
    assert not Metric.objects.filter(strategy__experiment=experiment).exists()
    # What is missing is what the chunk generates: samples 2 and 3 of the sampled pool.
    problem_ids = list(experiment.problems.values_list("pk", flat=True))
    [work] = generation.chunk_work(experiment.pk, [[greedy.pool_id, 1],
                                                   [sampled.pool_id, 4]], problem_ids)
    assert {(w.pool_id, w.first, w.n) for w in work.lacking} == {(sampled.pool_id, 2, 4)}
    assert amended.manifest["n_samples"] == 4
    assert amended.manifest["amendments"][-1]["n_samples"] == [2, 4]

    # The rest of the run: only samples 2 and 3 are new, the first ones are kept.
    before = dict(Sample.objects.values_list("pk", "text"))
    run_without_model(amended)
    assert dict(Sample.objects.filter(pk__in=before).values_list("pk", "text")) == before
    assert Sample.objects.filter(pool=sampled.pool).count() == 3 * 4
    assert ProblemResult.objects.get(strategy=sampled, problem_id=problem_ids[0]).n == 4
    assert Metric.objects.filter(strategy=sampled, name="pass_at_k", k=4).exists()


def test_it_adds_strategies_reading_the_pools_there_are(team: Any) -> None:
    experiment = make_experiment(team, n=2)
    run_without_model(experiment)
    pools_before = SamplePool.objects.count()

    amended = lifecycle.amend_experiment(experiment.pk, strategies=[
        StrategySpec(temperature=0.7, selector="mbr"),  # the sampled pool, reused
        StrategySpec(temperature=0.7, top_k=3, selector="majority"),  # a new pool
    ])
    added = list(amended.strategies.filter(position__gte=3).order_by("position"))
    assert [s.selector for s in added] == ["mbr", "majority"]
    assert added[0].pool_id == amended.strategies.get(position=1).pool_id
    assert SamplePool.objects.count() == pools_before + 1
    assert amended.n_samples == 2
    assert [e["label"] for e in amended.manifest["strategies"]] == [
        s.label for s in amended.strategies.order_by("position")]
    run_without_model(amended)
    assert ProblemResult.objects.filter(strategy__in=added).count() == 2 * 3


@pytest.mark.parametrize(("status", "n", "message"), [
    ("running", 4, "Only a finished experiment"),
    ("finished", 1, "N can only grow"),
    ("finished", 2, "Nothing to change"),
    ("finished", 10_001, "can be at most 10,000"),
])
def test_it_refuses_amendments_the_experiment_does_not_allow(
    team: Any, status: str, n: int, message: str,
) -> None:
    experiment = make_experiment(team, n=2)
    Experiment.objects.filter(pk=experiment.pk).update(status=status)
    with pytest.raises(lifecycle.LifecycleError, match=message):
        lifecycle.amend_experiment(experiment.pk, n_samples=n)
    experiment.refresh_from_db()
    assert experiment.status == status and experiment.n_samples == 2


def test_a_beam_strategy_that_cannot_return_the_larger_n_blocks_the_amendment(
    team: Any,
) -> None:
    experiment = make_experiment(team, n=2, strategies=[StrategySpec(
        temperature=1.0, selector="first", decoder="beam_search",
        decoder_config={"num_beams": 2})])
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FINISHED)
    with pytest.raises(ValueError, match="num_beams must be at least N = 4"):
        lifecycle.amend_experiment(experiment.pk, n_samples=4)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED and experiment.n_samples == 2
