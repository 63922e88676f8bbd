"""The reconciler and the delivery records, on the database and a real (idle) Redis:
what counts as held, what is sent again and when, and the attempts limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from strategies.types import Candidate
from tests.factories import make_experiment
from webapp.experiments import deliveries, pools, recovery, services, verification
from webapp.experiments.chunks import Chunk
from webapp.experiments.models import ChunkAttempt, Experiment

pytestmark = pytest.mark.django_db

STALE = timedelta(seconds=45)


@pytest.fixture
def broker(settings: Any, redis_url: str) -> Iterator[redis.Redis]:
    """Sends go to a real Redis that no worker reads; what was sent stays in its queues."""
    from workers.celery import app

    settings.CELERY_BROKER_URL = redis_url
    settings.STRATLAB_STALE_SECONDS = int(STALE.total_seconds())
    settings.STRATLAB_MAX_ATTEMPTS = 3
    settings.STRATLAB_CHUNK_SIZE = 2
    app.conf.broker_url = redis_url
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


def _chunks(experiment: Experiment) -> list[Chunk]:
    return services.generation_chunks(experiment)


def _running(team: Any, **kwargs: Any) -> Experiment:
    experiment = make_experiment(team, **kwargs)
    services.claim_experiment(experiment.pk)
    experiment.refresh_from_db()
    return experiment


def _age(experiment: Experiment, key: str, seconds: float) -> None:
    """Move the row's last beat into the past, as if its worker stopped then."""
    row = ChunkAttempt.objects.get(experiment=experiment, key=key)
    ChunkAttempt.objects.filter(pk=row.pk).update(
        updated=row.updated - timedelta(seconds=seconds))


def test_a_chunk_key_names_its_stage_pools_and_problem_ranges() -> None:
    chunk = Chunk.generate([[13, 4], [12, 1]], [403, 401, 402, 410])
    assert chunk.key == "generate:12-13:401-403,410"
    assert Chunk.verify([[12, 0], [13, 0]], [401, 402, 403, 410]).key == \
        "verify:12-13:401-403,410"
    assert Chunk.metrics().key == "metrics"
    many = Chunk.generate([[1, 4]], list(range(0, 400, 2)))
    assert len(many.key) <= 200 and many.key.startswith("generate:sha256:")
    assert many.args(7) == [7, [[1, 4]], list(range(0, 400, 2))]


def test_it_sends_what_no_task_holds_and_leaves_what_a_live_delivery_holds(
    broker: redis.Redis, team: Any
) -> None:
    experiment = _running(team, n=2)  # 3 problems: two chunks of two and one
    first, second = _chunks(experiment)
    # Just submitted: its messages are being sent, nothing is missing a task yet.
    assert recovery.reconcile(experiment.created + timedelta(seconds=1)) == []

    delivery = deliveries.begin(experiment.pk, first)
    assert delivery is not None
    now = ChunkAttempt.objects.get(key=first.key).started + timedelta(seconds=5)
    lines = recovery.reconcile(now + STALE)
    # The first chunk's delivery beat 5 s ago... from the sweep's point of view 50 s ago.
    assert lines == [
        f"experiment {experiment.pk}: sent {first.key} again (its worker died)",
        f"experiment {experiment.pk}: sent {second.key} again (no task holds it)",
    ]
    assert broker.llen("gpu") == 2
    row = ChunkAttempt.objects.get(key=first.key)
    assert row.last_error.startswith("the worker running it stopped beating")
    assert row.enqueued == now + STALE and row.attempts == 1

    # Sent and still waiting in the queue: held, however long it waits.
    assert recovery.reconcile(now + 10 * STALE) == []
    # The queue lost them (a broker without persistence restarted): sent again.
    broker.flushdb()
    assert len(recovery.reconcile(now + 10 * STALE)) == 2
    assert broker.llen("gpu") == 2


def test_a_delivery_that_beats_is_not_sent_again(broker: redis.Redis, team: Any) -> None:
    experiment = _running(team, n=2)
    first, second = _chunks(experiment)
    for chunk in (first, second):
        assert deliveries.begin(experiment.pk, chunk) is not None
    started = ChunkAttempt.objects.get(key=first.key).started
    assert recovery.reconcile(started + STALE - timedelta(seconds=1)) == []
    # A duplicate message of a chunk a live delivery holds is dropped, not counted.
    assert deliveries.begin(experiment.pk, first) is None
    assert ChunkAttempt.objects.get(key=first.key).attempts == 1


def test_a_chunk_whose_deliveries_died_at_the_limit_fails_the_experiment(
    broker: redis.Redis, team: Any
) -> None:
    experiment = _running(team, n=2)
    first, _ = _chunks(experiment)
    for _attempt in range(3):
        assert deliveries.begin(experiment.pk, first) is not None  # ... and it dies
        _age(experiment, first.key, STALE.total_seconds() + 1)
    lines = recovery.reconcile()
    assert lines == [f"experiment {experiment.pk}: failed, Generation of problems 0, 1 "
                     "used up its 3 attempts"]
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error == (
        "Generation of problems 0, 1 failed 3 times (STRATLAB_MAX_ATTEMPTS is 3), so "
        "nothing more of this experiment is retried. Last error: the worker running it "
        "stopped beating (killed, out of memory, or its machine went down)")
    assert broker.llen("gpu") == 0  # nothing of it was sent again
    assert recovery.reconcile() == []


