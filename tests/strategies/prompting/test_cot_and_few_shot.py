"""Chain-of-thought and few-shot prompt builders."""

from __future__ import annotations

import pytest

from strategies.prompting.chain_of_thought import (
    COT_INSTRUCTION,
    ChainOfThoughtConfig,
    render_chain_of_thought,
)
from strategies.prompting.few_shot import ARITHMETIC_EXAMPLES, FewShotConfig, render_few_shot
from strategies.types import Problem
from strategies.verify.extract import extract_answer

PROBLEM = Problem(prompt="What is 3 + 4?", answer="7")


def test_it_appends_the_step_by_step_instruction() -> None:
    assert render_chain_of_thought(PROBLEM) == f"What is 3 + 4?\n\n{COT_INSTRUCTION}"
    assert "The answer is" in COT_INSTRUCTION


def test_it_can_put_the_instruction_first() -> None:
    config = ChainOfThoughtConfig(instruction="Reason first.", position="before")
    assert render_chain_of_thought(PROBLEM, config) == "Reason first.\n\nWhat is 3 + 4?"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"instruction": " "}, "instruction"), ({"position": "middle"}, "position")],
)
def test_it_rejects_a_bad_cot_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ChainOfThoughtConfig(**kwargs)  # type: ignore[arg-type]


def test_it_shows_the_first_k_examples_then_the_problem() -> None:
    prompt = render_few_shot(PROBLEM, FewShotConfig(k=2))
    blocks = prompt.split("\n\n")
    assert len(blocks) == 3
    assert (
        blocks[0] == f"Question: {ARITHMETIC_EXAMPLES[0][0]}\nAnswer: {ARITHMETIC_EXAMPLES[0][1]}"
    )
    assert blocks[-1] == "Question: What is 3 + 4?\nAnswer:"


def test_it_uses_arithmetic_examples_the_verifier_can_read() -> None:
    assert len(ARITHMETIC_EXAMPLES) >= 3
    for question, answer in ARITHMETIC_EXAMPLES:
        assert question.endswith("?")
        assert extract_answer(answer) is not None


def test_it_accepts_zero_shots_and_custom_labels() -> None:
    config = FewShotConfig(examples=(("1+1", "2"),), k=0, question_label="Q", answer_label="A")
    assert render_few_shot(PROBLEM, config) == "Q: What is 3 + 4?\nA:"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 99}, "k"),
        ({"k": -1}, "k"),
        ({"examples": (("q", ""),)}, "examples"),
        ({"examples": [("q", "a")]}, "examples"),
        ({"answer_label": ""}, "answer_label"),
    ],
)
def test_it_rejects_a_bad_few_shot_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FewShotConfig(**kwargs)  # type: ignore[arg-type]
