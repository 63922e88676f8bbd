"""Exact-match verifier: the whole output equals the reference after light normalisation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from strategies.verify.result import VerifierResult

__all__ = ["ExactConfig", "normalize_exact", "verify_exact"]

_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = ".,;:!?\"'`"


@dataclass(frozen=True, kw_only=True)
class ExactConfig:
    """What to ignore before comparing: case, runs of whitespace, edge punctuation."""

    case_sensitive: bool = False
    collapse_whitespace: bool = True
    strip_punctuation: bool = False

    def __post_init__(self) -> None:
        for name in ("case_sensitive", "collapse_whitespace", "strip_punctuation"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")


def normalize_exact(text: str, config: ExactConfig | None = None) -> str:
    """Return ``text`` trimmed and normalised as ``config`` says.

    >>> normalize_exact("  Paris \\n is  nice. ", ExactConfig(strip_punctuation=True))
    'paris is nice'
    """
    config = config or ExactConfig()
    text = text.strip()
    if config.collapse_whitespace:
        text = _SPACES.sub(" ", text)
    if config.strip_punctuation:
        text = text.strip(_EDGE_PUNCTUATION).strip()
    return text if config.case_sensitive else text.casefold()


def verify_exact(text: str, reference: str, config: ExactConfig | None = None) -> VerifierResult:
    """Pass when the normalised output equals the normalised reference.

    >>> verify_exact("  PARIS ", "paris").passed
    True
    >>> verify_exact("Paris", "paris", ExactConfig(case_sensitive=True)).passed
    False
    """
    config = config or ExactConfig()
    answer = normalize_exact(text, config)
    passed = answer == normalize_exact(reference, config)
    detail = "exact match" if passed else "differs from the reference"
    return VerifierResult(answer=answer, passed=passed, score=float(passed), detail=detail)
