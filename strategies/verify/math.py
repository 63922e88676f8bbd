"""Math answer verification: extract, normalise and compare with the gold (ALGORITHMS §17).

Extraction (``extract_answer``) and equivalence (``is_equivalent``) are separate steps;
this module joins them into the ``math`` verifier. A reference that is a choice letter
or yes/no goes to the short-answer path (``short_text``) and never meets the symbolic
parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.verify.equivalence import (  # _equivalent: the pairwise cache
    LENIENT_ABS_TOL,
    _equivalent,  # noqa: F401
    is_equivalent,
)
from strategies.verify.extract import extract_answer, last_boxed
from strategies.verify.normalize import normalize_answer, parse_number
from strategies.verify.result import VerifierResult
from strategies.verify.short_text import reference_kind, verify_short_answer
from strategies.verify.structure import canonical_answer

__all__ = [
    "LENIENT_ABS_TOL",
    "MathAnswerConfig",
    "canonical_answer",
    "extract_answer",
    "is_equivalent",
    "last_boxed",
    "normalize_answer",
    "parse_number",
    "verify_math",
    "verify_math_result",
]


@dataclass(frozen=True, kw_only=True)
class MathAnswerConfig:
    """Settings of the math verifier; ``lenient`` accepts gold*100, gold/100 and abs 1e-3.

    ``symbolic`` enables the math-verify step for answers that are not plain numbers.
    """

    lenient: bool = False
    symbolic: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.lenient, bool):
            raise ValueError(f"lenient must be a bool, got {self.lenient!r}")
        if not isinstance(self.symbolic, bool):
            raise ValueError(f"symbolic must be a bool, got {self.symbolic!r}")


def _gold_answer(gold: str) -> str:
    """Take the part after ``####`` when given a whole GSM8K solution as the gold."""
    if "####" not in gold:
        return gold.strip()
    return gold.rsplit("####", 1)[1].replace(",", "").replace("$", "").strip().rstrip(".")


def verify_math(
    candidate_text: str, gold: str | None, config: MathAnswerConfig | None = None
) -> tuple[str | None, bool]:
    """Return ``(extracted answer, is correct)`` for one completion against the gold answer.

    A missing gold answer, or a completion without an answer, is never correct.

    >>> verify_math("4 + 5 = 9. The answer is 9.", "9")
    ('9', True)
    >>> verify_math("First 10... no: the total is $\\\\boxed{12}$.", "12")
    ('12', True)
    >>> verify_math("no idea", "9")
    (None, False)
    """
    config = config or MathAnswerConfig()
    if gold is not None and reference_kind(_gold_answer(gold)) is not None:
        result = verify_short_answer(candidate_text, _gold_answer(gold))
        return result.answer, bool(result.passed)
    answer = extract_answer(candidate_text)
    if gold is None:
        return answer, False
    return answer, is_equivalent(
        answer, _gold_answer(gold), lenient=config.lenient, symbolic=config.symbolic
    )


def verify_math_result(
    text: str, reference: str, config: MathAnswerConfig | None = None
) -> VerifierResult:
    """The math verifier in the uniform shape: extracted answer, verdict, 0/1 score, detail.

    >>> verify_math_result("So 2 + 2 = 4. The answer is 4.", "4")
    VerifierResult(answer='4', passed=True, score=1.0, detail='equivalent to the reference')
    """
    answer, passed = verify_math(text, reference, config)
    if answer is None:
        detail = "no answer found"
    else:
        detail = "equivalent to the reference" if passed else "differs from the reference"
    return VerifierResult(answer=answer, passed=passed, score=float(passed), detail=detail)
