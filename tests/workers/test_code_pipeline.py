"""A HumanEval experiment on real components: form -> Redis -> worker (generation,
sandboxed unit tests, generated tests and pass matrices) -> results with CodeT and B4."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD
from tests.workers.test_pipeline import submit, wait_until_done
from webapp.experiments.models import (
    Experiment,
    Metric,
    PassMatrix,
    ProblemResult,
    Sample,
    Verdict,
)

pytestmark = [pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]


def test_humaneval_runs_with_majority_codet_and_b4_from_the_form(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(
        client, team, name="Code", dataset_source="humaneval", humaneval_size="2",
        n_samples="3", max_new_tokens="12", rows=["m", "c", "b", "p"],
        **{"s-m-temperature": "1.0", "s-m-top_p": "1", "s-m-top_k": "0",
           "s-m-selector": "majority",
           "s-c-temperature": "1.0", "s-c-top_p": "1", "s-c-top_k": "0",
           "s-c-selector": "codet", "s-c-sel__test_samples": "2",
           "s-b-temperature": "1.0", "s-b-top_p": "1", "s-b-top_k": "0",
           "s-b-selector": "b4", "s-b-sel__test_samples": "2",
           # PlanSearch: observations -> plans -> programs, judged by the same tests.
           "s-p-prompt_scheme": "plansearch", "s-p-temperature": "1.0", "s-p-top_p": "1",
           "s-p-top_k": "0", "s-p-selector": "first", "s-p-scheme__n_observations": "2",
           "s-p-scheme__max_observation_sets": "2", "s-p-scheme__max_plans": "2",
           "s-p-scheme__max_new_tokens": "12", "s-p-scheme__parse_temperatures": "0, 0.2",
           "s-p-scheme__language": "python"},
    )
    fragment = wait_until_done(client, experiment, celery_worker_process, timeout=240)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    assert "pass@1" in fragment

    majority, codet, b4, plansearch = experiment.strategies.order_by("position")
    assert majority.pool_id == codet.pool_id == b4.pool_id
    assert codet.test_pool_id == b4.test_pool_id is not None
    assert Sample.objects.filter(pool=majority.pool).count() == 2 * 3
    assert Sample.objects.filter(pool=codet.test_pool).count() == 2 * 2
    # Every solution was run against the problem's unit tests in the sandbox.
    verdicts = Verdict.objects.filter(sample__pool=majority.pool)
    assert verdicts.count() == 6
    assert all(v.outcome in ("pass", "fail") and v.detail for v in verdicts)
    # The canonical solutions timed the problems' limits.
    for problem in experiment.dataset.problems.all():
        assert problem.metadata["canonical_status"] == "passed"
        assert problem.metadata["canonical_seconds"] < 3.0
    assert PassMatrix.objects.filter(solution_pool=majority.pool).count() == 2
    assert ProblemResult.objects.filter(strategy__experiment=experiment).count() == 8
    planned = Verdict.objects.filter(sample__pool=plansearch.pool)
    assert planned.exists() and all(v.outcome in ("pass", "fail") for v in planned)
    assert Metric.objects.filter(strategy=codet, name="pass_at_k", k=1).exists()


@pytest.mark.slow
def test_the_packaged_gemma3_completes_humaneval_from_the_form(
    client: Any, team: Any, owner: Any, celery_worker_process: Any
) -> None:
    """Gemma 3 270M base: completion prompts (no chat template), Codex's stop strings."""
    assert client.login(username=owner.username, password=PASSWORD)
    experiment = submit(
        client, team, name="Gemma code", model_name="gemma3-270m", dataset_source="humaneval",
        humaneval_size="2", n_samples="2", max_new_tokens="64", rows=["g", "m"],
        **{"s-m-temperature": "0.8", "s-m-top_p": "0.95", "s-m-top_k": "0",
           "s-m-selector": "majority"},
    )
    wait_until_done(client, experiment, celery_worker_process, timeout=420)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    samples = list(Sample.objects.filter(pool__model_name="gemma3-270m"))
    assert len(samples) == 2 * 1 + 2 * 2  # greedy row (one sample) + the sampled row
    # A completion continues the function body: indented code, no chat turns.
    assert all(s.text.startswith((" ", "\t", "\n")) for s in samples)
    assert sum("return" in s.text for s in samples) >= 3
    assert all(s.finish_reason in ("eos", "stop", "length") for s in samples)
    verdicts = Verdict.objects.filter(sample__in=samples)
    assert verdicts.count() == len(samples)
    assert all(v.outcome in ("pass", "fail") and v.detail for v in verdicts)
