"""Cancel on real components: the page's Cancel button while a real Celery worker
generates; the worker stops within one batch, stores nothing after the cancel, and goes
on to the next experiment."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD
from tests.workers.test_pipeline import submit, wait_until_done
from webapp.experiments.models import Experiment, Metric, Sample, Verdict

pytestmark = [pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]


def test_cancelling_mid_generation_stops_within_a_batch_and_the_worker_goes_on(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    # One sampled pool, 2 problems (16 rows, one batch) per generation task, 40 tasks.
    experiment = submit(client, team, name="Long", arithmetic_size="80", n_samples="8",
                        max_new_tokens="32", rows=["m"])
    pool_id = experiment.strategies.get().pool_id
    deadline = time.monotonic() + 120
    while not Sample.objects.filter(pool_id=pool_id).exists():
        assert time.monotonic() < deadline, celery_worker_process.output()[-3000:]
        time.sleep(0.05)

    response = client.post(reverse("experiment-cancel", args=[experiment.pk]))
    acknowledged = timezone.now()
    assert response.status_code == 302
    stored = Sample.objects.filter(pool_id=pool_id).count()
    fragment = client.get(reverse("experiment-detail", args=[experiment.pk]),
                          HTTP_HX_REQUEST="true").content.decode()
    assert 'id="cancelled-notice"' in fragment and "hx-trigger" not in fragment

    # The worker drains the cancelled experiment's queued tasks, then runs the next one.
    following = submit(client, team, name="Next", arithmetic_size="2", n_samples="2",
                       max_new_tokens="6", rows=["g"])
    wait_until_done(client, following, celery_worker_process, timeout=180)
    following.refresh_from_db()
    assert following.status == Experiment.Status.FINISHED, following.error

    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CANCELLED
    # It stopped early, and nothing was written after the cancel was acknowledged: not
    # the batch in flight, no verdict, no figure.
    assert 0 < stored < 80 * 8
    assert Sample.objects.filter(pool_id=pool_id).count() == stored
    assert not Sample.objects.filter(pool_id=pool_id, created__gt=acknowledged).exists()
    assert not Verdict.objects.filter(sample__pool_id=pool_id,
                                      created__gt=acknowledged).exists()
    assert not Metric.objects.filter(strategy__experiment=experiment).exists()
    assert experiment.metrics_claimed_at is None
