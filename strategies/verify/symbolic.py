"""Symbolic equivalence (ALGORITHMS §17 step 6) through Hugging Face's ``math-verify``.

LaTeX is parsed by ``math_verify.parse`` (``latex2sympy2_extended``) and compared by
``math_verify.verify``; nothing here evaluates Python. Both run under math-verify's own
time limit (``parsing_timeout`` / ``timeout_seconds``, 1 s; a timeout is "not equal"),
which works by ``SIGALRM`` and so only in the main thread. Off the main thread (a web
request, a thread pool) those timeouts are switched off and the work is bounded instead
by what is let in: at most ``MAX_SYMBOLIC_CHARS`` characters, no sums, integrals or
limits, no towers of powers, no big exponents, factorials or binomials, before parsing
and again on the parsed tree. The same limits apply in the main thread, so a verdict
does not depend on the thread that computed it.

Each distinct answer is parsed once (cached). A numeric fingerprint (the value at a fixed
point for each free symbol, from the float screen of ``screen.py`` where it reads the
answer, else from the parse) rules out unequal pairs before anything is parsed or
verified, which matters to majority voting: it compares O(N^2) pairs of distinct
answers. Equality is only ever decided by math-verify (or, number against constant, by
sympy on math-verify's parse).
"""

from __future__ import annotations

import cmath
import functools
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any, TypeVar

from strategies.verify.screen import point_of, quick_value

__all__ = [
    "MAX_SYMBOLIC_CHARS",
    "SYMBOLIC_TIMEOUT_S",
    "equals_number",
    "is_constant",
    "numeric_value",
    "parse_latex",
    "symbolic_equal",
    "time_limited",
]

SYMBOLIC_TIMEOUT_S = 1  # math-verify's timeouts are whole seconds (signal.alarm)
MAX_SYMBOLIC_CHARS = 200
MAX_EXPONENT = 1000
MAX_FACTORIAL = 500
MAX_INTEGER_DIGITS = 60
FINGERPRINT_REL = 1e-9  # values further apart than this are surely different answers

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_REFUSED = re.compile(r"\\(?:sum|prod|int|iint|iiint|oint|lim|limsup|liminf)(?![A-Za-z])")
_NESTED_POWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*[\w.]+\s*\^")
_BIG_EXPONENT = re.compile(r"\^\s*\{?\s*-?\s*\d{4,}")
_BIG_FACTORIAL = re.compile(r"\d{4,}\s*\)?\s*!|\\binom\s*\{\s*\d{5,}")
_LONG_INTEGER = re.compile(rf"\d{{{MAX_INTEGER_DIGITS + 1},}}")


def _can_alarm() -> bool:
    """True where math-verify's ``SIGALRM`` timeouts work: the main thread on Unix."""
    return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()


def _preserving_outer_alarm(function: Callable[[], _T]) -> _T:
    """Run ``function``; re-arm any interval timer that math-verify's ``alarm(0)`` cancels."""
    if not hasattr(signal, "setitimer"):
        return function()
    delay, interval = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    try:
        return function()
    finally:
        if delay > 0:  # fire the outer timer when it was due (soon, if that has passed)
            remaining = max(delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)


def time_limited(function: Callable[[], _T], default: _T) -> _T:
    """Return ``function()`` under the 1 s limit in the main thread (``default`` on timeout
    or error); elsewhere run it as is, its input already bounded by the guards.

    >>> time_limited(lambda: 3, None)
    3
    """
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout

    def attempt() -> _T:
        try:
            if _can_alarm():
                return timeout(timeout_seconds=SYMBOLIC_TIMEOUT_S)(function)()  # type: ignore[no-any-return]
            return function()
        except TimeoutException:
            logger.debug("symbolic step timed out")
            return default
        except Exception:  # sympy raises many kinds on odd input; all mean "not shown"
            return default

    return _preserving_outer_alarm(attempt) if _can_alarm() else attempt()


