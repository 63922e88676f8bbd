"""Verifiers: decide whether a candidate's answer is correct."""

from __future__ import annotations

from strategies.verify.choice import ChoiceConfig, extract_choice, verify_choice
from strategies.verify.exact import ExactConfig, verify_exact
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

__all__ = [
    "ChoiceConfig",
    "ExactConfig",
    "JudgeConfig",
    "MathAnswerConfig",
    "RegexConfig",
    "SelfEvalConfig",
    "VerifierResult",
    "canonical_answer",
    "extract_answer",
    "extract_choice",
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
]
