"""Cancel and amend against the task functions, called in-process as a worker would,
with the lifecycle change landing while a task is mid-way: between batches, inside a
store, during the metrics stage, while the sandbox runs a program."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from django.utils import timezone

from tests.factories import make_code_experiment, make_experiment
from tests.workers import test_tasks
from webapp.experiments import lifecycle, pools, results, services
from webapp.experiments.models import (
    Experiment,
    Metric,
    PoolProblem,
    ProblemResult,
    Sample,
    Verdict,
)
from webapp.experiments.specs import StrategySpec
from workers import code_runs, tasks
from workers.runtime import schemes

pytestmark = pytest.mark.django_db

# In-process task calls with the tiny model (the fixture of ``test_tasks``).
worker_settings = test_tasks.worker_settings
run_all = test_tasks.run_all
_demands = test_tasks._demands


def _problem_ids(experiment: Experiment) -> list[int]:
    return list(experiment.problems.order_by("index").values_list("pk", flat=True))


def _mixed(team: Any, name: str = "mixed") -> Experiment:
    """Greedy and two top-k pools on three problems: 1 + 3 + 3 rows per problem."""
    return make_experiment(team, n=3, name=name, strategies=[
        StrategySpec(temperature=0.0, selector="first"),
        StrategySpec(temperature=1.0, top_k=10, selector="majority"),
        StrategySpec(temperature=0.8, top_k=10, sampling={"min_p": 0.05}, selector="majority"),
    ])


def test_tasks_of_a_cancelled_experiment_do_nothing(worker_settings: Any, team: Any) -> None:
    experiment = make_experiment(team, n=2)
    assert lifecycle.cancel_experiment(experiment.pk)  # still queued: nothing ran yet
    run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED
    assert Sample.objects.count() == Verdict.objects.count() == Metric.objects.count() == 0


def test_a_cancel_stops_generation_at_the_next_batch_and_the_batch_in_flight_is_dropped(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    experiment = _mixed(team)
    real = schemes.sample_many
    batches: list[list[schemes.SampleJob]] = []

    def cancel_during_the_first(loaded: Any, jobs: Any, **kwargs: Any) -> Any:
        batches.append(list(jobs))
        out = real(loaded, jobs, **kwargs)
        lifecycle.cancel_experiment(experiment.pk)  # acknowledged before the batch is stored
        return out

    monkeypatch.setattr(schemes, "sample_many", cancel_during_the_first)
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 4
    tasks.generate_chunk(experiment.pk, _demands(experiment), _problem_ids(experiment))
    # One batch decoded, none after it, and nothing of it stored after the cancel.
    assert len(batches) == 1
    assert Sample.objects.count() == 0 and PoolProblem.objects.count() == 0
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_a_store_lands_after_it_and_nothing_is_stored_after(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    """The cancel runs in another thread (its own connection) while the worker is inside
    a store's transaction: it waits for that store to commit, and every later store of
    the task writes nothing."""
    experiment = _mixed(team, "raced")
    real = pools.record_samples
    events: list[str] = []
    outcome: dict[str, Any] = {}

    def cancel() -> None:
        from django.db import connection

        try:
            outcome["won"] = lifecycle.cancel_experiment(experiment.pk)
            outcome["at"] = timezone.now()
            events.append("cancel acknowledged")
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel)

    def store_while_cancelling(*args: Any, **kwargs: Any) -> Any:
        if not canceller.is_alive() and "won" not in outcome:
            canceller.start()
            time.sleep(0.5)  # the cancel is now waiting for this transaction's lock
        events.append("store")
        return real(*args, **kwargs)

    monkeypatch.setattr(pools, "record_samples", store_while_cancelling)
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 4
    tasks.generate_chunk(experiment.pk, _demands(experiment), _problem_ids(experiment))
    canceller.join(timeout=30)

    assert outcome["won"]
    # The store in flight committed first (the rest of its batch may follow while the
    # cancel waits for the lock); once the cancel was acknowledged, no store wrote.
    stores = events.count("store")
    assert events == ["store"] * stores + ["cancel acknowledged"]
    assert 1 <= stores < 9  # 3 problems x 3 pools: the task stopped early
    assert PoolProblem.objects.count() == stores
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED
    assert Sample.objects.exists()
    assert not Sample.objects.filter(created__gt=outcome["at"]).exists()


def test_a_cancel_during_the_metrics_stage_stores_no_more_figures(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    experiment = make_experiment(team, n=2)
    problem_ids = _problem_ids(experiment)
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    for strategy in experiment.strategies.all():
        tasks.verify_chunk(experiment.pk, strategy.pool_id, problem_ids)
    assert Experiment.objects.get(pk=experiment.pk).metrics_claimed_at is not None
    greedy, majority, _first = experiment.strategies.order_by("position")
    real = results.measure_strategy

    def cancel_while_measuring(strategy: Any, *args: Any, **kwargs: Any) -> Any:
        out = real(strategy, *args, **kwargs)
        if strategy.pk == majority.pk:
            lifecycle.cancel_experiment(experiment.pk)
        return out

    monkeypatch.setattr(results, "measure_strategy", cancel_while_measuring)
    tasks.compute_metrics(experiment.pk)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED
    # The first strategy's figures were stored before the cancel; none after it.
    assert set(Metric.objects.values_list("strategy_id", flat=True)) == {greedy.pk}
    assert set(ProblemResult.objects.values_list("strategy_id", flat=True)) == {greedy.pk}
    assert not Metric.objects.filter(labelled=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_during_code_verification_kills_the_program_in_flight(
    worker_settings: Any, team: Any
) -> None:
    experiment = make_code_experiment(
        team, [StrategySpec(temperature=0.8, selector="majority")], n=2,
        # A 30 s limit per program: only a kill ends the loops below sooner.
        verifier_config={"min_seconds": 30.0, "max_seconds": 60.0},
    )
    services.claim_experiment(experiment.pk)
    [problem] = experiment.problems.all()
    pool_id = experiment.strategies.get().pool_id
    from strategies.types import Candidate

    pools.record_samples(pool_id, problem.pk, {
        i: Candidate(text="    while True:\n        pass\n", generated_tokens=4)
        for i in range(2)}, requested=2)

    def cancel_soon() -> None:
        from django.db import connection

        time.sleep(2.0)
        lifecycle.cancel_experiment(experiment.pk)
        connection.close()

    canceller = threading.Thread(target=cancel_soon)
    started = time.monotonic()
    canceller.start()
    tasks.verify_chunk(experiment.pk, [pool_id], [problem.pk])
    elapsed = time.monotonic() - started
    canceller.join()

    assert elapsed < 10, elapsed  # not the programs' 30 s: they were killed
    assert not Verdict.objects.exists()
    problem.refresh_from_db()
    assert "canonical_status" not in problem.metadata  # nothing of the slice was stored
    # The sandbox serves the next experiment's programs.
    from workers.sandbox import Program

    assert code_runs.get_sandbox().run_one(Program(source="assert 1 + 1 == 2")).passed


def test_growing_n_generates_only_the_missing_samples(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    experiment = make_experiment(team, n=2)
    run_all(experiment)
    first_texts = {(s.pool_id, s.problem_id, s.index): s.text for s in Sample.objects.all()}
    assert len(first_texts) == 3 * (1 + 2)

    amended = lifecycle.amend_experiment(experiment.pk, n_samples=4)
    real = schemes.sample_many
    decoded: list[tuple[int, int]] = []

    def recording(loaded: Any, jobs: Any, **kwargs: Any) -> Any:
        decoded.extend((job.first, job.rows()) for job in jobs)
        return real(loaded, jobs, **kwargs)

    monkeypatch.setattr(schemes, "sample_many", recording)
    run_all(amended)
    amended.refresh_from_db()
    assert amended.status == Experiment.Status.FINISHED, amended.error
    # Only samples 2 and 3 of the sampled pool were decoded, 2 rows per problem; the
    # greedy pool (one sample stands for any N) decoded nothing.
    assert decoded == [(2, 2)] * 3
    grown = {(s.pool_id, s.problem_id, s.index): s.text for s in Sample.objects.all()}
    assert len(grown) == 3 * (1 + 4)
    assert {key: grown[key] for key in first_texts} == first_texts
    sampled = amended.strategies.get(position=1)
    assert set(ProblemResult.objects.filter(strategy=sampled).values_list("n", flat=True)) == {4}
    assert Metric.objects.filter(strategy=sampled, name="pass_at_k", k=4).exists()

    # The same pool generated at N = 4 from scratch holds the same samples.
    Sample.objects.all().delete()
    PoolProblem.objects.all().delete()
    monkeypatch.setattr(schemes, "sample_many", real)
    again = make_experiment(team, n=4, name="from scratch")
    problem_ids = _problem_ids(again)
    tasks.generate_chunk(again.pk, _demands(again), problem_ids)
    assert {(s.pool_id, s.problem_id, s.index): s.text for s in Sample.objects.all()} == grown


def test_adding_a_strategy_on_a_stored_pool_generates_nothing(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    experiment = make_experiment(team, n=2)
    run_all(experiment)
    count = Sample.objects.count()
    amended = lifecycle.amend_experiment(
        experiment.pk, strategies=[StrategySpec(temperature=0.7, selector="mbr")])
    calls: list[Any] = []
    monkeypatch.setattr(schemes, "sample_many", lambda *a, **k: calls.append(a) or [])
    run_all(amended)
    amended.refresh_from_db()
    assert amended.status == Experiment.Status.FINISHED, amended.error
    assert calls == [] and Sample.objects.count() == count
    added = amended.strategies.get(position=3)
    assert ProblemResult.objects.filter(strategy=added).count() == 3


def test_generation_records_the_workers_runtime_facts_in_the_manifest(
    worker_settings: Any, team: Any, tiny_model_dir: Path
) -> None:
    from workers.runtime.models import get_model

    experiment = make_experiment(team, n=2)
    submitted = dict(experiment.manifest)
    run_all(experiment)
    experiment.refresh_from_db()
    runtime = experiment.manifest["runtime"]
    weights = sorted(tiny_model_dir.glob("*.safetensors"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in weights)).hexdigest()
    loaded = get_model("tiny-random", cache_dir=worker_settings.STRATLAB_MODEL_CACHE,
                       extra=worker_settings.STRATLAB_EXTRA_MODELS)
    assert runtime["torch"] == torch.__version__
    assert runtime["transformers"] == transformers.__version__
    assert runtime["device"] == str(loaded.device)
    assert runtime["dtype"] == str(loaded.dtype).removeprefix("torch.")
    assert runtime["model_sha256"] == digest
    assert runtime["chat_template_sha256"] == hashlib.sha256(
        loaded.tokenizer.chat_template.encode()).hexdigest()
    # What submit recorded is still there; a second run on the same worker adds nothing.
    assert {k: experiment.manifest[k] for k in submitted} == submitted
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    Sample.objects.all().delete()
    PoolProblem.objects.all().delete()
    tasks.generate_chunk(experiment.pk, _demands(experiment), _problem_ids(experiment))
    experiment.refresh_from_db()
    assert "runtime_variants" not in experiment.manifest