def is_safe_text(text: str) -> bool:
    """True when a LaTeX answer is small and tame enough to hand to the parser.

    >>> is_safe_text(r"\\frac{\\sqrt{3}}{2}"), is_safe_text("9^{9^{9}}"), is_safe_text("2^{100000}")
    (True, False, False)
    """
    return not (
        len(text) > MAX_SYMBOLIC_CHARS
        or _REFUSED.search(text)
        or _NESTED_POWER.search(text)
        or _BIG_EXPONENT.search(text)
        or _BIG_FACTORIAL.search(text)
        or _LONG_INTEGER.search(text)
    )


def _is_safe_tree(expr: Any) -> bool:
    """Check a parsed tree: small exponents, factorials, binomials and integers only."""
    import sympy

    if not isinstance(expr, sympy.Basic):
        return isinstance(expr, sympy.MatrixBase) and all(_is_safe_tree(e) for e in expr)
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow):
            exponent = node.exp
            if exponent.has(sympy.Pow) or any(
                abs(number) > MAX_EXPONENT for number in exponent.atoms(sympy.Number)
            ):
                return False
        elif isinstance(node, sympy.factorial | sympy.gamma | sympy.binomial):
            if any(abs(n) > MAX_FACTORIAL for n in node.atoms(sympy.Number)):
                return False
        elif isinstance(node, sympy.Integer) and abs(int(node)) >= 10**MAX_INTEGER_DIGITS:
            return False
    return True


@functools.lru_cache(maxsize=16384)
def parse_latex(text: str) -> Any:
    r"""Parse one LaTeX answer with math-verify; ``None`` when it cannot, or must not.

    >>> parse_latex(r"\frac{1}{\sqrt{2}}")
    1/sqrt(2)
    >>> parse_latex("9^{9^{9}}") is None
    True
    """
    if not text or not is_safe_text(text):
        return None
    from math_verify import LatexExtractionConfig, parse

    limit = SYMBOLIC_TIMEOUT_S if _can_alarm() else None

    def run() -> Any:
        parsed = parse(
            f"${text}$",
            extraction_config=[LatexExtractionConfig()],
            fallback_mode="no_fallback",
            parsing_timeout=limit,  # type: ignore[arg-type]
        )
        return parsed[0] if parsed else None

    expr = _preserving_outer_alarm(run) if _can_alarm() else run()
    if expr is None or isinstance(expr, str) or not _is_safe_tree(expr):
        return None
    return _imaginary_unit(expr)


def _imaginary_unit(expr: Any) -> Any:
    """Read a free ``i`` as the imaginary unit (latex2sympy keeps it a symbol): ``e^{i\\pi}``."""
    import sympy

    try:
        unit = next((s for s in expr.free_symbols if s.name == "i"), None)
        return expr if unit is None else expr.xreplace({unit: sympy.I})
    except (AttributeError, TypeError):
        return expr


def _point(symbol: Any) -> Any:
    """A fixed, irrational-looking value for a free symbol, the same for the same name."""
    import sympy

    return sympy.Float(point_of(str(symbol)), 30)


@functools.lru_cache(maxsize=16384)
def numeric_value(text: str) -> complex | None:
    """The value of an answer expression, free symbols set to fixed points; ``None`` when it
    is not a plain expression (a set, an equation, a matrix) or does not evaluate.

    >>> abs(numeric_value(r"\\frac{\\sqrt{2}}{2}") - 0.70710678) < 1e-8
    True
    """
    import sympy

    expr = parse_latex(text)
    if expr is None or not isinstance(expr, sympy.Expr):
        return None

    def evaluate() -> complex | None:
        free = expr.free_symbols
        value = expr.evalf(30, subs={s: _point(s) for s in free}) if free else expr.evalf(30)
        if not value.is_number:
            return None
        number = complex(value)
        return number if cmath.isfinite(number) else None

    return time_limited(evaluate, None)


