"""Verification: an extracted answer and a verdict for every sample."""

from __future__ import annotations

from collections.abc import Sequence

from strategies.verify.math import MathAnswerConfig, extract_answer, verify_math
from webapp.datasets.models import Dataset
from webapp.experiments.models import Sample, Verdict

MATH_VERIFIER = "math"
NO_REFERENCE_VERIFIER = "extract"


def verifier_for(dataset: Dataset) -> str:
    """The verifier a dataset's samples are judged by."""
    if dataset.kind == Dataset.Kind.MATH:
        return MATH_VERIFIER
    return NO_REFERENCE_VERIFIER


def record_verdicts(dataset: Dataset, pool_id: int, problem_ids: Sequence[int]) -> int:
    """Judge every sample of the slice that has no verdict yet; returns how many were new."""
    verifier = verifier_for(dataset)
    config = MathAnswerConfig()
    pending = (
        Sample.objects.filter(pool_id=pool_id, problem_id__in=problem_ids)
        .exclude(verdicts__verifier=verifier)
        .select_related("problem")
    )
    verdicts = []
    for sample in pending:
        gold = sample.problem.answer
        if verifier == MATH_VERIFIER and gold:
            answer, correct = verify_math(sample.text, gold, config)
            outcome = Verdict.Outcome.PASS if correct else Verdict.Outcome.FAIL
        else:
            answer, outcome = extract_answer(sample.text), Verdict.Outcome.UNJUDGED
        verdicts.append(
            Verdict(sample=sample, verifier=verifier, answer=answer, outcome=outcome)
        )
    Verdict.objects.bulk_create(verdicts, ignore_conflicts=True)
    return len(verdicts)
