"""Normalise math answers and read them as exact numbers (ALGORITHMS §17).

Three string forms, from most to least faithful:

- ``answer_form``: what the equivalence compares and caches on. Spelling noise is gone
  (math delimiters, ``\\left``, ``\\dfrac``, spacing commands, currency signs, text
  wrappers, trailing units, degree marks, Unicode minus and friends) but nothing that
  carries meaning is dropped: ``%``, a written decimal and an ``x =`` prefix stay.
- ``normalize_answer``: the Hendrycks-style string form (also drops ``%`` and spaces).

The voting key built on these forms, ``canonical_answer``, lives in ``structure``: it
reads the answer's shape.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "NumberValue",
    "answer_form",
    "fraction_key",
    "normalize_answer",
    "parse_number",
    "read_number",
]

MAX_NUMBER_CHARS = 400  # longer "numbers" are not read (and int() refuses > 4300 digits)

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2010": "-", "\u2012": "-", "\ufe63": "-",
    "\uff0d": "-", "\u00d7": "\\times ", "\u22c5": "\\cdot ", "\u00b7": "\\cdot ",
    "\u00f7": "\\div ", "\u221a": "\\sqrt ", "\u03c0": "\\pi ", "\u221e": "\\infty ",
    "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\ne ", "\u222a": "\\cup ",
    "\u2229": "\\cap ", "\u2205": "\\emptyset ", "\u00b0": "^\\circ ", "\u2009": " ",
    "\u202f": " ", "\u00a0": " ", "\u2007": " ", "\u2026": "\\ldots ", "\u00bd": "1/2",
    "\u00bc": "1/4", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3", "\u00b2": "^2",
    "\u00b3": "^3", "\u03b1": "\\alpha ", "\u03b2": "\\beta ", "\u03b3": "\\gamma ",
    "\u03b4": "\\delta ", "\u03b8": "\\theta ", "\u03bb": "\\lambda ", "\u03bc": "\\mu ",
    "\u03c3": "\\sigma ", "\u03c6": "\\phi ", "\u03c9": "\\omega ", "\u2218": "\\circ ",
    "\u2032": "'", "\u201c": '"', "\u201d": '"', "\u2019": "'", "\u20ac": "", "\u00a3": "",
    "\u00a5": "", "\u20b9": "", "\u20a9": "", "\u20bd": "",
}  # fmt: skip
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_DROP = (
    "\\displaystyle",
    "\\textstyle",
    "\\left",
    "\\right",
    "\\bigl",
    "\\bigr",
    "\\Bigl",
    "\\Bigr",
    "\\big",
    "\\Big",
    "\\!",
    "\\$",
    "$",
    "\\mathrm{~}",
)
_SPACE_COMMANDS = re.compile(r"\\(?:,|;|:|>|\s|quad\b|qquad\b|enspace\b|thinspace\b)|~")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ\b|\\degree\b|\^\s*\{\s*o\s*\}")
_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|mathrm|mathbf|mathit|mathsf|mathtt|mbox"
    r"|operatorname|boldsymbol|bm|mathnormal|emph|hbox|fbox|boxed)\s*\{"
)
_TRAILING_TEXT = re.compile(
    r"(?<=[\w})\]])\s*\\(?:text|mbox|mathrm|textrm|textbf)\s*\{[^{}]*\}(?:\s*\^\s*\{?\d\}?)?$"
)
_LEADING_WORDS = re.compile(r"^(?:\\text\{\s*)?(?:answer|final answer)\s*[:=]\s*", re.IGNORECASE)
_THOUSANDS_SPACE = re.compile(r"(?<![\d.])(\d{1,3})((?: \d{3})+)(?![\d.])")
_MIXED_SLASH = re.compile(r"(?<![\d.,/])(\d+) (\d+)/(\d+)(?![\d./])")
_MIXED_FRAC = re.compile(r"(?<![\d.])(\d+)\s*\\frac\s*\{(\d+)\}\s*\{(\d+)\}")
_SQRT_BARE = re.compile(r"\\sqrt\s*(\w)")
_FRAC_BARE = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF = re.compile(r"\\frac\s*(\d)\s*\{")
_FRAC_HALF2 = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_ASCII_RELATIONS = (("<=", "\\le "), (">=", "\\ge "), ("!=", "\\ne "), ("==", "="))
_RELATION_WORDS = re.compile(r"\\(?:leq|leqslant|leqq)\b")
_GE_WORDS = re.compile(r"\\(?:geq|geqslant|geqq)\b")
_NEQ_WORDS = re.compile(r"\\neq\b")
_LT_GT = ((re.compile(r"\\lt\b"), "<"), (re.compile(r"\\gt\b"), ">"))
_SPACES = re.compile(r"\s+")
_INNER_SPACE = re.compile(r"(?<![A-Za-z0-9]) | (?![A-Za-z0-9])")
_ROW_BREAK = "\x00"
_COMMAND_SPACE = re.compile(r"(\\[A-Za-z]+) (?=[^A-Za-z])")
_LEADING_POINT = re.compile(r"(?<![\d}])\.(\d)")
_INT_SLASH = re.compile(r"(-?)(\d+)/(\d+)")
_WORD_SEPARATOR = re.compile(r"\s*,?\s*\b(?:and|or)\b\s*")
_CURRENCY_WORDS = re.compile(r"^(?:USD|US\$|EUR|GBP|INR|Rs\.?|CAD|AUD)\s*", re.IGNORECASE)


def _apply_unicode(text: str) -> str:
    """Replace Unicode math symbols with their ASCII/LaTeX spellings."""
    return _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text)


def _unwrap(text: str) -> str:
    """Replace ``\\text{...}``-style wrappers by their contents (braces matched by depth)."""
    while (match := _WRAPPER.search(text)) is not None:
        open_at = match.end() - 1
        depth, close = 0, None
        for i in range(open_at, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                close = i
                break
        if close is None:
            return text
        text = text[: match.start()] + text[open_at + 1 : close] + text[close + 1 :]
    return text


@functools.lru_cache(maxsize=65536)
def answer_form(answer: str) -> str:
    r"""Return the comparison form of an extracted answer: spelling noise gone, meaning kept.

    >>> answer_form(r"\( -\$1{,}000 \)"), answer_form("x = 3 1/2"), answer_form("50\\%")
    ('-1,000', 'x=3\\frac{1}{2}', '50%')
    >>> answer_form(r"\dfrac{1}{2}\text{ cm}^2"), answer_form("\u22125.")
    ('\\frac{1}{2}', '-5')
    """
    text = _apply_unicode(answer)
    text = text.replace("\n", " ").replace("\\langle", "(").replace("\\rangle", ")")
    text = text.replace("\\\\", _ROW_BREAK)  # keep matrix row breaks out of "\ " below
    text = text.strip()
    text = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", text).strip()
    text = _LEADING_WORDS.sub("", text)
    for token in _DROP:
        text = text.replace(token, "")
    text = text.replace("{,}", ",").replace("\\%", "%")
    text = _SPACE_COMMANDS.sub(" ", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom")
    text = _DEGREES.sub("", text)
    text = _TRAILING_TEXT.sub("", text.strip()) if _has_math(text) else text
    text = _CURRENCY_WORDS.sub("", _unwrap(text).strip())
    if _has_math(text):  # "2 and 3", "x < 1 or x > 2": list separators, like commas
        text = _WORD_SEPARATOR.sub(",", text)
    text = re.sub(r"\bpercent\b", "%", text)
    for ascii_relation, latex in _ASCII_RELATIONS:
        text = text.replace(ascii_relation, latex)
    text = _RELATION_WORDS.sub(r"\\le ", text)
    text = _GE_WORDS.sub(r"\\ge ", text)
    text = _NEQ_WORDS.sub(r"\\ne ", text)
    for pattern, replacement in _LT_GT:
        text = pattern.sub(replacement, text)
    text = _SPACES.sub(" ", text).strip()
    text = _THOUSANDS_SPACE.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), text)
    text = _MIXED_SLASH.sub(r"\1\\frac{\2}{\3}", text)
    text = _MIXED_FRAC.sub(r"\1\\frac{\2}{\3}", text)
    text = _fix_fracs(text)
    text = _SQRT_BARE.sub(r"\\sqrt{\1}", text)
    text = _INNER_SPACE.sub("", text)
    text = _COMMAND_SPACE.sub(r"\1", text)
    text = _LEADING_POINT.sub(r"0.\1", text)
    text = text.replace(_ROW_BREAK, "\\\\")
    if re.search(r"\d(?:\.\.\.|\\[lc]?dots)$", text):
        return text  # "0.333...": a repeating decimal keeps its dots
    return text.rstrip(".,;: ").strip()


def _has_math(text: str) -> bool:
    """True when the text holds a digit or a LaTeX command other than a text wrapper."""
    return any(c.isdigit() for c in text) or bool(
        re.search(r"\\(?!text|mbox|mathrm|textrm|textbf)[A-Za-z]", text)
    )


def _fix_fracs(text: str) -> str:
    r"""Add the missing braces of ``\frac12``, ``\frac1{2}`` and ``\frac{1}2``."""
    text = _FRAC_BARE.sub(r"\\frac{\1}{\2}", text)
    text = _FRAC_HALF.sub(r"\\frac{\1}{", text)
    return _FRAC_HALF2.sub(r"\\frac\1{\2}", text)


def normalize_answer(answer: str) -> str:
    r"""Return a Hendrycks-style normal form of an answer string, for string comparison.

    Removes line breaks, ``\!``, ``\left``/``\right``, degree marks, ``$``, ``%``, a
    trailing ``\text{units}`` and spaces; maps ``tfrac``/``dfrac`` to ``frac``; repairs
    ``\frac12`` and ``\sqrt3``; turns ``.5`` into ``0.5`` and an integer ``a/b`` into
    ``\frac{a}{b}``. An ``x =`` prefix is kept: ``x = 5`` never equals ``y = 5``, so only
    the comparison of two answers may drop it.

    >>> normalize_answer(r"x = \dfrac12")
    'x=\\frac{1}{2}'
    >>> normalize_answer(" .5 ")
    '0.5'
    >>> normalize_answer("3/4")
    '\\frac{3}{4}'
    """
    text = answer_form(answer).replace("%", "").replace(" ", "")
    match = _INT_SLASH.fullmatch(text)
    if match is not None:
        sign, num, den = match.groups()
        text = f"{sign}\\frac{{{num}}}{{{den}}}"
    return text


@dataclass(frozen=True)
class NumberValue:
    """A number read from an answer: its exact value, whether it was written exactly
    (an integer, fraction, mixed number or repeating decimal, not a written decimal),
    and whether it carried a ``%`` sign (``value`` is then the number before the sign)."""

    value: Fraction
    is_exact: bool
    is_percent: bool = False


_INTEGER = r"\d{1,3}(?:,\d{3})+|\d+"
_DECIMAL = rf"(?:{_INTEGER})\.\d*|\.\d+"
_REPEATING = re.compile(
    r"(\d*)\.(\d*)(?:\\overline\{(\d+)\}|\\dot\{(\d)\}|\\overline(\d)|\((\d+)\)"
    r"|(\.\.\.|\\ldots|\\dots|\\cdots))"
)
_SIGNED = re.compile(r"([+-]?)(.*)")
_FRAC = re.compile(r"\\frac\{([+-]?[\d.,]+)\}\{([+-]?[\d.,]+)\}")
_SLASH = re.compile(r"([\d.,]+)/([\d.,]+)")
_MIXED = re.compile(r"(\d+)\\frac\{(\d+)\}\{(\d+)\}")
_PLAIN = re.compile(rf"(?:{_DECIMAL}|{_INTEGER})")
_SCIENTIFIC = re.compile(rf"({_DECIMAL}|{_INTEGER})[eE]([+-]?\d{{1,4}})")
_TIMES_TEN = re.compile(
    rf"(?:({_DECIMAL}|{_INTEGER})(?:\\times|\\cdot|\*|x))?10\^(?:\{{([+-]?\d{{1,4}})\}}|([+-]?\d))"
)
_SINGLE_UNITS = frozenset("mgshLKVWJN")
# fmt: off
_KNOWN_UNITS = frozenset({
    "cm", "mm", "km", "kg", "mg", "ml", "mL", "ft", "in", "yd", "mi", "hr", "hrs", "min",
    "mins", "sec", "secs", "lb", "lbs", "oz", "mph", "kph", "kmh", "gal", "units", "unit",
    "degrees", "degree", "dollars", "dollar", "cents", "cent", "euros", "euro", "pounds",
    "pound", "meters", "meter", "metres", "metre", "feet", "foot", "inches", "inch", "miles",
    "mile", "hours", "hour", "minutes", "minute", "seconds", "second", "days", "day",
    "weeks", "week", "years", "year", "liters", "liter", "litres", "litre", "grams", "gram",
    "kilograms", "m2", "cm2",
})
# fmt: on


def _to_fraction(text: str) -> Fraction | None:
    """Read a plain decimal or integer (thousands separators allowed) exactly."""
    if len(text) > MAX_NUMBER_CHARS:
        return None
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _repeating(match: re.Match[str]) -> Fraction | None:
    """The exact value of ``0.1\\overline{6}``, ``0.\\dot{3}``, ``0.(3)`` or ``0.333...``."""
    whole, fixed = match.group(1) or "0", match.group(2)
    period = next((g for g in match.groups()[2:6] if g), None)
    if period is None:  # "0.333...": the shortest period repeated at least twice at the end
        for size in range(1, 7):
            tail = fixed[-size:]
            if len(fixed) >= 2 * size and fixed.endswith(tail * 2):
                period, fixed = tail, fixed[: -2 * size]
                while fixed.endswith(period):
                    fixed = fixed[: -len(period)]
                break
        else:
            return None
    base = Fraction(int(whole + fixed)) / 10 ** len(fixed)
    return base + Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))


_WORDS_SMALL = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_WORDS_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2
    )
}
_WORDS_SCALE = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_WORDS_FRACTION = {
    "half": Fraction(1, 2),
    "halves": Fraction(1, 2),
    "third": Fraction(1, 3),
    "thirds": Fraction(1, 3),
    "quarter": Fraction(1, 4),
    "quarters": Fraction(1, 4),
    "fourth": Fraction(1, 4),
    "fourths": Fraction(1, 4),
    "fifth": Fraction(1, 5),
    "fifths": Fraction(1, 5),
}


def _number_words(text: str) -> Fraction | None:
    """Read English number words: "twenty-three", "one hundred and five", "three quarters"."""
    words = text.lower().replace("-", " ").replace(",", " ").split()
    if words and words[0] in ("minus", "negative"):
        value = _number_words(" ".join(words[1:]))
        return None if value is None else -value
    if len(words) >= 2 and words[-1] in _WORDS_FRACTION:
        count = _number_words(" ".join(words[:-1])) if words[:-1] != ["a"] else Fraction(1)
        return None if count is None else count * _WORDS_FRACTION[words[-1]]
    if (
        not words
        or words == ["a"]
        or any(
            w not in _WORDS_SMALL
            and w not in _WORDS_TENS
            and w not in _WORDS_SCALE
            and w not in ("and", "a")
            for w in words
        )
    ):
        return None
    total, current, seen = 0, 0, False
    for word in words:
        if word in ("and", "a"):
            current = current or (1 if word == "a" else 0)
            continue
        seen = True
        if word in _WORDS_SMALL:
            current += _WORDS_SMALL[word]
        elif word in _WORDS_TENS:
            current += _WORDS_TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        else:
            total += (current or 1) * _WORDS_SCALE[word]
            current = 0
    return Fraction(total + current) if seen else None


_UNIT_SUFFIX = re.compile(
    r"(?P<head>.*?[\d}%])(?P<space>\s?)(?P<tail>(?:(?:square|cubic|sq)\s)?[A-Za-z]+"
    r"(?:\^\{?\d\}?)?(?:/[A-Za-z]+(?:\^\{?\d\}?)?)?(?:\s[A-Za-z]+(?:\^\{?\d\}?)?){0,3})"
)


def _strip_units(text: str) -> str:
    """Drop a trailing unit ("12 cm", "5cm^2", "3 square units", "4 dollars") after a number.

    A unit after a space may be any word but a lone letter that is no unit ("5 x"); glued
    to the number it must be a known unit or a word of three letters or more ("5cm",
    "\\frac{1}{2}apples"), so that "2xy" stays an expression.
    """
    match = _UNIT_SUFFIX.fullmatch(text)
    if match is None:
        return text
    first = re.match(r"[A-Za-z]+", match.group("tail")).group(0)  # type: ignore[union-attr]
    if match.group("space"):
        if len(first) == 1 and first not in _SINGLE_UNITS and match.group("tail") == first:
            return text
        return match.group("head")
    if first in _KNOWN_UNITS or (len(first) >= 3 and first not in _NOT_UNITS):
        return match.group("head")
    return text


_NOT_UNITS = frozenset(
    ["sqrt", "frac", "pi", "infty", "cdot", "times", "sin", "cos", "tan", "log", "ln", "exp"]
)


def _read_plain(body: str) -> NumberValue | None:
    """Read an unsigned number body: decimal, integer, fraction, mixed, scientific, repeating."""
    if _PLAIN.fullmatch(body):
        value = _to_fraction(body)
        return None if value is None else NumberValue(value, "." not in body)
    if (match := _MIXED.fullmatch(body)) is not None:
        whole, num, den = (int(g) for g in match.groups())
        return NumberValue(whole + Fraction(num, den), True) if den else None
    if (match := _FRAC.fullmatch(body) or _SLASH.fullmatch(body)) is not None:
        num, den = (_read_signed(g) for g in match.groups())
        if num is None or den is None or den.value == 0:
            return None
        return NumberValue(num.value / den.value, num.is_exact and den.is_exact)
    if (match := _SCIENTIFIC.fullmatch(body)) is not None:
        mantissa = _to_fraction(match.group(1))
        return (
            None
            if mantissa is None
            else NumberValue(mantissa * Fraction(10) ** int(match.group(2)), False)
        )
    if (match := _TIMES_TEN.fullmatch(body)) is not None:
        mantissa_text = match.group(1) or "1"
        mantissa = _to_fraction(mantissa_text)
        exponent = int(match.group(2) or match.group(3))
        if mantissa is None:
            return None
        return NumberValue(mantissa * Fraction(10) ** exponent, "." not in mantissa_text)
    if (match := _REPEATING.fullmatch(body)) is not None:
        value = _repeating(match)
        return None if value is None else NumberValue(value, True)
    return None


def _read_signed(text: str) -> NumberValue | None:
    """Read a number with an optional sign in front."""
    sign, body = _SIGNED.fullmatch(text).groups()  # type: ignore[union-attr]
    number = _read_plain(body)
    if number is None:
        return None
    return NumberValue(-number.value if sign == "-" else number.value, number.is_exact)


@functools.lru_cache(maxsize=65536)
def read_number(form: str, *, words: bool = True) -> NumberValue | None:
    r"""Read an answer form (see ``answer_form``) as a number, or return ``None``.

    Understands integers, decimals, thousands separators, ``a/b``, ``\frac{a}{b}``, mixed
    numbers (``3\frac{1}{2}``), ``1.5e3``, ``2\times10^{-3}``, repeating decimals
    (``0.\overline{3}``, ``0.333...``), a trailing ``%`` and units, and with ``words``
    English number words.

    >>> read_number("3\\frac{1}{2}"), read_number("0.1\\overline{6}").value
    (NumberValue(value=Fraction(7, 2), is_exact=True, is_percent=False), Fraction(1, 6))
    >>> read_number("25%"), read_number("x+1") is None
    (NumberValue(value=Fraction(25, 1), is_exact=True, is_percent=True), True)
    """
    text = form.strip()
    if not text or len(text) > MAX_NUMBER_CHARS:
        return None
    is_percent = text.endswith("%")
    text = text.removesuffix("%").strip()
    if not is_percent:
        text = _strip_units(text).strip()
        is_percent = text.endswith("%")
        text = text.removesuffix("%").strip()
    text = text.replace(" ", "")
    if text.startswith("+"):
        text = text[1:]
    if text.startswith("-") and text[1:].startswith("-"):
        return None
    number = _read_signed(text)
    if number is None and words and re.fullmatch(r"[A-Za-z ,-]+", form.strip().rstrip("%")):
        value = _number_words(form.strip().rstrip("%").strip())
        number = None if value is None else NumberValue(value, True)
    if number is None:
        return None
    return NumberValue(number.value, number.is_exact, is_percent)


def parse_number(answer: str) -> Fraction | None:
    r"""Return the exact value of a numeric answer, or ``None`` if it is not a number.

    Understands integers, decimals, thousands separators, ``a/b``, ``\frac{a}{b}``,
    mixed numbers, ``$`` signs and a trailing ``%`` (which divides by 100). Number words
    are left to the equivalence.

    >>> parse_number("1,234.5")
    Fraction(2469, 2)
    >>> parse_number(r"-\frac{3}{6}"), parse_number("12.5%")
    (Fraction(-1, 2), Fraction(1, 8))
    >>> parse_number("x + 1") is None
    True
    """
    number = read_number(answer_form(answer), words=False)
    if number is None:
        return None
    return number.value / 100 if number.is_percent else number.value


def fraction_key(value: Fraction) -> str:
    """Format an exact value as a voting key: "18", "-1/2"."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"
