"""When are two math answers the same? (ALGORITHMS §17, the equivalence check.)

``is_equivalent(pred, gold)`` compares two *extracted* answers; extraction is
``strategies.verify.extract``. Both are first brought to their comparison form
(``normalize.answer_form``) and read into a shape (``structure.parse_structure``); then:

1. equal forms are equal;
2. numbers compare exactly when both are integers or exact fractions, and relatively
   (``rel``, no absolute floor) when one is a written decimal; ``50%`` equals ``50``
   and ``0.5``; ``lenient`` adds the DeepSeek/Qwen evaluator's ``abs_tol = 1e-3`` and
   ``gold*100``/``gold/100``;
3. tuples, points and intervals element by element, in order, with the same brackets;
   matrices cell by cell;
4. equations as ``lhs - rhs`` up to sign;
5. sets, unordered lists, ``\\pm`` pairs and unions of intervals as sets; ``x = 5``,
   ``f(x) = ...`` and ``width = 5`` by their right-hand sides when the names agree (or
   one side has none); a system ``x = 1, y = 2`` against the tuple ``(1, 2)`` in the
   names' order; an inequality as its interval; text answers case-folded;
6. anything else through math-verify (``symbolic``), which may be switched off.

Results are cached per pair of comparison forms (majority voting compares O(N^2) pairs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

from strategies.verify.normalize import NumberValue, answer_form
from strategies.verify.structure import Structure, name_key, parse_structure
from strategies.verify.symbolic import equals_number, is_constant, symbolic_equal

__all__ = ["LENIENT_ABS_TOL", "clear_caches", "is_equivalent", "numbers_equal"]

#: Absolute tolerance of the lenient (DeepSeek/Qwen evaluator) mode.
LENIENT_ABS_TOL = 1e-3

_Equal = Callable[[str, str], bool]


class _Tolerance(NamedTuple):
    """The comparison settings passed down through nested structures."""

    rel: float
    abs_tol: float
    lenient: bool
    symbolic: bool


def is_equivalent(
    pred: str | None,
    gold: str | None,
    *,
    rel: float = 1e-6,
    abs_tol: float = 0.0,
    lenient: bool = False,
    symbolic: bool = True,
) -> bool:
    r"""True when ``pred`` and ``gold`` are the same answer; ``None`` equals nothing.

    See the module docstring for the steps. ``abs_tol`` (0 by default: no absolute
    floor) applies only where a written decimal is involved, as ``rel`` does.

    >>> is_equivalent("18.0", "18"), is_equivalent("1/2", r"\frac{1}{2}")
    (True, True)
    >>> is_equivalent("1000001", "1000000"), is_equivalent("x = 5", "y = 5")
    (False, False)
    >>> is_equivalent("50", "0.5"), is_equivalent("50", "0.5", lenient=True)
    (False, True)
    >>> is_equivalent("(1, 0.5)", r"(1,\frac{1}{2})"), is_equivalent(r"\sqrt{8}", r"2\sqrt{2}")
    (True, True)
    >>> is_equivalent(r"\{3, 1, 2\}", "1, 2, 3"), is_equivalent("x < 3", r"(-\infty, 3)")
    (True, True)
    >>> is_equivalent(None, None)
    False
    """
    if rel < 0 or abs_tol < 0:
        raise ValueError(f"rel and abs_tol must be >= 0, got rel={rel!r}, abs_tol={abs_tol!r}")
    if pred is None or gold is None:
        return False
    a, b = answer_form(pred), answer_form(gold)
    if not a or not b:
        return False
    return _equivalent(a, b, rel, abs_tol, lenient, symbolic)


@functools.lru_cache(maxsize=65536)
def _equivalent(
    pred: str, gold: str, rel: float, abs_tol: float, lenient: bool, symbolic: bool
) -> bool:
    """The cached body of ``is_equivalent``, on two non-empty comparison forms."""
    if pred == gold:
        return True

    def equal(a: str, b: str) -> bool:
        return bool(a and b) and _equivalent(a, b, rel, abs_tol, lenient, symbolic)

    tolerance = _Tolerance(rel, abs_tol, lenient, symbolic)
    result = _compare(parse_structure(pred), parse_structure(gold), equal, tolerance, (pred, gold))
    if result is not None:
        return result
    return symbolic and symbolic_equal(pred, gold)


def numbers_equal(
    x: NumberValue,
    y: NumberValue,
    *,
    rel: float = 1e-6,
    abs_tol: float = 0.0,
    lenient: bool = False,
) -> bool:
    """Compare two numbers: exactly when both are exact, else to ``rel`` (and ``abs_tol``).

    A percentage equals its number and its hundredth (``25%`` is ``25`` and ``0.25``);
    ``lenient`` compares to ``max(rel, 1e-3)`` absolute and also accepts gold*100, gold/100.

    >>> from strategies.verify.normalize import read_number
    >>> numbers_equal(read_number("1000000"), read_number("1000001"))
    False
    >>> numbers_equal(read_number("0.3333333"), read_number("1/3"))
    True
    """
    if x.is_percent and y.is_percent:
        pairs = [(x.value, y.value)]
    else:
        xs = [x.value, x.value / 100] if x.is_percent else [x.value]
        ys = [y.value, y.value / 100] if y.is_percent else [y.value]
        pairs = [(a, b) for a in xs for b in ys]
    if lenient:
        tolerance = max(abs_tol, LENIENT_ABS_TOL)
        return any(
            _close(a, target, rel, tolerance) for a, b in pairs for target in (b, b * 100, b / 100)
        )
    if x.is_exact and y.is_exact:
        return any(a == b for a, b in pairs)
    return any(_close(a, b, rel, abs_tol) for a, b in pairs)


def _close(x: Fraction, y: Fraction, rel: float, abs_tol: float) -> bool:
    """``|x - y| <= max(rel * max(|x|, |y|), abs_tol)``, computed exactly."""
    return abs(x - y) <= max(Fraction(rel) * max(abs(x), abs(y)), Fraction(abs_tol))


def _number_and_expression(
    number: NumberValue, number_form: str, form: str, tol: _Tolerance
) -> bool:
    """Compare a number with an expression: a constant through its value (``\\sqrt{9}`` vs
    3), one with free symbols through math-verify (``\\sin^2 x + \\cos^2 x`` vs 1)."""
    if not is_constant(form):
        return symbolic_equal(form, number_form)
    rel, abs_tol = tol.rel, tol.abs_tol
    values = [number.value, number.value / 100] if number.is_percent else [number.value]
    if tol.lenient:
        tolerance = max(abs_tol, LENIENT_ABS_TOL)
        targets = [t for v in values for t in (v, v * 100, v / 100)]
        return any(
            equals_number(form, t, is_exact=False, rel=rel, abs_tol=tolerance) for t in targets
        )
    return any(
        equals_number(form, v, is_exact=number.is_exact, rel=rel, abs_tol=abs_tol) for v in values
    )


def _sets_equal(xs: tuple[str, ...], ys: tuple[str, ...], equal: _Equal) -> bool:
    """Every element of each side equals some element of the other."""
    return all(any(equal(x, y) for y in ys) for x in xs) and all(
        any(equal(x, y) for x in xs) for y in ys
    )


def _in_order(xs: tuple[str, ...], ys: tuple[str, ...], equal: _Equal) -> bool:
    """Same length, equal element by element."""
    return len(xs) == len(ys) and all(equal(x, y) for x, y in zip(xs, ys, strict=True))


def _form_of(structure: Structure) -> str | None:
    """The form an ``expr`` structure was read from (``None`` for other kinds)."""
    return structure[1] if structure[0] == "expr" else None


def _compare(
    a: Structure, b: Structure, equal: _Equal, tol: _Tolerance, forms: tuple[str, str]
) -> bool | None:
    """Compare two shapes read from ``forms``; ``None`` when only the symbolic step can decide."""
    ka, kb = a[0], b[0]
    if ka == "assign" or kb == "assign":
        if ka == "assign" and kb == "assign":
            return _same_name(a[1], b[1]) and equal(a[2], b[2])
        if kb == "eq":  # y = 3x - 4 against 3x - y = 4: both are equations
            return _compare(("eq", a[1], a[2]), b, equal, tol, forms)
        if ka == "eq":
            return _compare(a, ("eq", b[1], b[2]), equal, tol, forms)
        if ka == "assign":
            return _compare(parse_structure(a[2]), b, equal, tol, (a[2], forms[1]))
        return _compare(a, parse_structure(b[2]), equal, tol, (forms[0], b[2]))
    if ka == "system" or kb == "system":
        return _compare_system(a, b, equal)
    if ka == "number" and kb == "number":
        return numbers_equal(a[1], b[1], rel=tol.rel, abs_tol=tol.abs_tol, lenient=tol.lenient)
    if ka == "number" and kb == "expr":
        return tol.symbolic and _number_and_expression(a[1], forms[0], b[1], tol)
    if ka == "expr" and kb == "number":
        return tol.symbolic and _number_and_expression(b[1], forms[1], a[1], tol)
    if ka == "text" or kb == "text":
        return ka == kb and a[1] == b[1]
    if ka == "empty" or kb == "empty":
        return ka == kb
    sets = ("set", "list")
    if ka in sets and kb in sets:
        return _sets_equal(a[1], b[1], equal)
    if ka in sets or kb in sets:
        (kind, elements), other = (a[:2], b) if ka in sets else (b[:2], a)
        if kind == "list" and other[0] == "seq" and other[1:3] == ("(", ")"):
            return _in_order(elements, other[3], equal)  # "1, 2" against the point (1, 2)
        if len(elements) == 1 and (form := _other_form(other)) is not None:
            return equal(elements[0], form)
        return None if "expr" in (ka, kb) else False
    if ka == "seq" and kb == "seq":
        return a[1:3] == b[1:3] and _in_order(a[3], b[3], equal)
    if ka == "matrix" and kb == "matrix":
        shape_a, shape_b = [len(r) for r in a[1]], [len(r) for r in b[1]]
        return shape_a == shape_b and all(
            _in_order(ra, rb, equal) for ra, rb in zip(a[1], b[1], strict=True)
        )
    if ka == "eq" and kb == "eq":
        if (equal(a[1], b[1]) and equal(a[2], b[2])) or (equal(a[1], b[2]) and equal(a[2], b[1])):
            return True
        return tol.symbolic and symbolic_equal(
            f"{a[1]}-({a[2]})", f"{b[1]}-({b[2]})", up_to_sign=True
        )
    if ka == "expr" and kb == "expr":
        return None
    return None if "expr" in (ka, kb) else False


def _other_form(structure: Structure) -> str | None:
    """A form standing for a one-element shape, to compare with a one-element set."""
    if structure[0] == "expr":
        return structure[1]
    if structure[0] == "number":
        value = structure[1].value
        return (
            str(value.numerator)
            if value.denominator == 1
            else (f"{value.numerator}/{value.denominator}")
        )
    return None


def _same_name(x: str, y: str) -> bool:
    """Names agree up to spacing and subscript braces."""
    return name_key(x) == name_key(y)


def _compare_system(a: Structure, b: Structure, equal: _Equal) -> bool:
    """Systems of assignments against each other or against a tuple/list of values."""
    if a[0] == "system" and b[0] == "system":
        names_a, names_b = [n for n, _ in a[1]], [n for n, _ in b[1]]
        return names_a == names_b and all(
            equal(x, y) for (_, x), (_, y) in zip(a[1], b[1], strict=True)
        )
    system, other = (a, b) if a[0] == "system" else (b, a)
    values = tuple(value for _, value in system[1])
    if other[0] == "seq" and other[1] == "(" and other[2] == ")":
        return _in_order(values, other[3], equal)
    if other[0] == "list":
        return _in_order(values, other[1], equal)
    return False


def clear_caches() -> None:
    """Empty every cache of the math equivalence (forms, shapes, parses, pairs)."""
    from strategies.verify import normalize, structure, symbolic

    for cached in (
        normalize.answer_form,
        normalize.read_number,
        structure.canonical_answer,
        structure.parse_structure,
        structure.structure_key,
        symbolic.parse_latex,
        symbolic.numeric_value,
        symbolic.symbolic_equal,
        _equivalent,
    ):
        cached.cache_clear()
