"""Regex verifier: pull the answer out of the output with a pattern, then compare it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from strategies.verify.equivalence import numbers_equal
from strategies.verify.normalize import answer_form, read_number
from strategies.verify.result import VerifierResult

__all__ = ["MAX_PATTERN_LENGTH", "RegexConfig", "extract_with_pattern", "verify_regex"]

MAX_PATTERN_LENGTH = 500
DEFAULT_PATTERN = r"(?i)the\s+(?:final\s+)?answer\s+is\s*:?\s*(?P<answer>[^\n]*?)\s*\.?\s*$"
_OCCURRENCES = ("first", "last")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """Compile (and cache) a pattern; multi-line so ``$`` ends a line."""
    return re.compile(pattern, re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class RegexConfig:
    """The pattern, which group holds the answer ("" = group ``answer``, else the first)."""

    pattern: str = DEFAULT_PATTERN
    group: str = ""
    occurrence: str = "last"
    case_sensitive: bool = False
    numeric: bool = True
    max_text_chars: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ValueError("pattern must be a non-empty string")
        if len(self.pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"pattern must be at most {MAX_PATTERN_LENGTH} characters long")
        try:
            compiled = _compile(self.pattern)
        except (re.error, RecursionError, OverflowError) as error:
            raise ValueError(f"pattern is not a valid regular expression: {error}") from None
        if self.group:
            exists = (
                1 <= int(self.group) <= compiled.groups
                if self.group.isdigit()
                else self.group in compiled.groupindex
            )
            if not exists:
                raise ValueError(f"group {self.group!r} is not a group of the pattern")
        if self.occurrence not in _OCCURRENCES:
            raise ValueError(f"occurrence must be one of {_OCCURRENCES}, got {self.occurrence!r}")
        for name in ("case_sensitive", "numeric"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.max_text_chars, bool) or self.max_text_chars < 1:
            raise ValueError(f"max_text_chars must be >= 1, got {self.max_text_chars!r}")


def extract_with_pattern(text: str, config: RegexConfig | None = None) -> str | None:
    """Return the configured group of the first or last match in ``text``, or ``None``.

    Only the last ``max_text_chars`` characters are searched, to bound the work.

    >>> extract_with_pattern("so... The answer is 42.")
    '42'
    >>> extract_with_pattern("id=7, id=9", RegexConfig(pattern=r"id=(\\d+)", occurrence="first"))
    '7'
    """
    config = config or RegexConfig()
    compiled = _compile(config.pattern)
    matches = list(compiled.finditer(text[-config.max_text_chars :]))
    if not matches:
        return None
    match = matches[-1] if config.occurrence == "last" else matches[0]
    if config.group:
        value = match.group(int(config.group) if config.group.isdigit() else config.group)
    elif "answer" in compiled.groupindex:
        value = match.group("answer")
    else:
        value = match.group(1) if compiled.groups else match.group(0)
    return None if value is None else value.strip()


def _same_number(answer: str, reference: str) -> bool:
    """True when both read as numbers and the numbers are equal (ALGORITHMS §17 step 2)."""
    x = read_number(answer_form(answer), words=False)
    y = read_number(answer_form(reference), words=False)
    return x is not None and y is not None and numbers_equal(x, y)


def verify_regex(text: str, reference: str, config: RegexConfig | None = None) -> VerifierResult:
    """Pass when the extracted group equals the reference (as text, or as a number).

    >>> verify_regex("The answer is 1,000.", "1000").passed
    True
    >>> verify_regex("no answer", "3").passed
    False
    """
    config = config or RegexConfig()
    answer = extract_with_pattern(text, config)
    if answer is None:
        return VerifierResult(answer=None, passed=False, score=0.0, detail="pattern not found")
    left, right = " ".join(answer.split()), " ".join(reference.split())
    if not config.case_sensitive:
        left, right = left.casefold(), right.casefold()
    passed = left == right or (config.numeric and _same_number(answer, reference))
    detail = "matches the reference" if passed else "differs from the reference"
    return VerifierResult(answer=answer, passed=passed, score=float(passed), detail=detail)
