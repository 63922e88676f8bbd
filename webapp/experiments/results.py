"""Selection and metrics for a finished pool: the cheap, replayable part.

Rewriting a strategy's results replaces them whole inside one transaction, so
a redelivered metrics task leaves exactly one copy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from strategies.metrics.passk import pass_at_k
from strategies.select.majority import majority_vote
from strategies.verify.math import canonical_answer, is_equivalent
from webapp.experiments.models import (
    Experiment,
    Metric,
    ProblemResult,
    Sample,
    Strategy,
    Verdict,
)
from webapp.experiments.verification import verifier_for


@dataclass(frozen=True)
class ScoredSample:
    index: int
    answer: str | None
    correct: bool | None  # None: the problem has no reference answer
    generated_tokens: int
    prompt_tokens: int
    seconds: float


@dataclass(frozen=True)
class Selection:
    index: int | None
    answer: str | None
    credit: float | None
    tied: tuple[str, ...]


def select(selector: str, samples: list[ScoredSample], gold: str) -> Selection:
    """Apply a selector to one problem's samples (in index order)."""
    judged = bool(gold)
    if selector == Strategy.Selector.FIRST:
        first = samples[0]
        credit = (1.0 if first.correct else 0.0) if judged else None
        return Selection(first.index, first.answer, credit, ())
    if selector == Strategy.Selector.MAJORITY:
        vote = majority_vote([s.answer for s in samples])
        if vote.answer is None:
            return Selection(None, None, 0.0 if judged else None, ())
        key = canonical_answer(vote.answer)
        index = next(s.index for s in samples if canonical_answer(s.answer) == key)
        credit = None
        if judged:
            hits = sum(1 for answer in vote.tied if is_equivalent(answer, gold))
            credit = hits / len(vote.tied)
        return Selection(index, vote.answer, credit, tuple(vote.tied))
    raise ValueError(f"Unknown selector {selector!r}")


def _scored_samples(strategy: Strategy, verifier: str) -> dict[int, list[ScoredSample]]:
    verdicts = dict(
        Verdict.objects.filter(
            sample__pool_id=strategy.pool_id, verifier=verifier
        ).values_list("sample_id", "outcome")
    )
    answers = dict(
        Verdict.objects.filter(
            sample__pool_id=strategy.pool_id, verifier=verifier
        ).values_list("sample_id", "answer")
    )
    by_problem: dict[int, list[ScoredSample]] = defaultdict(list)
    rows = Sample.objects.filter(
        pool_id=strategy.pool_id,
        problem__dataset_id=strategy.experiment.dataset_id,
        index__lt=strategy.n,
    ).order_by("problem_id", "index")
    for sample in rows:
        outcome = verdicts.get(sample.pk)
        correct = None if outcome in (None, Verdict.Outcome.UNJUDGED) else (
            outcome == Verdict.Outcome.PASS
        )
        by_problem[sample.problem_id].append(
            ScoredSample(
                index=sample.index,
                answer=answers.get(sample.pk),
                correct=correct,
                generated_tokens=sample.generated_tokens,
                prompt_tokens=sample.prompt_tokens,
                seconds=sample.seconds,
            )
        )
    return by_problem


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def compute_strategy_results(strategy: Strategy, k_values: list[int]) -> None:
    experiment = strategy.experiment
    verifier = verifier_for(experiment.dataset)
    problems = {p.pk: p for p in experiment.dataset.problems.all()}
    by_problem = _scored_samples(strategy, verifier)

    results: list[ProblemResult] = []
    pass_values: dict[int, list[float]] = defaultdict(list)
    credits: list[float] = []
    generated: list[int] = []
    prompt: list[int] = []
    seconds = 0.0
    for problem_id, problem in problems.items():
        samples = by_problem.get(problem_id, [])
        if not samples:
            continue
        selection = select(strategy.selector, samples, problem.answer)
        n = len(samples)
        n_correct = None
        if problem.answer:
            n_correct = sum(1 for s in samples if s.correct)
            for k in k_values:
                if k <= n:
                    pass_values[k].append(pass_at_k(n, n_correct, k))
        if selection.credit is not None:
            credits.append(selection.credit)
        generated.extend(s.generated_tokens for s in samples)
        prompt.extend(s.prompt_tokens for s in samples)
        seconds += sum(s.seconds for s in samples)
        results.append(
            ProblemResult(
                strategy=strategy,
                problem_id=problem_id,
                n=n,
                n_correct=n_correct,
                selected_index=selection.index,
                selected_answer=selection.answer,
                selected_credit=selection.credit,
                tied_answers=list(selection.tied),
            )
        )

    metrics = [Metric(strategy=strategy, name="pass_at_k", k=k, value=_mean(v))
               for k, v in sorted(pass_values.items())]
    metrics += [
        Metric(strategy=strategy, name="selected_accuracy", value=_mean(credits)),
        Metric(strategy=strategy, name="mean_generated_tokens", value=_mean(generated)),
        Metric(strategy=strategy, name="mean_prompt_tokens", value=_mean(prompt)),
        Metric(strategy=strategy, name="generated_tokens", value=float(sum(generated))),
        Metric(strategy=strategy, name="generation_seconds", value=seconds),
    ]
    with transaction.atomic():
        strategy.results.all().delete()
        strategy.metrics.all().delete()
        ProblemResult.objects.bulk_create(results)
        Metric.objects.bulk_create(metrics)


def compute_results(experiment_id: int) -> None:
    """Select and measure every strategy of the experiment."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    for strategy in experiment.strategies.select_related("experiment__dataset"):
        compute_strategy_results(strategy, list(experiment.k_values))
