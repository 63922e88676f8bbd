"""Math answer verification: extract, normalise and compare with the gold (ALGORITHMS §17)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

from strategies.verify.extract import extract_answer, last_boxed
from strategies.verify.normalize import canonical_answer, normalize_answer, parse_number
from strategies.verify.result import VerifierResult
from strategies.verify.structure import structural_equal
from strategies.verify.symbolic import symbolic_equal

__all__ = [
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

#: Absolute tolerance of the lenient (DeepSeek/Qwen evaluator) mode.
LENIENT_ABS_TOL = 1e-3


@dataclass(frozen=True, kw_only=True)
class MathAnswerConfig:
    """Settings of the math verifier; ``lenient`` accepts gold*100, gold/100 and abs 1e-3.

    ``symbolic`` enables the sympy step for answers that are not plain numbers.
    """

    lenient: bool = False
    symbolic: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.lenient, bool):
            raise ValueError(f"lenient must be a bool, got {self.lenient!r}")
        if not isinstance(self.symbolic, bool):
            raise ValueError(f"symbolic must be a bool, got {self.symbolic!r}")


def _is_close(x: Fraction, y: Fraction, rel: float, abs_tol: float) -> bool:
    """True when ``|x - y| <= max(rel * max(|x|, |y|), abs_tol)``, computed exactly."""
    bound = max(Fraction(rel) * max(abs(x), abs(y)), Fraction(abs_tol))
    return abs(x - y) <= bound


def is_equivalent(
    pred: str | None,
    gold: str | None,
    *,
    rel: float = 1e-6,
    abs_tol: float = 1e-9,
    lenient: bool = False,
    symbolic: bool = True,
) -> bool:
    r"""True when ``pred`` and ``gold`` are the same answer; ``None`` equals nothing.

    Tried in order (ALGORITHMS §17), stopping at the first that decides:
    the normalised strings; the numeric values when both are numbers (exact rationals
    for ``a/b`` and ``\frac{a}{b}``; thousands separators allowed; ``%`` means /100),
    equal when ``|x - y| <= max(rel * max(|x|, |y|), abs_tol)``; matrices cell-wise and
    tuples/intervals element-wise; equations as ``lhs - rhs`` up to sign; and, with
    ``symbolic``, sympy (1 s timeout; a timeout is "not equal"). ``lenient`` (off by
    default) widens ``abs_tol`` to 1e-3 and also accepts ``gold * 100`` and ``gold / 100``.
    Results are cached per pair of stripped strings.

    >>> is_equivalent("18.0", "18"), is_equivalent("1/2", r"\frac{1}{2}")
    (True, True)
    >>> is_equivalent("50", "0.5"), is_equivalent("50", "0.5", lenient=True)
    (False, True)
    >>> is_equivalent("(1, 0.5)", r"(1,\frac{1}{2})"), is_equivalent(r"\sqrt{8}", r"2\sqrt{2}")
    (True, True)
    >>> is_equivalent(None, None)
    False
    """
    if rel < 0 or abs_tol < 0:
        raise ValueError(f"rel and abs_tol must be >= 0, got rel={rel!r}, abs_tol={abs_tol!r}")
    if pred is None or gold is None:
        return False
    return _equivalent(pred.strip(), gold.strip(), rel, abs_tol, lenient, symbolic)


@functools.lru_cache(maxsize=65536)
def _equivalent(
    pred: str, gold: str, rel: float, abs_tol: float, lenient: bool, symbolic: bool
) -> bool:
    """The cached body of ``is_equivalent`` (arguments already checked and stripped)."""
    normal_pred, normal_gold = normalize_answer(pred), normalize_answer(gold)
    if not normal_pred or not normal_gold:
        return False
    if normal_pred == normal_gold:
        return True
    x, y = parse_number(pred), parse_number(gold)
    if x is not None and y is not None:
        if not lenient:
            return _is_close(x, y, rel, abs_tol)
        tolerance = max(abs_tol, LENIENT_ABS_TOL)
        return any(_is_close(x, target, rel, tolerance) for target in (y, y * 100, y / 100))

    def equal(a: str, b: str) -> bool:
        return _equivalent(a.strip(), b.strip(), rel, abs_tol, lenient, symbolic)

    def compare_symbolic(a: str, b: str, up_to_sign: bool) -> bool:
        return symbolic_equal(
            normalize_answer(a),
            normalize_answer(b),
            rel=rel,
            abs_tol=abs_tol,
            up_to_sign=up_to_sign,
        )

    structured = structural_equal(pred, gold, equal, compare_symbolic if symbolic else None)
    if structured is not None:
        return structured
    if not symbolic:
        return False
    return symbolic_equal(normal_pred, normal_gold, rel=rel, abs_tol=abs_tol)


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
    >>> verify_math("no idea", "9")
    (None, False)
    """
    config = config or MathAnswerConfig()
    answer = extract_answer(candidate_text)
    if gold is None:
        return answer, False
    gold_answer = _gold_answer(gold)
    return answer, is_equivalent(
        answer, gold_answer, lenient=config.lenient, symbolic=config.symbolic
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
