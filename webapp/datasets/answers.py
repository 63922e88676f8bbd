"""Reference answers inside common dataset layouts: GSM8K's ``#### 42`` and MATH's last
``\\boxed{}``; and whether a value looks like a number (for guessing a dataset's kind)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["boxed_answer", "gsm8k_answer", "looks_numeric"]

_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def gsm8k_answer(text: str) -> str | None:
    """The text after the last ``####``, stripped, without thousands commas.

    >>> gsm8k_answer("3 + 4 = <<3+4=7>>7 apples\\n#### 1,234")
    '1234'
    """
    if "####" not in text:
        return None
    answer = text.rsplit("####", 1)[1].strip()
    return _DIGIT_COMMA.sub("", answer) if "," in answer else answer


def boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (nested braces balanced), or None.

    >>> boxed_answer(r"so $x = \\boxed{2}$, hence $\\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    """
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index].strip()
        index += 1
    return None


_NUMBER = re.compile(r"\s*[-+]?\$?\s*(\d[\d,]*(\.\d+)?|\.\d+)(/\d+)?\s*%?\s*")


def looks_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and _NUMBER.fullmatch(value) is not None
