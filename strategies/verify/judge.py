"""LLM-as-judge with the local model: a grading prompt, a robust verdict parser, a vote."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from strategies.types import Generator
from strategies.verify.result import VerifierResult

__all__ = ["JudgeConfig", "JudgeVerdict", "judge_responses", "parse_verdict", "render_judge_prompt"]

_PROMPT = (
    "You are grading a response to a problem.\n\nProblem:\n{problem}\n\n{reference}"
    "Response:\n{response}\n\nDecide whether the response correctly and fully solves the "
    "problem{against}. Explain briefly, then end with exactly one line of the form "
    "'VERDICT: correct' or 'VERDICT: incorrect', followed by a line 'SCORE: n/10' where n "
    "is from 1 (wrong) to 10 (perfect)."
)
_VERDICT = re.compile(
    r"verdict\W{0,4}(?:is\W{0,3})?(not\s+correct|incorrect|correct|wrong|right|pass|fail"
    r"|yes|no)\b",
    re.IGNORECASE,
)
_SCORE = re.compile(
    r"(?:score|rating|grade)\W{0,4}(?:is\W{0,3})?(\d+(?:\.\d+)?)\s*(?:/\s*10|out\s+of\s+10)?"
    r"|\[\[(\d+(?:\.\d+)?)\]\]|\b(\d+(?:\.\d+)?)\s*(?:/\s*10|out\s+of\s+10)\b",
    re.IGNORECASE,
)
_LOOSE = re.compile(r"\b(not\s+correct|incorrect|correct)\b", re.IGNORECASE)
_POSITIVE = frozenset({"correct", "right", "pass", "yes"})


@dataclass(frozen=True, kw_only=True)
class JudgeConfig:
    """Judge samples (majority of ``n``), decoding, and the score that counts as a pass."""

    n: int = 1
    temperature: float = 0.0
    max_new_tokens: int = 256
    pass_score: float = 7.0
    show_reference: bool = True

    def __post_init__(self) -> None:
        for name in ("n", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 1 <= self.pass_score <= 10:
            raise ValueError(f"pass_score must be between 1 and 10, got {self.pass_score!r}")
        if not isinstance(self.show_reference, bool):
            raise ValueError(f"show_reference must be a bool, got {self.show_reference!r}")


@dataclass(frozen=True)
class JudgeVerdict:
    """One judge reply read: the verdict (``None`` if absent) and the 1-10 score if any."""

    passed: bool | None
    score: float | None


def render_judge_prompt(
    problem: str, response: str, reference: str | None, config: JudgeConfig | None = None
) -> str:
    """Return the grading prompt (with the reference answer when given and enabled).

    >>> "Reference answer:\\n4" in render_judge_prompt("2 + 2?", "4", "4")
    True
    """
    config = config or JudgeConfig()
    shown = reference is not None and config.show_reference and bool(reference.strip())
    return _PROMPT.format(
        problem=problem.strip(),
        response=response.strip(),
        reference=f"Reference answer:\n{(reference or '').strip()}\n\n" if shown else "",
        against=" (compare it with the reference answer)" if shown else "",
    )


def parse_verdict(text: str, pass_score: float = 7.0) -> JudgeVerdict:
    """Read a judge's reply: the last "VERDICT: ..." line, else the score, else loose words.

    A 1-10 score (``SCORE: 8/10``, ``Rating: 8 out of 10``, ``[[8]]``) decides when no
    verdict is given: ``passed = score >= pass_score``.

    >>> parse_verdict("Looks fine.\\nVERDICT: Correct\\nSCORE: 9/10")
    JudgeVerdict(passed=True, score=9.0)
    >>> parse_verdict("**Verdict:** incorrect"), parse_verdict("Rating: 3 out of 10")
    (JudgeVerdict(passed=False, score=None), JudgeVerdict(passed=False, score=3.0))
    >>> parse_verdict("I cannot tell.")
    JudgeVerdict(passed=None, score=None)
    """
    scores = []
    for match in _SCORE.finditer(text):
        value = float(next(group for group in match.groups() if group is not None))
        if 1 <= value <= 10:
            scores.append(value)
    score = scores[-1] if scores else None
    verdicts = _VERDICT.findall(text)
    if verdicts:
        word = " ".join(verdicts[-1].lower().split())
        return JudgeVerdict(passed=word in _POSITIVE, score=score)
    if score is not None:
        return JudgeVerdict(passed=score >= pass_score, score=score)
    loose = _LOOSE.findall(text)
    if loose:
        return JudgeVerdict(passed=loose[-1].lower() == "correct", score=None)
    return JudgeVerdict(passed=None, score=None)


def _vote(verdicts: Sequence[JudgeVerdict], pass_score: float) -> VerifierResult:
    """Majority over the judge samples that gave a verdict; a tie goes by the mean score."""
    votes = [v.passed for v in verdicts if v.passed is not None]
    scores = [v.score for v in verdicts if v.score is not None]
    yes, no = votes.count(True), votes.count(False)
    mean_score = sum(scores) / len(scores) if scores else None
    if yes != no:
        passed: bool | None = yes > no
    else:
        passed = None if mean_score is None or not votes else mean_score >= pass_score
    fraction = yes / len(votes) if votes else None
    detail = f"{yes} of {len(verdicts)} judge samples say correct, {no} incorrect"
    if mean_score is not None:
        detail += f"; mean score {mean_score:g}/10"
    return VerifierResult(answer=None, passed=passed, score=fraction, detail=detail)


def judge_responses(
    generator: Generator,
    problems: Sequence[str],
    responses: Sequence[str],
    references: Sequence[str | None],
    config: JudgeConfig | None = None,
    *,
    seed: int = 0,
) -> list[VerifierResult]:
    """Judge each response with ``n`` samples of the local model (one batched call).

    ``passed`` is the majority verdict (``None`` when no sample gave one), ``score`` the
    fraction of deciding samples that said correct.
    """
    config = config or JudgeConfig()
    if not len(problems) == len(responses) == len(references):
        raise ValueError("problems, responses and references must have the same length")
    if not problems:
        return []
    prompts = [
        render_judge_prompt(p, r, g, config)
        for p, r, g in zip(problems, responses, references, strict=True)
    ]
    rows = generator(
        prompts,
        n=config.n,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=seed,
    )
    return [
        _vote([parse_verdict(c.text, config.pass_score) for c in row], config.pass_score)
        for row in rows
    ]