def _close(x: complex, y: complex, rel: float) -> bool:
    """Relative closeness of two complex values (exact zeros compare exactly)."""
    return abs(x - y) <= rel * max(abs(x), abs(y))


def screen_value(text: str) -> complex | None:
    """The answer's value at the fixed points: from the float screen where it reads the
    answer, else from math-verify's parse; only ever used to tell answers apart."""
    quick = quick_value(text)
    return quick[0] if quick is not None else numeric_value(text)


def is_constant(text: str) -> bool:
    """True when the answer is an expression without free symbols."""
    import sympy

    quick = quick_value(text)
    if quick is not None:
        return not quick[1]
    expr = parse_latex(text)
    return isinstance(expr, sympy.Expr) and not expr.free_symbols


def equals_number(
    text: str, value: Fraction, *, is_exact: bool, rel: float, abs_tol: float
) -> bool:
    r"""True when the expression ``text`` equals the number ``value``.

    An exact number (integer, fraction) must equal the expression exactly (``\sqrt{9}``
    is 3, ``\pi`` is not ``355/113``); a written decimal only to ``rel`` (and ``abs_tol``).

    >>> equals_number(r"\sqrt{9}", Fraction(3), is_exact=True, rel=1e-6, abs_tol=0.0)
    True
    >>> equals_number(r"\pi", Fraction(355, 113), is_exact=True, rel=1e-6, abs_tol=0.0)
    False
    """
    if not is_constant(text):
        return False
    target = float(value)
    screened = screen_value(text)
    if screened is not None and abs(screened - target) > 1e-3 * max(
        abs(target), abs(screened)
    ) + max(abs_tol, 0.0):
        return False  # far apart: no need to parse
    approx = numeric_value(text)
    if approx is None:
        return False
    if abs(approx.imag) > FINGERPRINT_REL * max(abs(approx), 1e-300):
        return False
    difference = abs(approx.real - target)
    if not is_exact or abs_tol > 0:
        bound = max(rel * max(abs(approx.real), abs(target)), abs_tol)
        if difference <= bound:
            return True
        if not is_exact:
            return False
    if difference > FINGERPRINT_REL * max(abs(target), abs(approx.real)) + 1e-300:
        return False
    import sympy

    expr = parse_latex(text)
    rational = sympy.Rational(value.numerator, value.denominator)
    return time_limited(lambda: bool(sympy.simplify(expr - rational) == 0), False)


@functools.lru_cache(maxsize=65536)
def symbolic_equal(left: str, right: str, *, up_to_sign: bool = False) -> bool:
    r"""True when math-verify shows two LaTeX answers equal (``right`` is the reference); cached.

    Unparsable or refused input, an error, or a step over the time limit is "not equal".
    ``up_to_sign`` also accepts ``left == -right`` (for ``lhs - rhs`` of equations).

    >>> symbolic_equal(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"), symbolic_equal("x+1", "x+2")
    (True, False)
    """
    import sympy

    fa, fb = screen_value(left), screen_value(right)
    if fa is not None and fb is not None:
        same = _close(fa, fb, FINGERPRINT_REL)
        flipped = up_to_sign and _close(fa, -fb, FINGERPRINT_REL)
        if not (same or flipped):
            return False
    a, b = parse_latex(left), parse_latex(right)
    if a is None or b is None:
        return False
    targets = [a, -a] if up_to_sign and isinstance(a, sympy.Expr) else [a]
    return any(_verify(b, target) for target in targets)


def _verify(gold: Any, target: Any) -> bool:
    """``math_verify.verify`` with its timeout on in the main thread and off elsewhere."""
    from math_verify import verify

    limit = SYMBOLIC_TIMEOUT_S if _can_alarm() else None

    def run() -> bool:
        return bool(verify(gold, target, timeout_seconds=limit))  # type: ignore[arg-type]

    try:
        return _preserving_outer_alarm(run) if _can_alarm() else run()
    except Exception:  # a parse tree sympy cannot compare: not shown equal
        return False
