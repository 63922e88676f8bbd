"""Generative self-evaluation scores from a double scorer's yes/no log-probabilities (§12a)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from strategies.verify.self_eval import (
    SelfEvalConfig,
    render_self_eval,
    self_eval_score,
    self_eval_scores,
)


class DoubleScorer:
    """Returns fixed (logP(yes), logP(no)) pairs in order and records its calls."""

    def __init__(self, pairs: list[tuple[float, float]]) -> None:
        self.pairs = pairs
        self.calls: list[tuple[list[str], tuple[str, ...], tuple[str, ...]]] = []

    def __call__(
        self, prompts: Sequence[str], *, yes: Sequence[str], no: Sequence[str]
    ) -> list[tuple[float, float]]:
        self.calls.append((list(prompts), tuple(yes), tuple(no)))
        return self.pairs[: len(prompts)]


def lse(*probs: float) -> float:
    """logsumexp of log-probabilities, i.e. the log of the summed probabilities."""
    return math.log(sum(probs))


def test_it_scores_p_no_over_p_yes_plus_p_no() -> None:
    # P(" Yes") + P("Yes") = 0.1 + 0.1; P(" No") + P("No") = 0.5 + 0.1
    scorer = DoubleScorer(
        [
            (lse(0.1, 0.1), lse(0.5, 0.1)),
            (math.log(0.3), math.log(0.1)),
            (math.log(1e-30), math.log(0.2)),
            (-math.inf, -math.inf),
        ]
    )
    scores = self_eval_scores(scorer, ["p1", "p2", "p3", "p4"], ["r1", "r2", "r3", "r4"])
    assert scores == pytest.approx([0.75, 0.25, 1.0, 0.5])
    prompts, yes, no = scorer.calls[0]
    assert len(scorer.calls) == 1  # one batched forward pass
    assert yes == ("Yes", " Yes") and no == ("No", " No")  # leading-space variants
    assert prompts[1] == render_self_eval("p2", "r2")


def test_it_is_numerically_stable_for_tiny_probabilities() -> None:
    assert self_eval_score(-1000.0, -1001.0) == pytest.approx(1 / (1 + math.e))
    assert self_eval_score(-800.0, -10.0) == pytest.approx(1.0)


def test_it_renders_the_question_after_the_response() -> None:
    prompt = render_self_eval("What is 2 + 2?", "It is 4.")
    assert prompt.index("What is 2 + 2?") < prompt.index("It is 4.") < prompt.index("Yes or No")
    custom = SelfEvalConfig(question="Start over? Yes or No.", yes=("yes",), no=("no",))
    assert render_self_eval("q", "r", custom).endswith("Start over? Yes or No.")


def test_it_checks_its_inputs() -> None:
    scorer = DoubleScorer([(0.0, 0.0)])
    assert self_eval_scores(scorer, [], []) == []
    with pytest.raises(ValueError, match="same length"):
        self_eval_scores(scorer, ["a"], [])
    with pytest.raises(ValueError, match="scorer returned"):
        self_eval_scores(scorer, ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match="yes"):
        SelfEvalConfig(yes=())
    with pytest.raises(ValueError, match="share"):
        SelfEvalConfig(yes=("Yes",), no=("Yes",))
