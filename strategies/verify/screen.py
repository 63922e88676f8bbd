r"""A float screen for the symbolic step: rule out unequal answers before math-verify parses.

Parsing one LaTeX answer with math-verify (ANTLR) costs milliseconds; majority voting
compares every pair of distinct answers. ``quick_value`` evaluates the plain arithmetic
most answers are written in (numbers, ``+ - \cdot \times``, juxtaposition, ``^``,
brackets, ``\frac``, ``\sqrt``, ``\sqrt[n]``, ``\pi``, one-letter variables)
in complex floating point, each variable at the same fixed point the sympy fingerprint
uses, so two answers whose values differ cannot be equal. It never accepts: equal values
still go to math-verify. Anything outside that grammar, or read ambiguously by
latex2sympy (``a(b)`` may be a function call, ``x^23``, ``2/3x``, ``e`` and ``i``), gives
``None`` and is left to the parser. Like latex2sympy, it reads ``A`` as ``a``.
"""

from __future__ import annotations

import cmath
import functools
import re
import zlib

__all__ = ["point_of", "quick_value"]

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?|\.\d+)|(?P<command>\\[A-Za-z]+)|(?P<letter>[A-Za-z])"
    r"|(?P<symbol>[-+*^(){}\[\]]))"
)
_TIMES = frozenset({"\\cdot", "\\times"})
_EXCLUDED_LETTERS = frozenset("eiEI")  # Euler's number and the imaginary unit, maybe
_MAX_EXPONENT = 1000.0
_MAX_CHARS = 200


def point_of(name: str) -> float:
    """The fixed value of the variable ``name`` (the same as the sympy fingerprint's)."""
    return 0.6180339887 + (zlib.crc32(name.encode()) % 9973) / 7919.0


def _signed_zero(value: complex) -> complex:
    """Drop a ``-0.0`` imaginary part, which would put a root on the other side of its cut."""
    return complex(value.real, 0.0) if value.imag == 0 else value


class _Unsupported(Exception):
    """The text leaves the screen's grammar."""


class _Reader:
    """A recursive-descent reader over the tokens of one answer form."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise _Unsupported(text[position:])
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.at = 0
        self.has_variables = False

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise _Unsupported(value or "end")
        self.at += 1
        return token

    def expression(self) -> complex:
        value = self.term()
        while (token := self.peek()) is not None and token[1] in "+-":
            self.take()
            value = value + self.term() if token[1] == "+" else value - self.term()
        return value

    def term(self) -> complex:
        value = self.signed()
        while (token := self.peek()) is not None:
            if token[1] in _TIMES or token[1] == "*":
                self.take()
                value *= self.signed()
            elif token[0] in ("number", "letter", "command") or token[1] in "({":
                if token[0] == "number" and self.tokens[self.at - 1][0] == "number":
                    raise _Unsupported("two numbers in a row")
                value *= self.power()
            else:
                break
        return value

    def signed(self) -> complex:
        token = self.peek()
        if token is not None and token[1] in "+-":
            self.take()
            value = self.signed()
            return -value if token[1] == "-" else value
        return self.power()

    def power(self) -> complex:
        base = self.atom()
        token = self.peek()
        if token is None or token[1] != "^":
            return base
        self.take()
        following = self.peek()
        if following is None:
            raise _Unsupported("^ at the end")
        if following[1] == "{":
            exponent = self.group()
        elif following[0] == "number" and len(following[1]) == 1:
            exponent = complex(float(self.take()[1]))
        elif following[0] == "letter":
            exponent = self.atom()
        else:
            raise _Unsupported("exponent")
        if abs(exponent) > _MAX_EXPONENT:
            raise _Unsupported("big exponent")
        if base == 0 and exponent.real <= 0:
            raise _Unsupported("0 to a non-positive power")
        return _signed_zero(base) ** exponent

    def group(self) -> complex:
        self.take("{")
        value = self.expression()
        self.take("}")
        return value

    def atom(self) -> complex:
        kind, text = self.take()
        if kind == "number":
            return complex(float(text))
        if kind == "letter":
            if text in _EXCLUDED_LETTERS:
                raise _Unsupported(text)
            following = self.peek()
            if following is not None and following[1] == "(":
                raise _Unsupported("a letter before a bracket may be a function")
            self.has_variables = True
            return complex(point_of(text.lower()))  # latex2sympy reads "A" as a
        if text == "(":
            value = self.expression()
            self.take(")")
            return value
        if text == "{":
            self.at -= 1
            return self.group()
        if text == "\\pi":
            return complex(cmath.pi)
        if text == "\\frac":
            numerator = self.group()
            denominator = self.group()
            if denominator == 0:
                raise _Unsupported("division by zero")
            return numerator / denominator
        if text == "\\sqrt":
            root = 2.0
            if (token := self.peek()) is not None and token[1] == "[":
                self.take("[")
                degree = self.take()
                if degree[0] != "number" or "." in degree[1] or degree[1] == "0":
                    raise _Unsupported("root degree")
                root = float(degree[1])
                self.take("]")
            radicand = self.group()
            radicand = _signed_zero(radicand)
            return cmath.sqrt(radicand) if root == 2.0 else radicand ** (1 / root)
        raise _Unsupported(text)


@functools.lru_cache(maxsize=65536)
def quick_value(form: str) -> tuple[complex, bool] | None:
    r"""The value of plain arithmetic LaTeX and whether it has variables, else ``None``.

    >>> quick_value(r"\frac{\sqrt{2}}{2}")[0].real, quick_value("2x^2")[1]
    (0.7071067811865476, True)
    >>> quick_value("f(x)") is None, quick_value(r"\ln 2") is None
    (True, True)
    """
    if not form or len(form) > _MAX_CHARS or "/" in form:
        return None
    try:
        reader = _Reader(form)
        value = reader.expression()
        if reader.peek() is not None:
            return None
    except (_Unsupported, ZeroDivisionError, OverflowError, ValueError):
        return None
    if not (cmath.isfinite(value)):
        return None
    return value, reader.has_variables
