"""Task functions called in-process: redelivery is harmless, stages advance once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_experiment
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample, Verdict
from workers import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_settings(settings: Any, extra_models: dict[str, str], model_cache_dir: Any,
                    redis_url: str) -> Any:
    """In-process task calls with the tiny model; follow-up tasks go to a real, idle Redis."""
    from workers.celery import app

    settings.STRATLAB_EXTRA_MODELS = extra_models
    settings.STRATLAB_MODEL_CACHE = model_cache_dir
    settings.CELERY_BROKER_URL = redis_url
    app.conf.broker_url = redis_url
    yield settings
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def run_all(experiment: Experiment) -> None:
    """Run every task of the experiment in order, as a worker would."""
    problem_ids = list(experiment.problems.values_list("pk", flat=True))
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    for strategy in experiment.strategies.all():
        tasks.verify_chunk(experiment.pk, strategy.pool_id, problem_ids)
    tasks.compute_metrics(experiment.pk)


def _demands(experiment: Experiment) -> list[list[int]]:
    from webapp.experiments.pools import pool_demands

    return [[pool_id, n] for pool_id, n in pool_demands(experiment).items()]


def test_it_stores_each_sample_once_when_tasks_are_delivered_twice(worker_settings: Any,
                                                                    team: Any) -> None:
    experiment = make_experiment(team, n=3)
    run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    counts = (Sample.objects.count(), Verdict.objects.count(), ProblemResult.objects.count(),
              Metric.objects.count())
    texts = list(Sample.objects.order_by("pk").values_list("text", flat=True))
    assert counts[0] == 3 * (1 + 3)  # greedy pool + one shared sampled pool
    assert counts[2] == 3 * 3

    # Every task delivered again, as after a worker crash before the ack.
    Experiment.objects.filter(pk=experiment.pk).update(
        status=Experiment.Status.RUNNING, metrics_claimed_at=None
    )
    run_all(experiment)
    assert (Sample.objects.count(), Verdict.objects.count(), ProblemResult.objects.count(),
            Metric.objects.count()) == counts
    assert list(Sample.objects.order_by("pk").values_list("text", flat=True)) == texts


def test_it_generates_the_same_samples_for_the_same_seed(worker_settings: Any,
                                                          team: Any) -> None:
    first = make_experiment(team, n=2, name="one")
    run_all(first)
    texts = sorted(Sample.objects.values_list("text", flat=True))
    Sample.objects.all().delete()
    second = make_experiment(team, n=2, name="two")
    run_all(second)
    assert sorted(Sample.objects.values_list("text", flat=True)) == texts


def test_it_grows_a_pool_without_regenerating_its_first_samples(worker_settings: Any,
                                                                  team: Any) -> None:
    small = make_experiment(team, n=2, name="small")
    run_all(small)
    before = dict(Sample.objects.filter(index__lt=2).values_list("pk", "text"))
    large = make_experiment(team, n=4, name="large")
    run_all(large)
    after = dict(Sample.objects.filter(pk__in=before).values_list("pk", "text"))
    assert after == before
    sampled = large.strategies.get(position=1)
    assert Sample.objects.filter(pool_id=sampled.pool_id).count() == 3 * 4


def test_it_does_nothing_for_a_failed_experiment(worker_settings: Any, team: Any) -> None:
    experiment = make_experiment(team, n=2)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FAILED)
    run_all(experiment)
    assert Sample.objects.count() == 0


def test_it_claims_the_metrics_stage_once(worker_settings: Any, team: Any) -> None:
    from webapp.experiments.services import claim_metrics_if_verified

    experiment = make_experiment(team, n=2)
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    from webapp.experiments.verification import record_verdicts

    assert not claim_metrics_if_verified(experiment.pk)
    for strategy in experiment.strategies.all():
        record_verdicts(experiment, strategy.pool_id, problem_ids)
    assert claim_metrics_if_verified(experiment.pk)
    assert not claim_metrics_if_verified(experiment.pk)


def _mixed_samplers(team: Any, name: str) -> Experiment:
    """Greedy, top-k and min-p pools (top-k keeps the random model's batch layouts from
    turning last-bit differences into other tokens)."""
    from webapp.experiments.specs import StrategySpec

    return make_experiment(team, n=3, name=name, strategies=[
        StrategySpec(temperature=0.0, selector="first"),
        StrategySpec(temperature=1.0, top_k=10, selector="majority"),
        StrategySpec(temperature=0.8, top_k=10, sampling={"min_p": 0.05}, selector="majority"),
    ])


def _texts() -> dict[tuple[int, int, int], str]:
    return {(s.pool_id, s.problem_id, s.index): s.text for s in Sample.objects.all()}


def test_it_decodes_a_chunks_pools_and_problems_in_shared_batches(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    from webapp.experiments.models import PoolProblem
    from workers.runtime import schemes

    calls: list[list[schemes.SampleJob]] = []
    real = schemes.sample_many

    def recording(loaded: Any, jobs: Any, **kwargs: Any) -> Any:
        calls.append(list(jobs))
        return real(loaded, jobs, **kwargs)

    monkeypatch.setattr(schemes, "sample_many", recording)
    experiment = _mixed_samplers(team, "together")
    run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    # One batch: 3 problems x (greedy + top-k + min-p pools), 3 x (1 + 3 + 3) rows.
    assert [len(jobs) for jobs in calls] == [9]
    assert sum(job.rows() for job in calls[0]) == 21
    together = _texts()
    assert len(together) == 3 * (1 + 3 + 3)

    # The same chunk with 4-row batches gives the same samples.
    Sample.objects.all().delete()
    PoolProblem.objects.all().delete()
    calls.clear()
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 4
    run_all(_mixed_samplers(team, "split"))
    assert all(sum(job.rows() for job in jobs) <= 4 for jobs in calls)
    assert len(calls) > 1
    assert _texts() == together


def test_it_stops_between_batches_when_the_experiment_fails(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    from workers.runtime import schemes

    experiment = _mixed_samplers(team, "stopped")
    real = schemes.sample_many
    batches: list[list[schemes.SampleJob]] = []

    def fail_after_first(loaded: Any, jobs: Any, **kwargs: Any) -> Any:
        batches.append(list(jobs))
        out = real(loaded, jobs, **kwargs)
        Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FAILED)
        return out

    monkeypatch.setattr(schemes, "sample_many", fail_after_first)
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 4
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    # The first batch (problem 0's greedy and top-k pools: 1 + 3 rows) is stored;
    # nothing after it is decoded.
    assert len(batches) == 1
    assert [job.rows() for job in batches[0]] == [1, 3]
    assert Sample.objects.count() == 4


def test_a_generation_error_names_the_problems_of_the_batch(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    from workers.runtime import schemes

    def broken(loaded: Any, jobs: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(schemes, "sample_many", broken)
    experiment = _mixed_samplers(team, "broken")
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error == "Generation failed on problems 0, 1, 2: the engine broke"


def test_a_draft_model_leaves_the_greedy_samples_as_they_were(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    from webapp.experiments.models import PoolProblem
    from webapp.experiments.specs import StrategySpec
    from workers.runtime import speculative

    greedy = [StrategySpec(temperature=0.0, selector="first")]
    worker_settings.STRATLAB_MAX_BATCH_ROWS = 1  # each problem's greedy row decodes alone
    worker_settings.STRATLAB_SPECULATIVE_TOKENS = 0
    run_all(make_experiment(team, n=2, name="plain", strategies=greedy))
    before = _texts()
    Sample.objects.all().delete()
    PoolProblem.objects.all().delete()

    drafts: list[Any] = []
    real = speculative.greedy_speculative

    def recording(*args: Any, **kwargs: Any) -> Any:
        drafts.append(kwargs["draft"])
        return real(*args, **kwargs)

    monkeypatch.setattr(speculative, "greedy_speculative", recording)
    # The model as its own draft: every drafted token is accepted.
    worker_settings.STRATLAB_DRAFT_MODELS = {"tiny-random": "tiny-random"}
    worker_settings.STRATLAB_SPECULATIVE_TOKENS = 4
    drafting = make_experiment(team, n=2, name="drafting", strategies=greedy)
    run_all(drafting)
    drafting.refresh_from_db()
    assert drafting.status == Experiment.Status.FINISHED, drafting.error
    assert len(drafts) == 3 and all(d is not None for d in drafts)  # one per problem
    assert _texts() == before


def test_a_draft_model_that_cannot_load_fails_the_experiment(
    worker_settings: Any, team: Any
) -> None:
    worker_settings.STRATLAB_DRAFT_MODELS = {"tiny-random": "broken"}
    worker_settings.STRATLAB_SPECULATIVE_TOKENS = 4
    experiment = make_experiment(team, n=2)
    run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error.startswith(
        "Draft model for 'tiny-random' (STRATLAB_DRAFT_MODELS): "
    )
    assert "broken" in experiment.error
    assert Sample.objects.count() == 0


def test_a_self_evaluation_error_fails_the_experiment(
    worker_settings: Any, team: Any, monkeypatch: Any
) -> None:
    from workers.runtime import schemes

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no memory for the scores")

    monkeypatch.setattr(schemes, "self_eval_scores", broken)
    experiment = make_experiment(team, n=2, self_eval=True)
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error == "Self-evaluation failed on problem 0: no memory for the scores"
    assert Sample.objects.count() == 3 * (1 + 2)  # the samples are kept


def test_a_one_pool_message_is_still_understood(worker_settings: Any, team: Any) -> None:
    experiment = make_experiment(team, n=2)
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    sampled = experiment.strategies.get(position=1)
    tasks.generate_chunk(experiment.pk, sampled.pool_id, problem_ids, 2)
    assert Sample.objects.filter(pool_id=sampled.pool_id).count() == 3 * 2
    assert Sample.objects.exclude(pool_id=sampled.pool_id).count() == 0


def test_it_sends_one_task_per_slice_with_every_pool_of_the_model(
    settings: Any, team: Any, monkeypatch: Any
) -> None:
    from webapp import queue
    from webapp.experiments.services import enqueue_experiment

    sent: list[tuple[Any, ...]] = []
    # The web app enqueues by task name; record what it sends to generate_chunk.
    monkeypatch.setattr(
        queue, "send",
        lambda name, *args: sent.append(args) if name == tasks.generate_chunk.name else None,
    )
    experiment = make_experiment(team, n=3)
    greedy, sampled = sorted({s.pool_id for s in experiment.strategies.all()})
    problems = list(experiment.dataset.problems.order_by("index").values_list("pk", flat=True))

    settings.STRATLAB_CHUNK_SIZE = 2
    enqueue_experiment(experiment.pk)
    assert sent == [
        (experiment.pk, [[greedy, 1], [sampled, 3]], problems[:2]),
        (experiment.pk, [[greedy, 1], [sampled, 3]], problems[2:]),
    ]

    # One problem fills a 4-row batch (1 greedy row + 3 samples): one problem per task.
    sent.clear()
    settings.STRATLAB_CHUNK_SIZE = 4
    settings.STRATLAB_MAX_BATCH_ROWS = 4
    enqueue_experiment(experiment.pk)
    assert [args[2] for args in sent] == [[p] for p in problems]


def test_a_pool_whose_stored_recipe_is_invalid_fails_the_experiment(
    worker_settings: Any, team: Any
) -> None:
    from webapp.experiments.models import SamplePool

    experiment = make_experiment(team, n=2)
    sampled = experiment.strategies.get(position=1).pool
    SamplePool.objects.filter(pk=sampled.pk).update(
        decoding={**sampled.decoding, "temperature": -1.0}
    )
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    tasks.generate_chunk(experiment.pk, _demands(experiment), problem_ids)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error.startswith("Generation failed on problems 0, 1, 2: ")
    assert "temperature" in experiment.error
