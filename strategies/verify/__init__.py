"""Verifiers: decide whether a candidate's answer is correct."""

from __future__ import annotations

from strategies.verify.choice import ChoiceConfig, extract_choice, verify_choice
from strategies.verify.equivalence import clear_caches
from strategies.verify.exact import ExactConfig, verify_exact
from strategies.verify.grouping import group_answers
from strategies.verify.judge import JudgeConfig, judge_responses, parse_verdict
from strategies.verify.math import (
    MathAnswerConfig,
    canonical_answer,
    extract_answer,
    is_equivalent,
    normalize_answer,
    verify_math,
    verify_math_result,
)
from strategies.verify.regex import RegexConfig, verify_regex
from strategies.verify.result import VerifierResult
from strategies.verify.self_eval import SelfEvalConfig, self_eval_scores
from strategies.verify.short_text import verify_short_answer

__all__ = [
    "ChoiceConfig",
    "ExactConfig",
    "JudgeConfig",
    "MathAnswerConfig",
    "RegexConfig",
    "SelfEvalConfig",
    "VerifierResult",
    "canonical_answer",
    "clear_caches",
    "extract_answer",
    "extract_choice",
    "group_answers",
    "is_equivalent",
    "judge_responses",
    "normalize_answer",
    "parse_verdict",
    "self_eval_scores",
    "verify_choice",
    "verify_exact",
    "verify_math",
    "verify_math_result",
    "verify_regex",
    "verify_short_answer",
]
