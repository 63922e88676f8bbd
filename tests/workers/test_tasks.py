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
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    for strategy in experiment.strategies.all():
        tasks.generate_chunk(experiment.pk, strategy.pool_id, problem_ids, strategy.n)
    for strategy in experiment.strategies.all():
        tasks.verify_chunk(experiment.pk, strategy.pool_id, problem_ids)
    tasks.compute_metrics(experiment.pk)


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
    for strategy in experiment.strategies.all():
        tasks.generate_chunk(experiment.pk, strategy.pool_id, problem_ids, strategy.n)
    from webapp.experiments.verification import record_verdicts

    assert not claim_metrics_if_verified(experiment.pk)
    for strategy in experiment.strategies.all():
        record_verdicts(experiment, strategy.pool_id, problem_ids)
    assert claim_metrics_if_verified(experiment.pk)
    assert not claim_metrics_if_verified(experiment.pk)