def test_a_redelivered_message_past_the_limit_fails_the_experiment_and_stops(
    broker: redis.Redis, team: Any
) -> None:
    experiment = _running(team, n=2)
    first, _ = _chunks(experiment)
    ChunkAttempt.objects.create(experiment=experiment, key=first.key, attempts=3,
                                last_error="RuntimeError: CUDA error: an illegal memory access")
    assert deliveries.begin(experiment.pk, first) is None
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert experiment.error.endswith("Last error: RuntimeError: CUDA error: an illegal "
                                     "memory access")
    assert ChunkAttempt.objects.get(key=first.key).attempts == 3
    assert deliveries.begin(experiment.pk, first) is None  # and again: nothing happens


def test_a_failed_delivery_counts_and_a_completed_one_starts_the_count_again(
    broker: redis.Redis, team: Any
) -> None:
    experiment = _running(team, n=2)
    first, _ = _chunks(experiment)
    for attempt in (1, 2):
        delivery = deliveries.begin(experiment.pk, first)
        assert delivery is not None
        with pytest.raises(RuntimeError), delivery:
            raise RuntimeError(f"the engine broke ({attempt})")
        row = ChunkAttempt.objects.get(key=first.key)
        assert (row.attempts, row.last_error) == (attempt,
                                                  f"RuntimeError: the engine broke ({attempt})")
        assert row.finished is not None
    # Its work stored meanwhile (by another experiment's task, say): the next completes.
    _store_all(experiment, first.problem_ids)
    delivery = deliveries.begin(experiment.pk, first)
    assert delivery is not None
    with delivery:
        pass
    row = ChunkAttempt.objects.get(key=first.key)
    assert (row.attempts, row.last_error) == (0, "")
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.RUNNING


def test_a_delivery_that_ends_with_work_missing_counts_as_failed(
    broker: redis.Redis, team: Any
) -> None:
    experiment = _running(team, n=2)
    first, _ = _chunks(experiment)
    delivery = deliveries.begin(experiment.pk, first)
    assert delivery is not None
    with delivery:
        pass  # stored nothing
    row = ChunkAttempt.objects.get(key=first.key)
    assert row.attempts == 1 and row.last_error == "it ended with part of its work not stored"


def _store_all(experiment: Experiment, problem_ids: Any = None) -> None:
    """Samples (with completion markers) for every pool and problem, as generation would."""
    problems = experiment.problems.all()
    if problem_ids is not None:
        problems = problems.filter(pk__in=problem_ids)
    for pool_id, n in pools.pool_demands(experiment).items():
        for problem in problems:
            pools.record_samples(pool_id, problem.pk, {
                i: Candidate(text=f"The answer is {i}", prompt_tokens=3, generated_tokens=4,
                             logprob_sum=-1.0, finish_reason="eos", seconds=0.1)
                for i in range(n)
            }, requested=n)


def test_it_sends_verification_then_claims_the_metrics_from_the_stored_rows(
    broker: redis.Redis, team: Any
) -> None:
    experiment = _running(team, n=2)
    _store_all(experiment)
    later = experiment.created + 2 * STALE
    lines = recovery.reconcile(later)
    # Every sample is there, no verdict: each slice's verification is sent.
    first, second = _chunks(experiment)
    assert lines == [
        f"experiment {experiment.pk}: sent {Chunk.verify(c.demands, c.problem_ids).key} "
        "again (no task holds it)" for c in (first, second)
    ]
    assert broker.llen("cpu") == 2
    for pool_id in pools.pool_demands(experiment):
        verification.record_verdicts(experiment, pool_id,
                                     list(experiment.problems.values_list("pk", flat=True)))
    assert recovery.reconcile(later) == [
        f"experiment {experiment.pk}: every verdict stored; metrics sent"]
    experiment.refresh_from_db()
    assert experiment.metrics_claimed_at is not None
    assert broker.llen("cpu") == 3
    # The metrics task never begins (its message is lost): sent again once stale.
    broker.flushdb()
    sent = ChunkAttempt.objects.get(experiment=experiment, key="metrics").enqueued
    assert recovery.reconcile(sent + STALE + timedelta(seconds=1)) == [
        f"experiment {experiment.pk}: sent metrics again (no task holds it)"]


def test_a_queued_experiment_whose_messages_were_lost_is_sent_again(
    broker: redis.Redis, team: Any
) -> None:
    experiment = make_experiment(team, n=2)
    services.enqueue_experiment(experiment.pk)
    assert broker.llen("gpu") == 2
    assert recovery.reconcile(experiment.created + 2 * STALE) == []  # waiting in the queue
    broker.flushdb()
    assert len(recovery.reconcile(experiment.created + 2 * STALE)) == 2
    assert broker.llen("gpu") == 2
    # A storage pause note is cleared by the first delivery that completes.
    recovery.note_storage_pause(experiment.pk, "database or disk is full")
    assert Experiment.objects.get(pk=experiment.pk).error.startswith(recovery.STORAGE_NOTE)
    recovery.clear_storage_pause(experiment.pk)
    assert Experiment.objects.get(pk=experiment.pk).error == ""


def test_the_page_says_why_a_running_experiment_waits(client: Any, team: Any, owner: Any) -> None:
    from django.urls import reverse

    from tests.factories import PASSWORD

    experiment = _running(team, n=2)
    recovery.note_storage_pause(experiment.pk, "database or disk is full <b>")
    assert client.login(username=owner.username, password=PASSWORD)
    url = reverse("experiment-detail", args=[experiment.pk])
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="paused-notice"' in fragment and 'hx-trigger="every 2s"' in fragment
    assert ("Paused: the database could not be written (database or disk is full &lt;b&gt;); "
            "it resumes by itself once writes succeed again.") in fragment
    recovery.clear_storage_pause(experiment.pk)
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="paused-notice"' not in fragment
