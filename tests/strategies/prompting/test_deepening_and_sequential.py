"""Iterative deepening and sequential revision at a parallel pool's token budget."""

from __future__ import annotations

import pytest

from strategies.prompting.deepening import TRIGGER, DeepeningConfig, iterative_deepening
from strategies.prompting.sequential import (
    SequentialConfig,
    matched_token_budget,
    sequential_revision,
)
from strategies.types import Candidate
from tests.strategies.prompting.doubles import Call, ScriptedGenerator

TASK = "What is 17 * 3? Give the final answer after 'The answer is'."


def numbered(prompt: str, index: int, call: Call) -> str:
    return f"attempt seed={call.seed} sample={index}"


def test_it_deepens_every_chain_and_keeps_every_round() -> None:
    generator = ScriptedGenerator(numbered)
    chains = iterative_deepening(generator, TASK, DeepeningConfig(rounds=2), n=3, seed=10)
    assert len(chains) == 3 and all(len(chain) == 3 for chain in chains)
    first, *later = generator.calls
    assert (first.prompts, first.n, first.seed) == ((TASK,), 3, 10)
    assert [(len(c.prompts), c.n, c.seed) for c in later] == [(3, 1, 11), (3, 1, 12)]
    assert [c.text for c in chains[1]] == [
        "attempt seed=10 sample=1",
        "attempt seed=11 sample=0",
        "attempt seed=12 sample=0",
    ]
    round_two = later[1].prompts[1]
    assert round_two.startswith(TASK)
    assert "attempt seed=11 sample=0" in round_two and "seed=10" not in round_two  # carry=last
    assert TRIGGER in round_two


def test_it_can_carry_every_attempt() -> None:
    generator = ScriptedGenerator(numbered)
    iterative_deepening(generator, TASK, DeepeningConfig(rounds=2, carry="all"))
    last = generator.calls[-1].prompts[0]
    assert "seed=0" in last and "seed=1" in last
    assert last.count(TRIGGER) == 2  # between the attempts, and the final request


def test_it_makes_one_call_without_rounds() -> None:
    generator = ScriptedGenerator(numbered)
    chains = iterative_deepening(generator, TASK, DeepeningConfig(rounds=0), n=2)
    assert len(generator.calls) == 1 and [len(c) for c in chains] == [1, 1]
    with pytest.raises(ValueError, match="n must"):
        iterative_deepening(generator, TASK, n=0)


def test_it_computes_the_budget_of_a_parallel_pool() -> None:
    pool = [Candidate(text=str(i), generated_tokens=t) for i, t in enumerate([30, 25, 40, 5])]
    assert matched_token_budget(pool) == 100
    assert matched_token_budget([]) == 0


def test_it_spends_exactly_the_matched_budget() -> None:
    pool = [Candidate(text=str(i), generated_tokens=t) for i, t in enumerate([30, 25, 40, 5])]
    budget = matched_token_budget(pool)
    generator = ScriptedGenerator(numbered, tokens=lambda text, call: min(32, call.max_new_tokens))
    chain = sequential_revision(generator, TASK, budget, SequentialConfig(max_new_tokens=32))
    assert [c.generated_tokens for c in chain] == [32, 32, 32, 4]
    assert sum(c.generated_tokens for c in chain) == budget
    assert [call.max_new_tokens for call in generator.calls] == [32, 32, 32, 4]
    assert generator.calls[0].prompts == (TASK,)
    assert chain[1].text in generator.calls[2].prompts[0]  # revises the previous answer
    assert "previous answer" in generator.calls[1].prompts[0]


def test_it_never_overspends_with_short_answers() -> None:
    generator = ScriptedGenerator(numbered, tokens=lambda text, call: min(7, call.max_new_tokens))
    chain = sequential_revision(generator, TASK, 50, SequentialConfig(max_new_tokens=32))
    assert sum(c.generated_tokens for c in chain) == 50
    assert len(chain) == 8  # 7 * 7 + 1


def test_it_stops_on_empty_generations_and_at_the_round_cap() -> None:
    silent = ScriptedGenerator(numbered, tokens=lambda text, call: 0)
    assert len(sequential_revision(silent, TASK, 100)) == 1
    chatty = ScriptedGenerator(numbered, tokens=lambda text, call: 1)
    assert len(sequential_revision(chatty, TASK, 100, SequentialConfig(max_rounds=5))) == 5
    assert sequential_revision(chatty, TASK, 0) == []
    with pytest.raises(ValueError, match="budget_tokens"):
        sequential_revision(chatty, TASK, -1)
    with pytest.raises(ValueError, match="max_rounds"):
        SequentialConfig(max_rounds=0)
    with pytest.raises(ValueError, match="carry"):
        DeepeningConfig(carry="some")
