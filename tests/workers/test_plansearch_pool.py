"""PlanSearch runs as a pool's prompting scheme on the engine (observations -> plans -> code)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_experiment
from tests.workers.test_tasks import run_all, worker_settings  # noqa: F401  (fixture)
from webapp.experiments.models import Experiment, Sample
from webapp.experiments.specs import StrategySpec

pytestmark = pytest.mark.django_db

SMALL = {"n_observations": 2, "max_observation_sets": 2, "max_plans": 2,
         "second_order": False, "pseudocode": False}


def test_it_fills_a_pool_with_one_program_per_plan(
    worker_settings: Any, team: Any  # noqa: F811
) -> None:
    experiment = make_experiment(
        team, n=4, prompts=[("Write a function that adds two numbers.", "")],
        strategies=[StrategySpec(temperature=0.7, prompt_scheme="plansearch",
                                 prompt_config=SMALL, selector="first")],
    )
    strategy = experiment.strategies.get()
    assert strategy.n == 2  # min(N, max_plans)
    run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    samples = list(Sample.objects.filter(pool_id=strategy.pool_id))
    assert 1 <= len(samples) <= 2
    assert all(s.generated_tokens > 0 for s in samples)
