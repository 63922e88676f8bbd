"""Read-only views of an experiment's results, shaped as plain data for templates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from webapp.datasets.models import Problem
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample, Verdict
from webapp.experiments.verification import verifier_for


def summary_rows(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per strategy: pass@k per k (None where k > n), accuracy, cost."""
    strategies = list(experiment.strategies.select_related("pool"))
    metrics: dict[int, dict[tuple[str, int], float | None]] = defaultdict(dict)
    for m in Metric.objects.filter(strategy__experiment=experiment):
        metrics[m.strategy_id][(m.name, m.k)] = m.value
    shared = defaultdict(int)
    for s in strategies:
        shared[s.pool_id] += 1
    rows = []
    for s in strategies:
        values = metrics.get(s.pk, {})
        rows.append(
            {
                "strategy": s,
                "pass_at_k": [values.get(("pass_at_k", k)) if k <= s.n else None
                              for k in experiment.k_values],
                "accuracy": values.get(("selected_accuracy", 0)),
                "mean_tokens": values.get(("mean_generated_tokens", 0)),
                "seconds": values.get(("generation_seconds", 0)),
                "shares_pool": shared[s.pool_id] > 1,
            }
        )
    return rows


def problem_grid(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per problem with each strategy's selected answer and credit."""
    strategies = list(experiment.strategies.all())
    results = {
        (r.strategy_id, r.problem_id): r
        for r in ProblemResult.objects.filter(strategy__experiment=experiment)
    }
    rows = []
    for problem in experiment.dataset.problems.order_by("index"):
        cells = [results.get((s.pk, problem.pk)) for s in strategies]
        credits = [c.selected_credit for c in cells if c is not None]
        rows.append(
            {
                "problem": problem,
                "cells": cells,
                "disagree": len(set(credits)) > 1,
            }
        )
    return rows


def problem_columns(experiment: Experiment, problem: Problem) -> list[dict[str, Any]]:
    """Every strategy's candidates for one problem, side by side."""
    verifier = verifier_for(experiment.dataset)
    columns = []
    for strategy in experiment.strategies.all():
        samples = list(
            Sample.objects.filter(
                pool_id=strategy.pool_id, problem=problem, index__lt=strategy.n
            ).order_by("index")
        )
        verdicts = {
            v.sample_id: v
            for v in Verdict.objects.filter(sample__in=samples, verifier=verifier)
        }
        result = ProblemResult.objects.filter(strategy=strategy, problem=problem).first()
        columns.append(
            {
                "strategy": strategy,
                "result": result,
                "candidates": [
                    {
                        "sample": s,
                        "verdict": verdicts.get(s.pk),
                        "is_selected": result is not None and result.selected_index == s.index,
                    }
                    for s in samples
                ],
            }
        )
    return columns
