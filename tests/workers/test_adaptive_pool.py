"""Adaptive consistency as a pool's decoder: sampling stops once the vote is decided."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.sampling import DecodingConfig
from strategies.select.adaptive import AdaptiveConfig
from strategies.types import Candidate
from tests.factories import make_experiment
from tests.workers.test_tasks import run_all, worker_settings  # noqa: F401  (fixture)
from webapp.experiments.models import Experiment, PoolProblem, Sample
from webapp.experiments.specs import StrategySpec
from workers.runtime import schemes


def test_it_draws_rounds_of_one_one_two_four() -> None:
    assert schemes.adaptive_rounds(1) == [1]
    assert schemes.adaptive_rounds(8) == [1, 1, 2, 4]
    assert schemes.adaptive_rounds(10) == [1, 1, 2, 4, 2]


def fixed_sampler(texts: list[str]) -> Any:
    """An engine double for the round logic: hands out the given outputs in order."""
    queue = list(texts)
    calls: list[int] = []

    def sample(loaded: Any, user_text: str, decoding: Any, n: int, seed: int) -> list[Any]:
        calls.append(n)
        return [
            Candidate(text=queue.pop(0), prompt_tokens=3, generated_tokens=4, logprob_sum=-1.0,
                      finish_reason="eos", seconds=0.1)
            for _ in range(n)
        ]

    return sample, calls


def test_it_stops_after_four_unanimous_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    sample, calls = fixed_sampler(["The answer is 7."] * 16)
    monkeypatch.setattr(schemes, "_sample", sample)
    drawn = schemes.adaptive_candidates(None, "q", DecodingConfig(), n=16, seed=0,  # type: ignore[arg-type]
                                        config=AdaptiveConfig())
    # 1 - 0.5^4 = 0.9375 < 0.95 after 3 answers would not stop; four answers give 0.969.
    assert len(drawn) == 4 and calls == [1, 1, 2]


def test_it_draws_everything_while_answers_disagree(monkeypatch: pytest.MonkeyPatch) -> None:
    sample, calls = fixed_sampler([f"The answer is {i}." for i in range(8)])
    monkeypatch.setattr(schemes, "_sample", sample)
    drawn = schemes.adaptive_candidates(None, "q", DecodingConfig(), n=8, seed=0,  # type: ignore[arg-type]
                                        config=AdaptiveConfig())
    assert len(drawn) == 8 and calls == [1, 1, 2, 4]


@pytest.mark.django_db
def test_it_runs_an_adaptive_pool_to_a_finished_experiment(
    worker_settings: Any, team: Any  # noqa: F811
) -> None:
    experiment = make_experiment(
        team, n=8,
        strategies=[StrategySpec(temperature=0.7, selector="majority",
                                 decoder="adaptive_consistency",
                                 decoder_config={"threshold": 0.9})],
    )
    strategy = experiment.strategies.get()
    assert strategy.pool.decoder == {"name": "adaptive_consistency",
                                     "config": {"threshold": 0.9}}
    run_all(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED, experiment.error
    for marker in PoolProblem.objects.filter(pool=strategy.pool):
        assert 1 <= marker.n_done <= 8
        assert Sample.objects.filter(pool=strategy.pool, problem=marker.problem).count() \
            == marker.n_done
