"""Data migrations of the experiments app: verdict tallies count the verdicts already
stored; experiments measured before comparisons were stored get theirs."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("experiments", "0009_chunk_delivery_state")]
AFTER = [("experiments", "0010_verdict_tallies")]
BEFORE_LABELLED = [("experiments", "0010_verdict_tallies")]


@pytest.mark.django_db(transaction=True)
def test_it_tallies_the_verdicts_stored_before_it(team: Any) -> None:
    from tests.factories import make_experiment

    experiment = make_experiment(team, prompts=[("1+1?", "2"), ("2+2?", "4")], n=3)
    sampled = experiment.strategies.get(position=1).pool_id
    problems = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Sample, Verdict = old.get_model("experiments", "Sample"), old.get_model(
            "experiments", "Verdict")
        for problem_id, judged in zip(problems, (3, 1), strict=True):
            for index in range(3):
                sample = Sample.objects.create(
                    pool_id=sampled, problem_id=problem_id, index=index, text="2",
                    prompt_tokens=1, generated_tokens=1, logprob_sum=0.0,
                    finish_reason="eos", seconds=0.0)
                Verdict.objects.create(sample=sample, verifier="self_eval",
                                       outcome="unjudged", score=0.5)
                if index < judged:
                    Verdict.objects.create(sample=sample, verifier="math", outcome="pass")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest
    tally = executor.loader.project_state(AFTER).apps.get_model("experiments", "VerdictTally")
    assert set(tally.objects.values_list("pool_id", "problem_id", "verifier",
                                         "n_verdicts")) == {
        (sampled, problems[0], "math", 3), (sampled, problems[1], "math", 1),
        (sampled, problems[0], "self_eval", 3), (sampled, problems[1], "self_eval", 3),
    }


def comparison_fields(rows: Any) -> set[tuple[Any, ...]]:
    return set(rows.values_list("strategy_id", "baseline_id", "problems", "wins", "ties",
                                "losses", "mean_diff", "ci_low", "ci_high",
                                "p_value_sign_flip", "p_holm"))


@pytest.mark.django_db(transaction=True)
def test_it_compares_the_strategies_of_experiments_measured_before(team: Any) -> None:
    from tests.webapp.experiments.review_data import build
    from webapp.experiments.models import Comparison

    experiment = build(team)
    measured = comparison_fields(Comparison.objects.all())
    assert len(measured) == 2
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_LABELLED)
    try:
        old = executor.loader.project_state(BEFORE_LABELLED).apps
        old.get_model("experiments", "Comparison").objects.all().delete()
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert comparison_fields(Comparison.objects.filter(
        strategy__experiment=experiment, labelled=False)) == measured
