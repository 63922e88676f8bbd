"""The uniform selector interface: Selection, tie credit, and every registered selector."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.select.base import (
    Selection,
    answer_groups_of,
    rank_options,
    selection_credit,
)
from strategies.select.entries import ENTRIES
from strategies.select.first import FirstConfig, select_first_candidate
from strategies.select.majority import majority_vote, select_majority
from strategies.select.oracle import select_oracle
from strategies.select.random_choice import RandomConfig, select_random
from strategies.types import Candidate


def _pool() -> list[Candidate]:
    answers = ["7", "8", None, "8.0", "7", "9"]
    correct = [False, True, False, True, False, False]
    return [
        Candidate(
            text=f"t{i}",
            answer=a,
            is_correct=c,
            score=0.1 * i,
            generated_tokens=2,
            logprob_sum=-0.5 * i,
        )
        for i, (a, c) in enumerate(zip(answers, correct, strict=True))
    ]


def test_it_gives_one_over_tied_credit() -> None:
    pool = _pool()
    assert selection_credit(Selection(index=0, answer="7", tied=(0, 1)), pool) == 0.5
    assert selection_credit(Selection(index=1, answer="8", tied=(1,)), pool) == 1.0
    assert selection_credit(Selection(index=0, answer="7", tied=(0, 1, 5)), pool) == 1 / 3


def test_it_gives_abstaining_zero_credit() -> None:
    assert selection_credit(Selection(index=None, answer=None, tied=()), _pool()) == 0.0
    assert selection_credit(Selection(index=None, answer=None, tied=()), []) == 0.0


def test_it_returns_none_credit_when_unjudged() -> None:
    pool = [Candidate(text="", answer="1"), Candidate(text="", answer="2", is_correct=True)]
    assert selection_credit(Selection(index=0, answer="1", tied=(0,)), pool) is None
    assert selection_credit(Selection(index=1, answer="2", tied=(1,)), pool) == 1.0
    assert selection_credit(Selection(index=None, answer=None, tied=()), pool) is None


def test_it_ranks_options_with_tolerant_ties() -> None:
    order, tied = rank_options([(0.6,), (0.3 + 0.3,), (0.1,)])
    assert order == [0, 1, 2]
    assert tied == [0, 1]
    assert rank_options([]) == ([], [])


def test_it_wraps_majority_vote() -> None:
    pool = _pool()
    selection = select_majority(pool)
    vote = majority_vote([c.answer for c in pool])
    assert vote.tied == ("7", "8")
    assert selection.index == vote.index == 0
    assert selection.tied == (0, 1)
    assert selection.ranking == (0, 1, 5)
    assert selection.scores == (2.0, 2.0, 0.0, 2.0, 2.0, 1.0)
    assert selection_credit(selection, pool) == 0.5
    assert select_majority([Candidate(text="", answer=None)]).index is None


def test_it_wraps_select_first() -> None:
    pool = [Candidate(text="hmm"), Candidate(text="3", answer="3"), Candidate(text="4", answer="4")]
    assert select_first_candidate(pool).index == 0
    selection = select_first_candidate(pool, FirstConfig(require_answer=True))
    assert (selection.index, selection.answer, selection.tied) == (1, "3", (1,))
    assert selection.ranking == (1, 2)
    assert select_first_candidate([]).index is None


def test_it_picks_a_random_candidate_reproducibly() -> None:
    pool = _pool()
    first = select_random(pool, rng=np.random.default_rng(7))
    assert first == select_random(pool, rng=np.random.default_rng(7))
    assert select_random(pool) == select_random(pool)  # seeded from config.seed
    assert first.tied == (first.index,)
    picks = {select_random(pool, rng=np.random.default_rng(s)).index for s in range(200)}
    assert picks == set(range(len(pool)))
    seeds = {select_random(pool, RandomConfig(seed=s)).index for s in range(200)}
    assert seeds == set(range(len(pool)))


def test_it_picks_a_random_candidate_uniformly() -> None:
    rng = np.random.default_rng(0)
    pool = _pool()
    picks = [select_random(pool, rng=rng).index for _ in range(6000)]
    counts = np.bincount([index for index in picks if index is not None])
    assert np.all(np.abs(counts - 1000) < 150)


def test_it_picks_randomly_among_answers_only_when_asked() -> None:
    pool = _pool()
    config = RandomConfig(require_answer=True)
    picks = {select_random(pool, config, rng=np.random.default_rng(s)).index for s in range(100)}
    assert 2 not in picks
    nothing = [Candidate(text="", answer=None)]
    assert select_random(nothing, config).index is None


def test_it_rejects_bad_random_configs() -> None:
    with pytest.raises(ValueError, match="seed"):
        RandomConfig(seed=-1)
    with pytest.raises(ValueError, match="require_answer"):
        RandomConfig(require_answer=1)  # type: ignore[arg-type]


def test_it_lets_the_oracle_pick_a_correct_candidate() -> None:
    pool = _pool()
    selection = select_oracle(pool)
    assert selection.index == 1
    assert selection_credit(selection, pool) == 1.0
    wrong = [Candidate(text="", answer="1", is_correct=False)] * 2
    assert select_oracle(wrong).index == 0
    assert selection_credit(select_oracle(wrong), wrong) == 0.0
    assert select_oracle([]).index is None
    with pytest.raises(ValueError, match="is_correct"):
        select_oracle([Candidate(text="", answer="1")])


def test_it_gives_every_selector_the_same_interface() -> None:
    pool = _pool()
    matrix = np.array([[1, 0], [1, 1], [0, 0], [1, 1], [1, 0], [0, 1]])
    for entry in ENTRIES:
        assert entry.kind == "selector"
        extra = {"matrix": matrix} if entry.name in ("codet", "b4") else {}
        selection = entry.function(
            pool, entry.config_class(), rng=np.random.default_rng(0), **extra
        )
        assert isinstance(selection, Selection), entry.name
        assert selection.index is not None, entry.name
        assert selection.index in selection.tied, entry.name
        assert selection.ranking[0] == selection.index, entry.name
        assert selection.answer == pool[selection.index].answer, entry.name
        if selection.scores is not None:
            assert len(selection.scores) == len(pool), entry.name
        credit = selection_credit(selection, pool)
        assert credit is not None and 0.0 <= credit <= 1.0, entry.name
        empty = entry.function([], None, **({"matrix": np.zeros((0, 2))} if extra else {}))
        assert (empty.index, empty.tied) == (None, ()), entry.name


def test_it_registers_the_selectors() -> None:
    names = {entry.name for entry in ENTRIES}
    assert names == {
        "first",
        "majority",
        "random",
        "weighted_majority",
        "lowest_perplexity",
        "rpc",
        "best_of_n",
        "best_of_majority",
        "mbr",
        "oracle",
        "codet",
        "b4",
        "adaptive_consistency",
    }


@pytest.mark.parametrize("exact", [False, True])
def test_grouping_the_distinct_answers_groups_them_all(exact: bool) -> None:
    # The metrics stage groups each problem's distinct answers once and spreads the ids.
    answers = ["7", "x = 7", None, "8", "7.0", "8", r"\frac{14}{2}", "", "x = 7", "9", "7"]
    distinct = list(dict.fromkeys(a for a in answers if a is not None))
    ids = dict(zip(distinct, answer_groups_of(distinct, exact=exact)[0].tolist(), strict=True))
    spread = [-1 if a is None else ids[a] for a in answers]
    assert answer_groups_of(answers, exact=exact)[0].tolist() == spread
    assert len(set(spread)) > 3
