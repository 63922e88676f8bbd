"""LLM-as-judge: the verdict parser on hand outputs, and the vote over a double generator."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from strategies.types import Candidate
from strategies.verify.judge import (
    JudgeConfig,
    JudgeVerdict,
    judge_responses,
    parse_verdict,
    render_judge_prompt,
)


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("The steps are right.\nVERDICT: correct", JudgeVerdict(True, None)),
        ("VERDICT: incorrect\nSCORE: 2/10", JudgeVerdict(False, 2.0)),
        ("**Verdict:** Correct\n**Score:** 9/10", JudgeVerdict(True, 9.0)),
        ("Verdict - INCORRECT", JudgeVerdict(False, None)),
        ("Verdict: not correct", JudgeVerdict(False, None)),
        ("verdict is correct", JudgeVerdict(True, None)),
        ("VERDICT: correct ... wait, VERDICT: incorrect", JudgeVerdict(False, None)),
        ("Score: 8/10", JudgeVerdict(True, 8.0)),
        ("Rating: 6 out of 10", JudgeVerdict(False, 6.0)),
        ("I'd give it [[7]].", JudgeVerdict(True, 7.0)),
        ("Overall 9/10.", JudgeVerdict(True, 9.0)),
        ("Score: 42", JudgeVerdict(None, None)),  # out of range: ignored
        ("The response is incorrect.", JudgeVerdict(False, None)),
        ("This looks correct to me.", JudgeVerdict(True, None)),
        ("I am not sure.", JudgeVerdict(None, None)),
        ("", JudgeVerdict(None, None)),
    ],
)
def test_it_parses_verdicts(text: str, verdict: JudgeVerdict) -> None:
    assert parse_verdict(text) == verdict


def test_it_uses_the_pass_score_for_score_only_replies() -> None:
    assert parse_verdict("Score: 6/10", pass_score=6).passed is True
    assert parse_verdict("Score: 6/10", pass_score=6.5).passed is False


def test_it_renders_a_grading_prompt() -> None:
    prompt = render_judge_prompt("What is 2 + 2?", "5", "4")
    assert "What is 2 + 2?" in prompt and "Response:\n5" in prompt
    assert "Reference answer:\n4" in prompt and "VERDICT: correct" in prompt
    assert "Reference" not in render_judge_prompt("q", "r", None)
    assert "Reference" not in render_judge_prompt("q", "r", "4", JudgeConfig(show_reference=False))


class DoubleGenerator:
    """Answers the i-th prompt with the scripted replies ``script[i]``; records its calls."""

    def __init__(self, script: list[list[str]]) -> None:
        self.script = script
        self.calls: list[dict[str, object]] = []

    def __call__(
        self, prompts: Sequence[str], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[Candidate]]:
        self.calls.append(
            {"prompts": list(prompts), "n": n, "temperature": temperature, "seed": seed}
        )
        return [[Candidate(text) for text in self.script[i][:n]] for i in range(len(prompts))]


def test_it_takes_the_majority_of_n_judge_samples() -> None:
    generator = DoubleGenerator(
        [
            ["VERDICT: correct", "VERDICT: incorrect", "VERDICT: correct"],
            ["VERDICT: incorrect", "garbage", "SCORE: 3/10"],
            ["no idea", "still no idea", "hmm"],
            ["VERDICT: correct\nSCORE: 8/10", "VERDICT: incorrect\nSCORE: 9/10", "?"],
        ]
    )
    results = judge_responses(
        generator,
        ["p1", "p2", "p3", "p4"],
        ["r1", "r2", "r3", "r4"],
        ["g", None, "g", "g"],
        JudgeConfig(n=3),
        seed=5,
    )
    assert [r.passed for r in results] == [True, False, None, True]  # last: tie, mean 8.5 >= 7
    assert [r.score for r in results] == pytest.approx([2 / 3, 0.0, None, 0.5])
    assert results[0].detail.startswith("2 of 3 judge samples say correct")
    assert all(r.answer is None for r in results)
    call = generator.calls[0]
    assert (call["n"], call["temperature"], call["seed"]) == (3, 0.0, 5)
    assert len(call["prompts"]) == 4  # type: ignore[arg-type]


def test_it_defaults_to_one_greedy_judge_sample() -> None:
    generator = DoubleGenerator([["VERDICT: correct"]])
    assert judge_responses(generator, ["p"], ["r"], ["g"])[0].passed is True
    assert generator.calls[0]["n"] == 1 and generator.calls[0]["temperature"] == 0.0
    assert judge_responses(generator, [], [], []) == []
    with pytest.raises(ValueError, match="same length"):
        judge_responses(generator, ["p"], [], [])
    with pytest.raises(ValueError, match="pass_score"):
        JudgeConfig(pass_score=11)
