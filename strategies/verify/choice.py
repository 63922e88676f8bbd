"""Multiple-choice verifier: find the chosen letter ("The answer is (B)", "B)", "Answer: b")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from strategies.verify.result import VerifierResult

__all__ = ["ChoiceConfig", "extract_choice", "verify_choice"]

_PROSE_AFTER = re.compile(r"[ \t]+[a-z]")


@dataclass(frozen=True, kw_only=True)
class ChoiceConfig:
    """The valid choice letters, upper case (default A to E)."""

    choices: str = "ABCDE"

    def __post_init__(self) -> None:
        letters = self.choices
        if (
            not isinstance(letters, str)
            or not letters
            or not all("A" <= c <= "Z" for c in letters)
            or len(set(letters)) != len(letters)
        ):
            raise ValueError(f"choices must be distinct upper-case letters A-Z, got {letters!r}")


def _patterns(choices: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Return the "answer is/answer:" pattern, the "B)" pattern and the bare-letter pattern."""
    letters = re.escape(choices)
    phrase = re.compile(
        r"answer(?:\s+is)?\s*(?:[:=]|\bis\b)?\s*\**\s*[\(\[]?\s*([" + letters + r"])\b",
        re.IGNORECASE,
    )
    paren = re.compile(r"(?:^|[\s(\[])([" + letters + r"])\)", re.MULTILINE)
    bare = re.compile(r"(?<![A-Za-z'])([" + letters + r"])(?![A-Za-z'])")
    return phrase, paren, bare


def extract_choice(text: str, config: ChoiceConfig | None = None) -> str | None:
    """Return the chosen letter (upper case), or ``None`` when no choice can be found.

    Tried in order: the last "answer is (B)" / "Answer: b"; the last "B)"; the last
    standalone capital letter among the choices (a capital followed by a lower-case word,
    as in "A train", is read as prose).

    >>> [extract_choice(t) for t in ("The answer is (B).", "C) 12", "Answer: d", "So E.")]
    ['B', 'C', 'D', 'E']
    >>> extract_choice("A train leaves at noon.") is None
    True
    """
    config = config or ChoiceConfig()
    for pattern in _patterns(config.choices):
        letters = [
            match.group(1).upper() for match in pattern.finditer(text) if not _is_prose(match)
        ]
        if letters:
            return letters[-1]
    return None


def _is_prose(match: re.Match[str]) -> bool:
    """True for a letter that starts prose: "a number", "A train", "I think"."""
    letter, rest = match.group(1), match.string[match.end(1) :]
    follows_word = _PROSE_AFTER.match(rest) is not None
    return follows_word and (letter.islower() or letter in "AI")


def _reference_letter(reference: str, choices: str) -> str | None:
    """Read the gold letter from "B", "(B)", "b)" or "Answer: B"."""
    core = reference.strip().strip("().[] ").upper()
    if len(core) == 1 and core in choices:
        return core
    return extract_choice(reference, ChoiceConfig(choices=choices))


def verify_choice(text: str, reference: str, config: ChoiceConfig | None = None) -> VerifierResult:
    """Pass when the chosen letter is the reference letter.

    >>> verify_choice("I pick (c) -- the answer is (C)", "c").passed
    True
    """
    config = config or ChoiceConfig()
    gold = _reference_letter(reference, config.choices)
    if gold is None:
        raise ValueError(f"reference {reference!r} names none of the choices {config.choices}")
    answer = extract_choice(text, config)
    if answer is None:
        return VerifierResult(answer=None, passed=False, score=0.0, detail="no choice found")
    passed = answer == gold
    detail = f"chose {answer}, reference {gold}"
    return VerifierResult(answer=answer, passed=passed, score=float(passed), detail=detail)
