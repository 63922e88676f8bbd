"""Letters, yes/no and short words: answers read and compared without a symbolic parser.

The ``math`` verifier sends a reference that is a choice letter ("B", "(c)") or a yes/no
answer here, so that "B" is never parsed as a variable and "no" never as ``n*o``.

>>> verify_short_answer("Both fail, so the answer is (D).", "D").passed
True
>>> verify_short_answer("It does not converge. Final answer: No.", "no").passed
True
"""

from __future__ import annotations

import re

from strategies.verify.choice import ChoiceConfig, extract_choice
from strategies.verify.extract import extract_answer
from strategies.verify.result import VerifierResult

__all__ = ["extract_short_answer", "reference_kind", "short_answer_key", "verify_short_answer"]

_LETTERS = "ABCDEFGHIJ"
_YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no", "y": "yes", "n": "no"}
_CHOICE_REFERENCE = re.compile(
    r"(?:answer\s*[:=]?\s*|option\s*|choice\s*)?[(\[]?\s*([A-Ja-j])\s*[)\].:]?",
    re.IGNORECASE,
)
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|boxed)\{([^{}]*)\}")
_YES_NO_WORD = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_LEADING_LETTER = re.compile(r"[(\[]?\s*([A-J])\s*(?:[)\].:]|$|\s)")


def _plain(text: str) -> str:
    """Drop ``$``, ``**`` and ``\\text{}``-style wrappers around a short answer."""
    previous = None
    while previous != text:
        previous = text
        text = _WRAPPERS.sub(r"\1", text)
    return text.replace("$", "").replace("**", "").strip().strip(".").strip()


def reference_kind(reference: str) -> str | None:
    """``"choice"`` for a letter reference, ``"yes_no"`` for yes/no/true/false, else ``None``.

    Only upper-case letters, or a letter in brackets, count as choices: "e" and "x" are
    math answers.

    >>> reference_kind("(B)"), reference_kind("b)"), reference_kind("True"), reference_kind("x")
    ('choice', 'choice', 'yes_no', None)
    """
    text = _plain(reference)
    if text.casefold() in _YES_NO and len(text) > 1:
        return "yes_no"
    match = _CHOICE_REFERENCE.fullmatch(text)
    if match is None:
        return None
    letter = match.group(1)
    bracketed = text != letter
    return "choice" if letter.isupper() or bracketed else None


def short_answer_key(answer: str, kind: str) -> str | None:
    """The letter (upper case) or ``yes``/``no`` that an answer or reference names.

    >>> short_answer_key("(c) 12", "choice"), short_answer_key("True.", "yes_no")
    ('C', 'yes')
    """
    text = _plain(answer)
    if kind == "yes_no":
        word = _YES_NO_WORD.search(text)
        return _YES_NO[word.group(1).casefold()] if word is not None else None
    match = _CHOICE_REFERENCE.fullmatch(text) or _LEADING_LETTER.match(text.upper())
    return match.group(1).upper() if match is not None else None


def extract_short_answer(text: str, kind: str) -> str | None:
    """Read the chosen letter or yes/no from a model output.

    The final-answer markers come first (the last one wins); without one, the choice
    verifier's letter patterns, or the last yes/no/true/false word.

    >>> extract_short_answer("(A) is wrong since ... so I pick (C).", "choice")
    'C'
    """
    answer = extract_answer(text)
    if answer is not None and (key := short_answer_key(answer, kind)) is not None:
        return key
    if kind == "choice":
        return extract_choice(text, ChoiceConfig(choices=_LETTERS))
    words = _YES_NO_WORD.findall(text)
    return _YES_NO[words[-1].casefold()] if words else None


def verify_short_answer(text: str, reference: str) -> VerifierResult:
    """Pass when the output names the reference's letter, yes/no, or (case-folded) words."""
    kind = reference_kind(reference) or "text"
    if kind == "text":
        gold = " ".join(_plain(reference).casefold().split())
        found = extract_answer(text)
        answer = None if found is None else " ".join(_plain(found).casefold().split())
    else:
        gold = short_answer_key(reference, kind) or ""
        answer = extract_short_answer(text, kind)
    if answer is None:
        return VerifierResult(answer=None, passed=False, score=0.0, detail="no answer found")
    passed = answer == gold
    detail = "equivalent to the reference" if passed else "differs from the reference"
    return VerifierResult(answer=answer, passed=passed, score=float(passed), detail=detail)
