"""Math answer verification: extract, normalise and compare with the gold (ALGORITHMS §17)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from strategies.verify.extract import extract_answer, last_boxed
from strategies.verify.normalize import canonical_answer, normalize_answer, parse_number

__all__ = [
    "MathAnswerConfig",
    "canonical_answer",
    "extract_answer",
    "is_equivalent",
    "last_boxed",
    "normalize_answer",
    "parse_number",
    "verify_math",
]

#: Absolute tolerance of the lenient (DeepSeek/Qwen evaluator) mode.
LENIENT_ABS_TOL = 1e-3


@dataclass(frozen=True, kw_only=True)
class MathAnswerConfig:
    """Settings of the math verifier; ``lenient`` accepts gold*100, gold/100 and abs 1e-3."""

    lenient: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.lenient, bool):
            raise ValueError(f"lenient must be a bool, got {self.lenient!r}")


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
) -> bool:
    r"""True when ``pred`` and ``gold`` are the same answer; ``None`` equals nothing.

    First the normalised strings are compared, then the numeric values (exact rationals
    for ``a/b`` and ``\frac{a}{b}``; thousands separators allowed; ``%`` means /100),
    equal when ``|x - y| <= max(rel * max(|x|, |y|), abs_tol)``. ``lenient`` (off by
    default) widens ``abs_tol`` to 1e-3 and also accepts ``gold * 100`` and ``gold / 100``.

    >>> is_equivalent("18.0", "18"), is_equivalent("1/2", r"\frac{1}{2}")
    (True, True)
    >>> is_equivalent("50", "0.5"), is_equivalent("50", "0.5", lenient=True)
    (False, True)
    >>> is_equivalent(None, None)
    False
    """
    if rel < 0 or abs_tol < 0:
        raise ValueError(f"rel and abs_tol must be >= 0, got rel={rel!r}, abs_tol={abs_tol!r}")
    if pred is None or gold is None:
        return False
    normal_pred = normalize_answer(pred)
    if normal_pred and normal_pred == normalize_answer(gold):
        return True
    x, y = parse_number(pred), parse_number(gold)
    if x is None or y is None:
        return False
    if not lenient:
        return _is_close(x, y, rel, abs_tol)
    tolerance = max(abs_tol, LENIENT_ABS_TOL)
    return any(_is_close(x, target, rel, tolerance) for target in (y, y * 100, y / 100))


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
    return answer, is_equivalent(answer, _gold_answer(gold), lenient=config.lenient)
