"""Generative self-evaluation (ALGORITHMS §12a): would the model do better starting over?

The model sees the problem and a (partial or full) response and is asked whether it
would do better if it started over, answering Yes or No. One forward pass gives the
next-token log-probabilities of "Yes" and "No" (each a logsumexp over spellings with and
without a leading space); the score is ``s = P(No) / (P(Yes) + P(No))``, the chance that
resampling would not give a better answer. Off the shelf (not fine-tuned) it is a heuristic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.types import YesNoScorer

__all__ = ["SelfEvalConfig", "render_self_eval", "self_eval_score", "self_eval_scores"]

SELF_EVAL_QUESTION = (
    "Look at the response above. If you started over from scratch, would you be likely to "
    "write a better response than this one? Answer with a single word: Yes or No."
)


@dataclass(frozen=True, kw_only=True)
class SelfEvalConfig:
    """The question asked after the response and the token spellings of yes and no."""

    question: str = SELF_EVAL_QUESTION
    yes: tuple[str, ...] = ("Yes", " Yes")
    no: tuple[str, ...] = ("No", " No")

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"question must be a non-empty string, got {self.question!r}")
        for name in ("yes", "no"):
            value = getattr(self, name)
            if (
                not isinstance(value, tuple)
                or not value
                or not all(isinstance(v, str) and v for v in value)
            ):
                raise ValueError(f"{name} must be a non-empty tuple of strings, got {value!r}")
        if set(self.yes) & set(self.no):
            raise ValueError("yes and no must not share a spelling")


def render_self_eval(problem: str, response: str, config: SelfEvalConfig | None = None) -> str:
    """Return the self-evaluation prompt: the problem, the response, then the question.

    >>> render_self_eval("What is 2 + 2?", "4").endswith("Answer with a single word: Yes or No.")
    True
    """
    config = config or SelfEvalConfig()
    return (
        f"Problem:\n{problem.strip()}\n\nResponse:\n{response.strip()}\n\n{config.question.strip()}"
    )


def self_eval_score(log_yes: float, log_no: float) -> float:
    """Return ``P(No) / (P(Yes) + P(No))`` from two log-probabilities (0.5 when both are -inf).

    >>> round(self_eval_score(float(np.log(0.2)), float(np.log(0.6))), 6)
    0.75
    """
    return float(_scores(np.array([log_yes]), np.array([log_no]))[0])


def _scores(log_yes: np.ndarray, log_no: np.ndarray) -> np.ndarray:
    """Vectorised ``exp(log_no - logaddexp(log_yes, log_no))``, 0.5 where undefined."""
    with np.errstate(invalid="ignore"):
        scores = np.exp(log_no - np.logaddexp(log_yes, log_no))
    return np.where(np.isnan(scores), 0.5, scores)


def self_eval_scores(
    scorer: YesNoScorer,
    problems: Sequence[str],
    responses: Sequence[str],
    config: SelfEvalConfig | None = None,
) -> list[float]:
    """Return one self-evaluation score in [0, 1] per (problem, response), in one scorer call.

    Higher means the model expects no better answer from starting over; pick the argmax
    for best-of-N, or stop sampling once the best score passes a threshold.
    """
    config = config or SelfEvalConfig()
    if len(problems) != len(responses):
        raise ValueError(
            f"problems and responses must have the same length, got {len(problems)} "
            f"and {len(responses)}"
        )
    if not problems:
        return []
    prompts = [render_self_eval(p, r, config) for p, r in zip(problems, responses, strict=True)]
    pairs = scorer(prompts, yes=config.yes, no=config.no)
    if len(pairs) != len(prompts):
        raise ValueError(f"scorer returned {len(pairs)} pairs for {len(prompts)} prompts")
    log_probs = np.array(pairs, dtype=float).reshape(len(prompts), 2)
    return [float(s) for s in _scores(log_probs[:, 0], log_probs[:, 1])]
