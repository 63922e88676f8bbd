"""Normalise math answers (Hendrycks-style) and read them as exact rational numbers."""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["canonical_answer", "normalize_answer", "parse_number"]

_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d{1,3})?", re.IGNORECASE)
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_LATEX_FRAC = re.compile(r"(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}")
_SLASH_FRAC = re.compile(r"(-?[\d.]+)/(-?[\d.]+)")
_INT_SLASH = re.compile(r"(-?)(\d+)/(\d+)")
_TRAILING_UNITS = re.compile(r"(?<=\S)\s*\\(?:text|mbox|mathrm)\{[^{}]*\}$")
_WRAPPER = re.compile(r"\\(?:text|mbox|mathrm)\{([^{}]*)\}")
_SQRT_BARE = re.compile(r"\\sqrt(\w)")
_SHORT_PREFIX_LIMIT = 2  # "x = 5" or "ab=5": drop a prefix of at most this many characters


def _fix_fracs(text: str) -> str:
    r"""Add the missing braces of ``\frac12`` and ``\frac1{2}`` (Hendrycks' ``_fix_fracs``)."""
    head, *parts = text.split("\\frac")
    out = [head]
    for part in parts:
        out.append("\\frac")
        if part.startswith("{") or len(part) < 2:
            out.append(part)
        elif part[1] == "{":
            out.append("{" + part[0] + "}" + part[1:])
        else:
            out.append("{" + part[0] + "}{" + part[1] + "}" + part[2:])
    return "".join(out)


def normalize_answer(answer: str) -> str:
    r"""Return a Hendrycks-style normal form of an answer string, for string comparison.

    Removes line breaks, ``\!``, ``\left``/``\right``, degree marks, ``$``, ``%``, a
    trailing ``\text{units}`` and spaces; maps ``tfrac``/``dfrac`` to ``frac``; repairs
    ``\frac12`` and ``\sqrt3``; drops a short ``x =`` prefix; turns ``.5`` into ``0.5``
    and an integer ``a/b`` into ``\frac{a}{b}``.

    >>> normalize_answer(r"x = \dfrac12")
    '\\frac{1}{2}'
    >>> normalize_answer(" .5 ")
    '0.5'
    >>> normalize_answer("3/4")
    '\\frac{3}{4}'
    """
    text = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    text = text.replace("\\$", "").replace("$", "")
    text = _TRAILING_UNITS.sub("", text.strip())
    text = _WRAPPER.sub(r"\1", text)
    text = text.replace("\\%", "").replace("%", "")
    text = text.strip().replace(" .", " 0.").replace("{.", "{0.")
    if text.startswith("."):
        text = "0" + text
    elif text.startswith("-."):
        text = "-0" + text[1:]
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0].strip()) <= _SHORT_PREFIX_LIMIT:
        text = sides[1]
    text = _SQRT_BARE.sub(r"\\sqrt{\1}", text)
    text = text.replace(" ", "")
    text = _fix_fracs(text)
    if text.startswith("."):
        text = "0" + text
    match = _INT_SLASH.fullmatch(text)
    if match is not None:
        sign, num, den = match.groups()
        text = f"{sign}\\frac{{{num}}}{{{den}}}"
    return text


def _to_fraction(text: str) -> Fraction | None:
    """Read a normalised string as an exact rational, or return ``None``."""
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    try:
        if _NUMBER.fullmatch(text):
            return Fraction(text)
        match = _LATEX_FRAC.fullmatch(text) or _SLASH_FRAC.fullmatch(text)
        if match is None:
            return None
        groups = match.groups()
        sign = -1 if len(groups) == 3 and groups[0] == "-" else 1
        num, den = groups[-2], groups[-1]
        if not (_NUMBER.fullmatch(num) and _NUMBER.fullmatch(den)):
            return None
        return sign * Fraction(num) / Fraction(den)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def parse_number(answer: str) -> Fraction | None:
    r"""Return the exact value of a numeric answer, or ``None`` if it is not a number.

    Understands integers, decimals, thousands separators, ``a/b``, ``\frac{a}{b}``,
    ``$`` signs and a trailing ``%`` (which divides by 100).

    >>> parse_number("1,234.5")
    Fraction(2469, 2)
    >>> parse_number(r"-\frac{3}{6}"), parse_number("12.5%")
    (Fraction(-1, 2), Fraction(1, 8))
    >>> parse_number("x + 1") is None
    True
    """
    text = answer.strip().rstrip(".").strip()
    is_percent = text.endswith("%")
    if is_percent:
        text = text.removesuffix("%").removesuffix("\\").strip()
    value = _to_fraction(normalize_answer(text))
    if value is None:
        return None
    return value / 100 if is_percent else value


def canonical_answer(answer: str | None) -> str | None:
    """Return a hashable voting key: equal for answers that are the same number.

    Numbers become their reduced exact value ("18", "18.0" and "18.00" give "18";
    "2/4", "0.5" and ``\\frac{1}{2}`` give "1/2"); anything else its normalised string.
    A ``%`` sign is dropped, as in the string normalisation. Empty answers give ``None``.

    >>> canonical_answer("18.00"), canonical_answer(r"\\dfrac{2}{4}"), canonical_answer("x + 1")
    ('18', '1/2', 'x+1')
    """
    if answer is None:
        return None
    text = normalize_answer(answer.strip().rstrip("."))
    if not text:
        return None
    value = _to_fraction(text)
    if value is None:
        return text
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"
