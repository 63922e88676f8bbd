"""Best-of-Majority: frequency filter, then reward (ALGORITHMS §8)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from strategies.select.best_of_majority import BestOfMajorityConfig, select_best_of_majority
from strategies.types import Candidate


def _pool(pairs: Sequence[tuple[str | None, float | None]]) -> list[Candidate]:
    return [Candidate(text=f"t{i}", answer=a, score=s) for i, (a, s) in enumerate(pairs)]


def _answers(pool: list[Candidate], indices: tuple[int, ...]) -> list[str | None]:
    return [pool[i].answer for i in indices]


def test_it_lets_a_rare_high_reward_answer_lose() -> None:
    # N = 10, alpha = max(2/10, 0.05) = 0.2: "9" (0.1) is filtered out despite reward 0.99
    pool = _pool([("5", 0.6)] * 6 + [("9", 0.99)] + [("4", 0.7), ("4", 0.1), ("4", 0.1)])
    selection = select_best_of_majority(pool)
    assert selection.answer == "4"  # max reward 0.7 > 0.6 among the frequent answers
    assert selection.index == 7  # the best-rewarded member of "4"
    assert selection.tied == (7,)
    assert selection.scores is not None and selection.scores[6] == -math.inf
    mean = select_best_of_majority(pool, BestOfMajorityConfig(aggregation="mean"))
    assert mean.answer == "5"  # mean reward: "5" 0.6 > "4" 0.3


def test_it_keeps_the_mode_when_nothing_survives() -> None:
    # alpha = 0.5: "a" has 0.4, nothing survives, so the mode "a" stays despite lower reward
    pool = _pool([("a", 0.1), ("a", 0.2), ("b", 0.9), ("c", 0.8), ("d", 0.7)])
    selection = select_best_of_majority(pool, BestOfMajorityConfig(alpha=0.5))
    assert (selection.answer, selection.index, selection.ranking) == ("a", 1, (1,))
    # all answers unique: every answer is a mode, the reward decides
    unique = _pool([("a", 0.1), ("b", 0.9), ("c", 0.8)])
    assert select_best_of_majority(unique).answer == "b"


def test_it_returns_a_top_k_ranking() -> None:
    pool = _pool(
        [("1", 0.3), ("1", 0.2), ("2", 0.9), ("2", 0.1), ("3", 0.5), ("3", 0.5), ("4", 0.99)]
    )
    config = BestOfMajorityConfig(k=3)  # alpha = 2/7: "4" is filtered out
    selection = select_best_of_majority(pool, config)
    assert _answers(pool, selection.ranking) == ["2", "3", "1"]
    assert selection.ranking[0] == selection.index == 2
    top2 = select_best_of_majority(pool, BestOfMajorityConfig(k=2))
    assert _answers(pool, top2.ranking) == ["2", "3"]
    short = select_best_of_majority(pool, BestOfMajorityConfig(k=5))
    assert _answers(pool, short.ranking) == ["2", "3", "1"]  # fewer than k survive
    padded = select_best_of_majority(pool, BestOfMajorityConfig(k=5, pad=True))
    assert _answers(pool, padded.ranking) == ["2", "3", "1", "4"]


def test_it_breaks_reward_ties_by_frequency_then_order() -> None:
    pool = _pool([("1", 0.5), ("1", 0.5), ("2", 0.5), ("2", 0.5), ("2", 0.5)])
    selection = select_best_of_majority(pool)
    assert (selection.answer, selection.tied) == ("2", (2,))
    even = _pool([("1", 0.5), ("2", 0.5), ("1", 0.5), ("2", 0.5)])
    assert select_best_of_majority(even).tied == (0, 1)


def test_it_counts_none_in_n_but_never_selects_it() -> None:
    # N = 5 (alpha = 0.4): "7" appears 2/5 and survives; None never does
    pool = _pool([(None, 0.99), (None, 0.99), (None, 0.99), ("7", 0.1), ("7", 0.2)])
    assert select_best_of_majority(pool).answer == "7"
    assert select_best_of_majority(_pool([(None, 1.0)])).index is None


def test_it_treats_missing_rewards_as_minus_infinity() -> None:
    pool = _pool([("1", None), ("1", None), ("2", 0.0), ("2", None)])
    assert select_best_of_majority(pool).answer == "2"
    mean = select_best_of_majority(pool, BestOfMajorityConfig(aggregation="mean"))
    assert mean.answer == "2"  # the mean is over the scored members


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"k": 0}, "k"),
        ({"aggregation": "min"}, "aggregation"),
        ({"pad": "yes"}, "pad"),
    ],
)
def test_it_rejects_bad_configs(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BestOfMajorityConfig(**kwargs)  # type: ignore[arg-type]
