"""Read-only views of an experiment's results, shaped as plain data for templates."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.metrics.stats import holm_bonferroni, paired_comparison
from webapp.datasets.models import Problem
from webapp.experiments.code_verification import matrix_view, strategy_matrices
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample, Verdict
from webapp.experiments.verification import verifier_for


@dataclass(frozen=True)
class Figure:
    value: float | None
    low: float | None = None
    high: float | None = None


def _metrics(experiment: Experiment) -> dict[int, dict[tuple[str, int], Figure]]:
    out: dict[int, dict[tuple[str, int], Figure]] = defaultdict(dict)
    for m in Metric.objects.filter(strategy__experiment=experiment):
        out[m.strategy_id][(m.name, m.k)] = Figure(m.value, m.ci_low, m.ci_high)
    return out


def summary_rows(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per strategy: pass@k and sel@k per k (None where k > n), accuracy with
    its confidence interval, coverage forecast, diversity and cost."""
    strategies = list(experiment.strategies.select_related("pool"))
    metrics = _metrics(experiment)
    shared: dict[int, int] = defaultdict(int)
    for s in strategies:
        shared[s.pool_id] += 1
    rows = []
    for s in strategies:
        values = metrics.get(s.pk, {})

        def get(name: str, k: int = 0, values: dict[tuple[str, int], Figure] = values) -> Figure:
            return values.get((name, k), Figure(None))

        forecast = next(((k, f) for (name, k), f in values.items()
                         if name == "coverage_forecast"), None)
        rows.append(
            {
                "strategy": s,
                "pass_at_k": [get("pass_at_k", k) if k <= s.n else None
                              for k in experiment.k_values],
                "sel_at_k": [get("sel_at_k", k) if k <= s.n else None
                             for k in experiment.k_values],
                "pass_hat_k": [get("pass_hat_k", k) if k <= s.n else None
                               for k in experiment.k_values],
                "accuracy": get("selected_accuracy"),
                "oracle_gap": get("oracle_gap"),
                "forecast": forecast,
                "fit_b": get("coverage_fit_b"),
                "fit_r2": get("coverage_fit_r2"),
                "distinct": [get("distinct_n", n) for n in (1, 2, 3)],
                "self_bleu": get("self_bleu_diversity"),
                "embedding": get("embedding_distance"),
                "unique": get("unique_answers"),
                "entropy": get("answer_entropy"),
                "mean_tokens": get("mean_generated_tokens"),
                "prompt_tokens": get("mean_prompt_tokens"),
                "tokens": get("generated_tokens"),
                "seconds": get("generation_seconds"),
                "tokens_per_second": get("tokens_per_second"),
                "adaptive": get("adaptive_samples"),
                "adaptive_saved": get("adaptive_saved_fraction"),
                "shares_pool": shared[s.pool_id] > 1,
            }
        )
    return rows


def chart_data(experiment: Experiment, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Plain data for the pass@k / sel@k chart (drawn by static/js/charts.js)."""
    series = []
    for row in rows:
        for metric in ("pass_at_k", "sel_at_k"):
            points = [
                {"k": k, "value": f.value}
                for k, f in zip(experiment.k_values, row[metric], strict=True)
                if f is not None and f.value is not None
            ]
            if points:
                series.append({
                    "label": f"{row['strategy'].label} · {metric.replace('_at_', '@')}",
                    "metric": metric,
                    "points": points,
                })
    return {"k_values": list(experiment.k_values), "series": series}


def comparisons(experiment: Experiment) -> list[dict[str, Any]]:
    """Each strategy against the first one on the same problems (paired, per problem)."""
    strategies = list(experiment.strategies.all())
    if len(strategies) < 2:
        return []
    credits: dict[int, dict[int, float]] = defaultdict(dict)
    for strategy_id, problem_id, credit in ProblemResult.objects.filter(
        strategy__experiment=experiment, selected_credit__isnull=False
    ).values_list("strategy_id", "problem_id", "selected_credit"):
        credits[strategy_id][problem_id] = credit
    base = strategies[0]
    out = []
    for other in strategies[1:]:
        shared_problems = sorted(set(credits[base.pk]) & set(credits[other.pk]))
        if len(shared_problems) < 2:
            continue
        a = np.array([credits[other.pk][p] for p in shared_problems])
        b = np.array([credits[base.pk][p] for p in shared_problems])
        result = paired_comparison(a, b, seed=experiment.seed, n_resamples=5000)
        out.append({"strategy": other, "baseline": base, "result": result,
                    "problems": len(shared_problems)})
    # Several strategies against one baseline: Holm-Bonferroni keeps the family-wise
    # error rate at the nominal level.
    if out:
        adjusted = holm_bonferroni([c["result"].p_value_sign_flip for c in out])
        for comparison, p_value in zip(out, adjusted, strict=True):
            comparison["p_holm"] = float(p_value)
    return out


def problem_grid(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per problem with each strategy's selected answer and credit."""
    strategies = list(experiment.strategies.all())
    results = {
        (r.strategy_id, r.problem_id): r
        for r in ProblemResult.objects.filter(strategy__experiment=experiment)
    }
    rows = []
    for problem in experiment.problems.order_by("index"):
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
    verifier = verifier_for(experiment)
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
        matrix = strategy_matrices(strategy).get(problem.pk)
        tests: list[str] = []
        passed: dict[int, int | None] = {}
        if matrix is not None:
            array, executed = matrix_view(matrix, strategy.n, strategy.test_n)
            keep = [j for j, t in enumerate(matrix.column_samples) if t < strategy.test_n]
            tests = [matrix.tests[matrix.columns[j]] for j in keep]
            passed = {i: int(array[row].sum()) for row, i in enumerate(executed)}
        columns.append(
            {
                "strategy": strategy,
                "result": result,
                "tests": tests,
                "candidates": [
                    {
                        "sample": s,
                        "verdict": verdicts.get(s.pk),
                        "is_selected": result is not None and result.selected_index == s.index,
                        "tests_passed": passed.get(s.index) if matrix else None,
                        "executed": s.index in passed,
                    }
                    for s in samples
                ],
            }
        )
    return columns
