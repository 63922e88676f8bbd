"""Beam decoders, sequential revision and the model judge, run through the task functions."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.verify.math import extract_answer
from tests.workers.test_tasks import run_all, worker_settings  # noqa: F401  (fixture)
from webapp.datasets.services import PromptRow, ensure_prompt_dataset
from webapp.experiments.models import (
    Experiment,
    Metric,
    PoolProblem,
    ProblemResult,
    Sample,
    Verdict,
)
from webapp.experiments.services import progress, submit_experiment
from webapp.experiments.specs import ExperimentSpec, StrategySpec
from webapp.experiments.verification import record_verdicts, verifier_for

pytestmark = pytest.mark.django_db

MAX_NEW_TOKENS = 5


def submit(team: Any, strategies: list[StrategySpec], *, n: int, name: str = "run",
           **kwargs: Any) -> Experiment:
    dataset = ensure_prompt_dataset(team, [PromptRow("2+2?", "4"), PromptRow("3+3?", "6")])
    spec = ExperimentSpec(name=name, model_name="tiny-random", dataset=dataset, n_samples=n,
                          max_new_tokens=MAX_NEW_TOKENS, seed=0, strategies=strategies,
                          **kwargs)
    return submit_experiment(team, team.memberships.get(role="owner").user, spec)


def counts() -> tuple[int, ...]:
    return (Sample.objects.count(), Verdict.objects.count(), ProblemResult.objects.count(),
            Metric.objects.count(), PoolProblem.objects.count())


def redeliver(experiment: Experiment) -> None:
    """Every task delivered again, as after a worker crash before the ack."""
    Experiment.objects.filter(pk=experiment.pk).update(
        status=Experiment.Status.RUNNING, metrics_claimed_at=None
    )
    run_all(experiment)


def samples(strategy: Any, problem: Any) -> list[Sample]:
    return list(Sample.objects.filter(pool_id=strategy.pool_id, problem=problem,
                                      index__lt=strategy.n).order_by("index"))


def assert_finished(experiment: Experiment) -> None:
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    assert [stage["percent"] for stage in progress(experiment)] == [100, 100, 100]


def test_it_runs_beam_and_sequential_rows_to_the_end(worker_settings: Any,  # noqa: F811
                                                      team: Any) -> None:
    experiment = submit(team, n=3, strategies=[
        StrategySpec(temperature=0.0, selector="first"),
        StrategySpec(temperature=1.0, decoder="beam_search", selector="majority",
                     decoder_config={"num_beams": 3, "length_penalty": 0.0}),
        StrategySpec(temperature=1.0, decoder="diverse_beam_search", selector="first",
                     decoder_config={"num_beams": 4, "num_beam_groups": 2}),
        # A budget of two full calls: fewer revisions than the pool's n of 3.
        StrategySpec(temperature=0.7, prompt_scheme="sequential", selector="first",
                     prompt_config={"budget_tokens": 2 * MAX_NEW_TOKENS}),
        StrategySpec(temperature=0.7, prompt_scheme="sequential", selector="majority"),
    ])
    run_all(experiment)
    assert_finished(experiment)
    greedy, beam, diverse, short, matched = experiment.strategies.order_by("position")
    assert (beam.n, diverse.n, short.n, matched.n) == (3, 3, 3, 3)
    assert matched.prompt_config == {"budget_tokens": 3 * MAX_NEW_TOKENS}
    chain_lengths = []
    for problem in experiment.dataset.problems.all():
        beams = samples(beam, problem)
        assert len(beams) == 3 and len({s.text for s in beams}) == 3
        # length_penalty 0: the score is the log-prob sum, best first.
        sums = [s.logprob_sum for s in beams]
        assert sums == sorted(sums, reverse=True)
        assert all(1 <= s.generated_tokens <= MAX_NEW_TOKENS for s in beams)
        assert all(s.finish_reason in ("eos", "length") for s in beams)
        # Three beams find a sequence at least as likely as the greedy one.
        (first,) = samples(greedy, problem)
        assert beams[0].logprob_sum >= first.logprob_sum - 1e-4

        diverse_beams = samples(diverse, problem)
        assert len(diverse_beams) == 3 and len({s.text for s in diverse_beams}) == 3
        scores = [s.logprob_sum / s.generated_tokens for s in diverse_beams]
        assert scores == sorted(scores, reverse=True)

        chain = samples(short, problem)
        chain_lengths.append(len(chain))
        assert sum(s.generated_tokens for s in chain) <= 2 * MAX_NEW_TOKENS
        marker = PoolProblem.objects.get(pool_id=short.pool_id, problem=problem)
        assert (marker.n_requested, marker.n_done) == (3, len(chain))
        assert sum(s.generated_tokens for s in samples(matched, problem)) <= 3 * MAX_NEW_TOKENS
    assert min(chain_lengths) >= 1 and min(chain_lengths) < 3  # a pool smaller than its n
    assert ProblemResult.objects.filter(strategy=short).count() == 2

    before = counts()
    texts = list(Sample.objects.order_by("pk").values_list("text", flat=True))
    redeliver(experiment)
    assert counts() == before
    assert list(Sample.objects.order_by("pk").values_list("text", flat=True)) == texts


def test_it_judges_samples_with_the_model_during_generation(worker_settings: Any,  # noqa: F811
                                                             team: Any) -> None:
    rows = [StrategySpec(temperature=0.0, selector="first"),
            StrategySpec(temperature=0.7, selector="majority")]
    # A first experiment fills the pools with math verdicts; the judge reuses its samples.
    first = submit(team, rows, n=2, name="math")
    run_all(first)
    assert_finished(first)
    experiment = submit(team, rows, n=2, name="judged", verifier="judge",
                        verifier_config={"max_new_tokens": 4})
    key = verifier_for(experiment)
    assert key.startswith("judge:")
    run_all(experiment)
    assert_finished(experiment)
    judged = Verdict.objects.filter(verifier=key).select_related("sample")
    assert judged.count() == 2 * (1 + 2)
    for verdict in judged:
        assert verdict.outcome in ("pass", "fail", "error")
        assert verdict.answer == extract_answer(verdict.sample.text)
    # The text verification stage leaves a judge experiment alone.
    ids = list(experiment.dataset.problems.values_list("pk", flat=True))
    for strategy in experiment.strategies.all():
        assert record_verdicts(experiment, strategy.pool_id, ids) == 0
    assert ProblemResult.objects.filter(strategy__experiment=experiment).count() == 2 * 2

    before = counts()
    redeliver(experiment)
    assert counts() == before
