"""Symbolic equivalence (ALGORITHMS §17 step 5): sympy with a safe parser and a 1 s timeout.

Model output is untrusted and ``sympy.parse_expr`` evaluates Python, so answers are first
translated from a small LaTeX subset into a plain expression that may hold only digits,
operators, parentheses, single-letter symbols and a few allow-listed function names.
Powers with huge or nested exponents are refused before anything is evaluated. sympy is
imported lazily. A comparison that runs past the timeout counts as not equal.
"""

from __future__ import annotations

import functools
import re
import signal
import string
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SYMBOLIC_TIMEOUT_S", "latex_to_expression", "run_with_timeout", "symbolic_equal"]

SYMBOLIC_TIMEOUT_S = 1.0
MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
_FUNCTIONS = frozenset({"sqrt", "pi", "log", "exp", "sin", "cos", "tan"})
_COMMANDS = {
    "\\cdot": "*", "\\times": "*", "\\div": "/", "\\pi": " pi ", "\\ln": " log ",
    "\\log": " log ", "\\exp": " exp ", "\\sin": " sin ", "\\cos": " cos ", "\\tan": " tan ",
    "\\,": "", "\\;": "", "\\ ": "",
}  # fmt: skip
_SAFE = re.compile(r"[0-9A-Za-z+\-*/().\s]*")
_WORD = re.compile(r"[A-Za-z]+")
_ATTRIBUTE = re.compile(r"[A-Za-z)]\.|\.[A-Za-z(]")
_T = TypeVar("_T")


def _brace_group(text: str, start: int) -> tuple[str, int] | None:
    """Return the contents of the ``{...}`` group at ``start`` and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i], i + 1
    return None


def _expand(text: str, command: str, arity: int, template: str) -> str | None:
    """Rewrite every ``command{a}{b}`` (innermost groups translated first) with ``template``."""
    while (at := text.find(command)) >= 0:
        groups, end = [], at + len(command)
        for _ in range(arity):
            group = _brace_group(text, end)
            if group is None:
                return None
            inner = latex_to_expression(group[0])
            if inner is None:
                return None
            groups.append(inner)
            end = group[1]
        text = text[:at] + template.format(*groups) + text[end:]
    return text


def _split_word(match: re.Match[str]) -> str:
    """Keep allow-listed names; read any other word as a product of one-letter symbols."""
    word = match.group(0)
    return f" {word} " if word in _FUNCTIONS else "*".join(word)


def latex_to_expression(text: str) -> str | None:
    r"""Translate a small LaTeX subset to a safe sympy expression string, or ``None``.

    >>> latex_to_expression(r"\frac{x^2}{2}+\sqrt{2}xy")
    '((x**2)/(2))+ sqrt (2)x*y'
    >>> latex_to_expression("__import__('os')") is None
    True
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        return None
    for command in ("\\frac", "\\dfrac", "\\tfrac"):
        expanded = _expand(text, command, 2, "(({0})/({1}))")
        if expanded is None:
            return None
        text = expanded
    sqrt = _expand(text, "\\sqrt", 1, " sqrt ({0})")
    if sqrt is None:
        return None
    text = sqrt
    for command, replacement in _COMMANDS.items():
        text = text.replace(command, replacement)
    text = text.replace("{", "(").replace("}", ")").replace("^", "**")
    if "\\" in text or not _SAFE.fullmatch(text) or ".." in text or _ATTRIBUTE.search(text):
        return None
    return " ".join(_WORD.sub(_split_word, text).split()) or None


def run_with_timeout(function: Callable[[], _T], seconds: float) -> _T | None:
    """Return ``function()``, or ``None`` if it takes longer than ``seconds``.

    In the main thread (where the platform has ``SIGALRM``) a timer interrupts the call;
    elsewhere it runs in a daemon thread that is abandoned on timeout.

    >>> run_with_timeout(lambda: 3, 1.0)
    3
    """
    can_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if can_alarm:
        return _with_alarm(function, seconds)
    box: list[_T] = []
    worker = threading.Thread(target=lambda: box.append(function()), daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else None


class _Timeout(BaseException):
    """Raised by the alarm handler; a BaseException so sympy's ``except Exception`` misses it."""


def _with_alarm(function: Callable[[], _T], seconds: float) -> _T | None:
    """Run ``function`` under an interval timer, restoring any previous handler and timer."""

    def _raise(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, _raise)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        return function()
    except _Timeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:
            remaining = max(old_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, old_interval)


def _parse(expression: str) -> Any:
    """Parse a translated expression without evaluating it; refuse dangerous powers."""
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    names: dict[str, Any] = {letter: sympy.Symbol(letter) for letter in string.ascii_letters}
    names.update(sqrt=sympy.sqrt, pi=sympy.pi, log=sympy.log, exp=sympy.exp)
    names.update(sin=sympy.sin, cos=sympy.cos, tan=sympy.tan)
    transformations = (*standard_transformations, implicit_multiplication_application, convert_xor)
    expr = parse_expr(expression, local_dict=names, transformations=transformations, evaluate=False)
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow):
            exponent = node.exp
            if exponent.has(sympy.Pow) or any(
                abs(number) > MAX_EXPONENT for number in exponent.atoms(sympy.Number)
            ):
                raise ValueError("exponent too large to evaluate safely")
    return expr


def _compare(left: str, right: str, rel: float, abs_tol: float, up_to_sign: bool) -> bool:
    """Compare two safe expressions: ``simplify(a - b) == 0``, else numerically if constant."""
    import sympy

    a, b = _parse(left), _parse(right)
    targets = (a - b, a + b) if up_to_sign else (a - b,)
    for difference in targets:
        if sympy.simplify(difference) == 0:
            return True
    if a.free_symbols or b.free_symbols:
        return False
    x, y = complex(sympy.N(a)), complex(sympy.N(b))
    close = abs(x - y) <= max(rel * max(abs(x), abs(y)), abs_tol)
    return close or (up_to_sign and abs(x + y) <= max(rel * max(abs(x), abs(y)), abs_tol))


@functools.lru_cache(maxsize=8192)
def symbolic_equal(
    left: str, right: str, *, rel: float = 1e-6, abs_tol: float = 1e-9, up_to_sign: bool = False
) -> bool:
    r"""True when two (normalised) LaTeX answers are the same expression; cached.

    Unparsable input, an error, or a comparison over ``SYMBOLIC_TIMEOUT_S`` is not equal.

    >>> symbolic_equal(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"), symbolic_equal("x+1", "x+2")
    (True, False)
    """
    a, b = latex_to_expression(left), latex_to_expression(right)
    if a is None or b is None:
        return False
    import sympy  # noqa: F401  -- imported outside the timer: the first import is slow

    def attempt() -> bool:
        try:
            return _compare(a, b, rel, abs_tol, up_to_sign)
        except Exception:  # sympy raises many kinds on odd input; all mean "not shown equal"
            return False

    return run_with_timeout(attempt, SYMBOLIC_TIMEOUT_S) is True
