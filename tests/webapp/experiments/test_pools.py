"""Pool bookkeeping: pools stored as recipes, markers, what a slice still needs."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.apps import apps

from strategies.types import Candidate
from tests.factories import make_experiment
from webapp.experiments import generation, pools
from webapp.experiments.models import PoolProblem, Sample, SamplePool
from webapp.experiments.specs import StrategySpec

pytestmark = pytest.mark.django_db


def _candidates(count: int) -> dict[int, Candidate]:
    return {i: Candidate(text=f"The answer is {i}", prompt_tokens=3, generated_tokens=4,
                         logprob_sum=-1.5, finish_reason="eos", seconds=0.25)
            for i in range(count)}


def test_it_stores_each_pool_as_its_recipe_under_the_recipes_key(team: Any) -> None:
    rows = [StrategySpec(temperature=0.7, selector="majority", prompt_scheme="chain_of_thought",
                         prompt_config={"instruction": "Think."}),
            StrategySpec(temperature=0.0, selector="first", decoder="beam_search",
                         decoder_config={"num_beams": 4})]
    experiment = make_experiment(team, n=3, strategies=rows)
    for strategy, row in zip(experiment.strategies.all(), rows, strict=True):
        recipe = row.recipe(experiment.model_name, 3, experiment.max_new_tokens,
                            experiment.seed)
        pool = strategy.pool
        assert pool.key == recipe.key()
        assert pool.scheme == row.prompt_scheme  # a field of its own, nothing to parse
        assert pool.prompt_scheme == recipe.pool_scheme()
        assert pool.recipe == recipe
        assert pools.ensure_pool(recipe) == pool


def test_it_marks_a_problem_done_with_its_samples_and_keeps_them_once(team: Any) -> None:
    experiment = make_experiment(team, n=3)
    sampled = experiment.strategies.get(position=1)
    problem_ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    first = problem_ids[0]
    assert pools.problems_missing_samples(sampled.pool_id, problem_ids, 3)[0].pk == first

    ids = pools.record_samples(sampled.pool_id, first, _candidates(3), requested=3)
    again = pools.record_samples(sampled.pool_id, first, _candidates(3), requested=3)
    assert ids == again and sorted(ids) == [0, 1, 2]
    assert Sample.objects.filter(pool_id=sampled.pool_id).count() == 3
    stored = Sample.objects.get(pk=ids[1])
    assert (stored.text, stored.seconds, stored.finish_reason) == ("The answer is 1", 0.25, "eos")
    marker = PoolProblem.objects.get(pool_id=sampled.pool_id, problem_id=first)
    assert (marker.n_requested, marker.n_done) == (3, 3)
    assert pools.is_pool_problem_done(sampled.pool_id, first, 3)
    assert not pools.is_pool_problem_done(sampled.pool_id, first, 4)  # a grown pool
    assert first not in {p.pk for p in pools.problems_missing_samples(
        sampled.pool_id, problem_ids, 3)}


def test_it_counts_what_an_experiment_expects_and_whether_generation_is_complete(
    team: Any,
) -> None:
    experiment = make_experiment(team, n=3)
    problems = experiment.dataset.problems.count()
    demands = pools.pool_demands(experiment)
    assert sorted(demands.values()) == [1, 3]  # a greedy pool of 1 and a sampled one of 3
    totals = pools.generation_totals(experiment)
    assert totals == pools.GenerationTotals(expected=problems * 4, is_complete=False)
    for pool_id, n in demands.items():
        for problem_id in experiment.dataset.problems.values_list("pk", flat=True):
            pools.record_samples(pool_id, problem_id, _candidates(n), requested=n)
    assert pools.generation_totals(experiment).is_complete
    assert pools.experiment_samples(experiment).count() == problems * 4


def test_a_chunk_asks_for_the_missing_problems_of_each_pool_in_problem_order(
    team: Any,
) -> None:
    experiment = make_experiment(team, n=3)
    demands = [[pool_id, n] for pool_id, n in pools.pool_demands(experiment).items()]
    problem_ids = list(experiment.dataset.problems.order_by("index").values_list("pk", flat=True))
    greedy = min(pool_id for pool_id, n in demands if n == 1)
    pools.record_samples(greedy, problem_ids[0], _candidates(1), requested=1)

    [work] = generation.chunk_work(experiment.pk, demands, problem_ids)
    assert work.model_name == experiment.model_name and work.judge is None
    lacking = [(w.problem_index, w.pool_id) for w in work.lacking]
    assert lacking == sorted(lacking) and (0, greedy) not in lacking
    assert len(lacking) == 2 * len(problem_ids) - 1
    first = work.lacking[0]
    assert first.recipe == SamplePool.objects.get(pk=first.pool_id).recipe
    assert first.seed == generation.problem_seed(experiment.seed, first.problem_index)


def test_the_migration_gives_an_older_pool_its_scheme(team: Any) -> None:
    experiment = make_experiment(team, n=3, strategies=[
        StrategySpec(temperature=0.7, selector="majority", prompt_scheme="few_shot",
                     prompt_config={"question_label": "Q"})])
    pool = experiment.strategies.get().pool
    assert pool.prompt_scheme.startswith("few_shot:")
    SamplePool.objects.filter(pk=pool.pk).update(scheme="")  # as the column was added

    import_module("webapp.experiments.migrations.0005_pool_scheme").fill_scheme(apps, None)
    pool.refresh_from_db()
    assert pool.scheme == "few_shot" and pool.recipe.key() == pool.key
