"""The whole loop on real components: web form -> real Redis -> real Celery worker
process -> results page. The worker runs a tiny random-weight model (fast); one
test runs the packaged SmolLM2-135M-Instruct on two problems."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from webapp.experiments.models import Experiment, ProblemResult, Sample, SamplePool, Verdict

pytestmark = [pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]


def submit(client: Any, team: Any, **overrides: Any) -> Experiment:
    data: dict[str, Any] = {
        "team": team.pk,
        "name": "Pipeline",
        "model_name": "tiny-random",
        "dataset_source": "arithmetic",
        "arithmetic_size": "3",
        "arithmetic_seed": "0",
        "prompts": "",
        "n_samples": "4",
        "max_new_tokens": "6",
        "seed": "0",
        "rows": ["g", "m", "f"],
        "s-g-temperature": "0", "s-g-top_p": "1", "s-g-top_k": "0", "s-g-selector": "first",
        "s-m-temperature": "1.0", "s-m-top_p": "0.95", "s-m-top_k": "0",
        "s-m-selector": "majority",
        "s-f-temperature": "1.0", "s-f-top_p": "0.95", "s-f-top_k": "0",
        "s-f-selector": "first",
    }
    data.update(overrides)
    response = client.post(reverse("experiment-new"), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Experiment.objects.latest("created")


def wait_until_done(client: Any, experiment: Experiment, worker: Any, timeout: float) -> str:
    """Poll the htmx fragment as the browser does until polling stops."""
    url = reverse("experiment-detail", args=[experiment.pk])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        if "hx-trigger" not in fragment:
            return fragment
        if worker.process.poll() is not None:
            pytest.fail(f"worker died:\n{worker.output()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"experiment did not finish in {timeout}s:\n{worker.output()[-4000:]}")


def test_it_runs_an_experiment_from_the_form_to_the_results_page(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(client, team)
    fragment = wait_until_done(client, experiment, celery_worker_process, timeout=180)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    assert 'id="results-table"' in fragment and "pass@4" in fragment

    # Two pools for three strategies: the sampled pool was generated once.
    assert SamplePool.objects.count() == 2
    greedy, majority, first = experiment.strategies.order_by("position")
    assert majority.pool_id == first.pool_id
    assert Sample.objects.filter(pool=greedy.pool).count() == 3
    assert Sample.objects.filter(pool=majority.pool).count() == 3 * 4
    assert Verdict.objects.count() == 3 + 12
    assert ProblemResult.objects.filter(strategy__experiment=experiment).count() == 9
    sample = Sample.objects.filter(pool=majority.pool).first()
    assert 0 < sample.generated_tokens <= 6 and sample.logprob_sum < 0 and sample.prompt_tokens > 0

    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert 'id="problem-grid"' in page
    problem = experiment.dataset.problems.first()
    detail = client.get(reverse("experiment-problem", args=[experiment.pk, problem.pk]))
    assert detail.status_code == 200
    # One column per pool: the greedy pool's candidate and the shared sampled pool's four.
    assert detail.content.decode().count('class="candidate') == 1 + 4

    # Running the same experiment again reuses every stored sample.
    again = submit(client, team, name="Pipeline again")
    wait_until_done(client, again, celery_worker_process, timeout=120)
    again.refresh_from_db()
    assert again.status == Experiment.Status.FINISHED, again.error
    assert Sample.objects.count() == 3 + 12


def test_it_fails_an_experiment_whose_model_cannot_load_with_a_reason(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(client, team, model_name="broken")
    wait_until_done(client, experiment, celery_worker_process, timeout=60)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert "broken" in experiment.error and "failed to load" in experiment.error
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    assert "This experiment failed" in page


def test_it_runs_registered_schemes_samplers_and_selectors_through_the_worker(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    from webapp.experiments.models import Metric

    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(
        client, team, arithmetic_size="2", n_samples="4", self_eval="on",
        rows=["v", "c", "t", "e"],
        **{
            "s-v-prompt_scheme": "verbalized", "s-v-scheme__k": "2", "s-v-temperature": "0.9",
            "s-v-top_p": "1", "s-v-top_k": "0", "s-v-selector": "rpc",
            "s-c-prompt_scheme": "chain_of_thought", "s-c-temperature": "0.8",
            "s-c-top_p": "1", "s-c-top_k": "0", "s-c-min_p": "0.05",
            "s-c-selector": "best_of_n",
            "s-t-temperature": "0.8", "s-t-top_p": "1", "s-t-top_k": "0",
            "s-t-temperature_mix": "0.5, 1.2", "s-t-selector": "weighted_majority",
            "s-e-temperature": "1.0", "s-e-top_p": "1", "s-e-top_k": "0", "s-e-ead": "on",
            "s-e-top_h_alpha": "0.4", "s-e-selector": "mbr",
        },
    )
    wait_until_done(client, experiment, celery_worker_process, timeout=240)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    assert SamplePool.objects.count() == 4
    assert Sample.objects.count() == 4 * 2 * 4
    # Every sample was scored by self-evaluation, a probability.
    scores = list(Verdict.objects.filter(verifier="self_eval").values_list("score", flat=True))
    assert len(scores) == 32 and all(0.0 <= s <= 1.0 for s in scores)
    for strategy in experiment.strategies.all():
        assert Metric.objects.filter(strategy=strategy, name="sel_at_k").count() == 3
        assert Metric.objects.filter(strategy=strategy, name="embedding_distance").exists()


@pytest.mark.slow
def test_it_runs_one_problem_at_n_2000_over_several_tasks_and_batches(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    from webapp.experiments.models import ChunkAttempt, Metric, PoolProblem

    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(
        client, team, arithmetic_size="1", n_samples="2000", max_new_tokens="2",
        rows=["g", "f"], **{"s-f-top_p": "1"},
    )
    fragment = wait_until_done(client, experiment, celery_worker_process, timeout=300)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    greedy, sampled = experiment.strategies.order_by("position")
    problem = experiment.problems.get().pk

    # Every index once, from two range tasks of 1,024 and 976 samples (each decoded in
    # batches of up to STRATLAB_MAX_BATCH_ROWS), marked complete once all were stored.
    indices = list(Sample.objects.filter(pool=sampled.pool).values_list("index", flat=True))
    assert sorted(indices) == list(range(2000))
    marker = PoolProblem.objects.get(pool=sampled.pool, problem_id=problem)
    assert (marker.n_requested, marker.n_done) == (2000, 2000)
    keys = set(ChunkAttempt.objects.filter(experiment=experiment).values_list("key", flat=True))
    ranges = [f"{sampled.pool_id}:{problem}:s0-1023", f"{sampled.pool_id}:{problem}:s1024-1999"]
    assert keys == {f"generate:{greedy.pool_id}:{problem}", f"verify:{greedy.pool_id}:{problem}",
                    *(f"{stage}:{r}" for stage in ("generate", "verify") for r in ranges),
                    "metrics"}
    assert not ChunkAttempt.objects.filter(experiment=experiment, attempts__gt=0).exists()
    assert Verdict.objects.filter(sample__pool=sampled.pool).count() == 2000
    assert len(set(Sample.objects.filter(pool=sampled.pool).values_list("text", flat=True))) > 1

    # k at the powers of two up to N, on the page and in the figures.
    assert experiment.k_values == [2**i for i in range(11)]
    assert "pass@1024" in fragment
    assert Metric.objects.filter(strategy=sampled, name="pass_at_k", k=1024).exists()


@pytest.mark.slow
def test_it_runs_the_packaged_smollm2_on_two_problems(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(
        client, team, model_name="smollm2-135m-instruct", arithmetic_size="2",
        n_samples="2", max_new_tokens="24", rows=["g", "m"],
    )
    wait_until_done(client, experiment, celery_worker_process, timeout=300)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    texts = list(Sample.objects.values_list("text", flat=True))
    assert len(texts) == 2 + 2 * 2
    # A real model writes words and digits, not random sub-word soup.
    assert sum(any(ch.isdigit() for ch in t) for t in texts) >= 4
    answers = Verdict.objects.exclude(answer=None).count()
    assert answers >= 4
