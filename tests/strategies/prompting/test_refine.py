"""Iterative Agent Decoding over a scripted generator and verifier (§13)."""

from __future__ import annotations

import pytest

from strategies.prompting.refine import RefineConfig, refine, render_refine_prompt
from strategies.types import Candidate
from tests.strategies.prompting.doubles import Call, ScriptedGenerator

TASK = "Write a function that reverses a string."
# call (iteration) -> the texts sampled in it, and every text's score
SCRIPT = [["a0", "a1"], ["b0", "b1"], ["c0", "c1"], ["d0", "d1"]]
SCORES = {"a0": 0.2, "a1": 0.5, "b0": 0.1, "b1": 0.3, "c0": 0.9, "c1": 0.4, "d0": 0.6, "d1": 0.0}


def scripted(script: list[list[str]]) -> ScriptedGenerator:
    def reply(prompt: str, index: int, call: Call) -> str:
        return script[call.seed][index]  # refine seeds its iterations 0, 1, 2, ...

    return ScriptedGenerator(reply)


def verifier(candidate: Candidate) -> tuple[float, str]:
    return SCORES[candidate.text], f"critique of {candidate.text}"


def test_it_keeps_the_global_best_and_spends_n_times_t_plus_one() -> None:
    generator = scripted(SCRIPT)
    config = RefineConfig(n=2, iterations=3, r_max=None, temperature=0.5, max_new_tokens=64)
    result = refine(generator, TASK, verifier, config)
    assert result.samples == 2 * (3 + 1)
    assert [[c.text for c in batch] for batch in result.iterations] == SCRIPT
    assert [c.score for c in result.iterations[1]] == [0.1, 0.3]
    assert result.best.text == "c0" and result.best.score == 0.9  # d0 (0.6) is no regression
    assert [(c.n, c.temperature, c.max_new_tokens) for c in generator.calls] == [(2, 0.5, 64)] * 4
    prompts = [call.prompts[0] for call in generator.calls]
    assert prompts[0] == TASK
    assert "best response so far (score 0.5):\na1" in prompts[1]
    assert "weaker recent response (score 0.2):\na0" in prompts[1]
    assert "critique of a0" in prompts[1]
    # iteration 2: the best is still a1 (b1 = 0.3 < 0.5); the worst *recent* one is b0.
    assert "(score 0.5):\na1" in prompts[2] and "(score 0.1):\nb0" in prompts[2]
    assert "(score 0.9):\nc0" in prompts[3] and "(score 0.4):\nc1" in prompts[3]


def test_it_never_regresses_when_later_batches_are_worse() -> None:
    result = refine(
        scripted([["c0", "a0"], ["b0", "d1"]]), TASK, verifier, RefineConfig(n=2, iterations=1)
    )
    assert result.best.text == "c0"


def test_it_exits_early_at_r_max() -> None:
    generator = scripted(SCRIPT)
    result = refine(generator, TASK, verifier, RefineConfig(n=2, iterations=3, r_max=0.85))
    assert len(generator.calls) == 3  # c0 (0.9) reaches r_max in iteration 2
    assert result.samples == 6 and result.best.text == "c0"


def test_it_withholds_feedback_in_the_ablation() -> None:
    generator = scripted(SCRIPT)
    result = refine(generator, TASK, verifier, RefineConfig(n=2, iterations=3, feedback=False))
    assert [call.prompts[0] for call in generator.calls] == [TASK] * 4
    assert result.samples == 8 and result.best.text == "c0"


def test_it_can_leave_the_critique_out() -> None:
    generator = scripted(SCRIPT)
    refine(generator, TASK, verifier, RefineConfig(n=2, iterations=1, critique=False))
    assert "critique of" not in generator.calls[1].prompts[0]
    assert "Feedback on" not in render_refine_prompt(TASK, Candidate("x"), Candidate("y"), "  ")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n": 0}, "n"), ({"iterations": -1}, "iterations"), ({"feedback": 1}, "feedback")],
)
def test_it_rejects_a_bad_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RefineConfig(**kwargs)  # type: ignore[arg-type]
