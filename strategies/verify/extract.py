"""Find the final answer in a model's free-text output (GSM8K, "The answer is", boxed)."""

from __future__ import annotations

import re

__all__ = ["extract_answer", "last_boxed"]

_GSM8K = re.compile(r"#### (\-?[\$0-9\.\,]+)")
_ANSWER_IS = re.compile(r"the\s+(?:final\s+)?answer\s+is\b", re.IGNORECASE)
_SHORT_WORD_ANSWER = 3  # "(C)", "x", "yes": short non-numeric answers are still answers
_LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_LEADING_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?")
_AFTER_NUMBER = frozenset(" .,;:!?)$*")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _clean_number(text: str) -> str:
    """Drop ``,`` and ``$`` and a trailing ``.`` from a number-like string."""
    return text.replace(",", "").replace("$", "").strip().rstrip(".")


def _clean_text(text: str) -> str:
    """Trim an answer phrase: math-mode ``$``, trailing ``.``, thousands separators."""
    text = text.strip().strip("$").strip().rstrip(".").strip().strip("$").strip()
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    return text


def last_boxed(text: str) -> str | None:
    r"""Return the contents of the last ``\boxed{...}`` / ``\fbox{...}`` / ``\boxed x``.

    Braces are matched by depth; an unbalanced box gives ``None``.

    >>> last_boxed(r"so \boxed{\frac{1}{2}} and")
    '\\frac{1}{2}'
    >>> last_boxed(r"$\boxed 5$") is None, last_boxed(r"$\boxed 5$")
    (False, '5')
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start + (6 if text.startswith("\\boxed", start) else 5) :]
    if rest.startswith(" "):
        match = re.match(r"\s+([^\s$]+)", rest)
        return match.group(1) if match else None
    open_at = rest.find("{")
    if open_at < 0 or rest[:open_at].strip():
        return None
    depth = 0
    for i, char in enumerate(rest[open_at:], start=open_at):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[open_at + 1 : i]
    return None


def _answer_phrase(text: str) -> str | None:
    """Return X from the last "The answer is X" (case-insensitive), or ``None``."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    phrase = text[matches[-1].end() :].split("\n", 1)[0].lstrip(" \t:")
    boxed = last_boxed(phrase)
    if boxed is not None:
        return _clean_text(boxed) or None
    # A sentence ends at ". ", so "3.5" survives but "42. Next question" is cut.
    phrase = re.split(r"\.\s", phrase, maxsplit=1)[0]
    if "=" in phrase:  # "The answer is x = 5" or "... 2 + 3 = 5": the value is on the right.
        phrase = phrase.rsplit("=", 1)[1]
    phrase = phrase.replace("**", "").strip().lstrip("$").strip()
    leading = _LEADING_NUMBER.match(phrase)
    if leading is not None:
        rest = phrase[leading.end() :]
        if not rest or rest[0] in _AFTER_NUMBER:  # "12 apples", "12.", "-5$"
            return _clean_number(leading.group(0)) or None
    phrase = _clean_text(phrase)
    if any(char.isdigit() for char in phrase) or "\\" in phrase:
        return phrase
    # Prose such as "the number of apples" is not an answer; fall through to later rules.
    return phrase if 0 < len(phrase) <= _SHORT_WORD_ANSWER else None


def extract_answer(text: str) -> str | None:
    r"""Return the final answer in ``text``, or ``None`` when nothing can be parsed.

    Tried in order: GSM8K's ``#### x``; the last "The answer is X"; the last
    ``\boxed{}`` (brace-matched; also ``\fbox`` and ``\boxed 5``); the last number.
    Numbers lose ``,`` and ``$`` and a trailing ``.``.

    >>> extract_answer("3 + 4 = 7 so\n#### 1,007")
    '1007'
    >>> extract_answer("Adding gives 12 apples. The answer is 12.")
    '12'
    >>> extract_answer(r"Thus $\boxed{\frac{3}{4}}$.")
    '\\frac{3}{4}'
    >>> extract_answer("I have no idea") is None
    True
    """
    gsm = _GSM8K.search(text)
    if gsm is not None:
        value = _clean_number(gsm.group(1))
        if any(char.isdigit() for char in value):
            return value
    phrase = _answer_phrase(text)
    if phrase is not None:
        return phrase
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return _clean_text(boxed)
    numbers = _LAST_NUMBER.findall(text)
    if numbers:
        return _clean_number(numbers[-1]) or None
    return None
