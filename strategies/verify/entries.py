"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.verify.choice import ChoiceConfig, verify_choice
from strategies.verify.code import UnitTestConfig, unit_test_program
from strategies.verify.exact import ExactConfig, verify_exact
from strategies.verify.judge import JudgeConfig, judge_responses
from strategies.verify.math import MathAnswerConfig, verify_math_result
from strategies.verify.regex import RegexConfig, verify_regex
from strategies.verify.self_eval import SelfEvalConfig, self_eval_scores

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "math",
        "verifier",
        verify_math_result,
        MathAnswerConfig,
        "Extract the final answer and compare it with the gold answer as math.",
    ),
    Entry(
        "exact",
        "verifier",
        verify_exact,
        ExactConfig,
        "The whole output equals the reference (whitespace and case normalised).",
    ),
    Entry(
        "regex",
        "verifier",
        verify_regex,
        RegexConfig,
        "Extract the answer with a regular expression group and compare it.",
    ),
    Entry(
        "choice",
        "verifier",
        verify_choice,
        ChoiceConfig,
        "Read the multiple-choice letter and compare it with the reference letter.",
    ),
    Entry(
        "self_eval",
        "verifier",
        self_eval_scores,
        SelfEvalConfig,
        "Score by the model's probability that starting over would not do better.",
    ),
    Entry(
        "judge",
        "verifier",
        judge_responses,
        JudgeConfig,
        "LLM-as-judge with the local model: majority of n graded verdicts.",
    ),
    Entry(
        "unit_tests",
        "verifier",
        unit_test_program,
        UnitTestConfig,
        "Run the problem's unit tests on the program in the sandbox (code datasets).",
    ),
)
