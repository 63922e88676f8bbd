"""Comparing runs: two experiments (their strategies paired up) or two strategies of any
experiments the user can see, on the problems both judged.

Per pair of strategies: selected accuracy on the shared problems with bootstrap
intervals, the paired test of A minus B on per-problem credit (wins, ties, losses; the
mean difference with its paired-bootstrap interval; sign-flip, McNemar and Holm-adjusted
p-values across the pairs, ALGORITHMS section 16), the stored whole-experiment figures
side by side, and the problems where the pairs' selections differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from strategies.metrics.stats import bootstrap_ci, holm_bonferroni, paired_comparison
from webapp.datasets.models import Problem
from webapp.experiments.manifest import manifest_diff
from webapp.experiments.models import Experiment, ProblemResult, Strategy
from webapp.experiments.queries import Figure, metric_figures
from webapp.experiments.services import experiments_for_user

SEED = 0
RESAMPLES = 10_000
# Problems listed where the pairs differ; the rest are counted.
MAX_DIFFERING = 300


@dataclass(frozen=True)
class Pair:
    a: Strategy
    b: Strategy


def get_strategy_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Strategy:
    """The strategy, if ``user`` belongs to its experiment's team; 404 for everybody else."""
    strategy = Strategy.objects.select_related("experiment__team", "experiment__dataset").filter(
        pk=pk, experiment__in=experiments_for_user(user)).first()
    if strategy is None:
        raise Http404("No such strategy")
    return strategy


def pair_strategies(a: Sequence[Strategy], b: Sequence[Strategy]) -> list[Pair]:
    """Strategies of two experiments paired by equal label, then the rest by position."""
    pairs = []
    left = list(a)
    right = list(b)
    for strategy in list(left):
        match = next((s for s in right if s.label == strategy.label), None)
        if match is not None:
            pairs.append(Pair(strategy, match))
            left.remove(strategy)
            right.remove(match)
    pairs.extend(Pair(x, y) for x, y in zip(left, right, strict=False))
    order = {s.pk: i for i, s in enumerate(a)}
    return sorted(pairs, key=lambda p: order[p.a.pk])


def _results(strategies: Sequence[Strategy]) -> dict[int, dict[int, ProblemResult]]:
    out: dict[int, dict[int, ProblemResult]] = {s.pk: {} for s in strategies}
    for result in ProblemResult.objects.filter(strategy__in=list(strategies)):
        out[result.strategy_id][result.problem_id] = result
    return out


def _ci(values: np.ndarray) -> Figure:
    ci = bootstrap_ci(values, n_resamples=RESAMPLES, seed=SEED)
    return Figure(ci.mean, ci.low, ci.high)


STORED = (("selected_accuracy", 0, "Selected accuracy"), ("pass_at_k", 1, "pass@1"),
          ("oracle_gap", 0, "Oracle gap"), ("mean_generated_tokens", 0, "Mean generated tokens"))


def _cell(results: dict[int, dict[int, ProblemResult]], pair: Pair,
          problem_pk: int) -> dict[str, Any]:
    a, b = results[pair.a.pk].get(problem_pk), results[pair.b.pk].get(problem_pk)
    differs = (a is not None and b is not None and a.selected_credit is not None
               and b.selected_credit is not None and a.selected_credit != b.selected_credit)
    return {"a": a, "b": b, "differs": differs}


def compare_pairs(pairs: list[Pair]) -> dict[str, Any]:
    """The comparison of each pair on the problems both of its strategies judged."""
    strategies = [s for p in pairs for s in (p.a, p.b)]
    results = _results(strategies)
    stored: dict[int, dict[tuple[str, int], Figure]] = {}
    for experiment in {s.experiment for s in strategies}:
        stored.update(metric_figures(experiment))
    rows = []
    differing: set[int] = set()
    for pair in pairs:
        ra, rb = results[pair.a.pk], results[pair.b.pk]
        shared = sorted(pk for pk in set(ra) & set(rb)
                        if ra[pk].selected_credit is not None
                        and rb[pk].selected_credit is not None)
        row: dict[str, Any] = {"pair": pair, "problems": len(shared), "test": None,
                               "stored": []}
        for name, k, title in STORED:
            fa = stored.get(pair.a.pk, {}).get((name, k), Figure(None))
            fb = stored.get(pair.b.pk, {}).get((name, k), Figure(None))
            delta = None if fa.value is None or fb.value is None else fa.value - fb.value
            row["stored"].append({"title": title, "a": fa, "b": fb, "delta": delta})
        if shared:
            a = np.array([ra[pk].selected_credit for pk in shared], dtype=float)
            b = np.array([rb[pk].selected_credit for pk in shared], dtype=float)
            row["a_accuracy"], row["b_accuracy"] = _ci(a), _ci(b)
            row["a_pass1"] = _ci(np.array([ra[pk].n_correct / ra[pk].n for pk in shared]))
            row["b_pass1"] = _ci(np.array([rb[pk].n_correct / rb[pk].n for pk in shared]))
            if len(shared) >= 2:
                row["test"] = paired_comparison(a, b, seed=SEED, n_resamples=RESAMPLES)
            differing.update(pk for pk in shared
                             if ra[pk].selected_credit != rb[pk].selected_credit)
        rows.append(row)
    tested = [row for row in rows if row["test"] is not None]
    if tested:
        adjusted = holm_bonferroni([row["test"].p_value_sign_flip for row in tested])
        for row, p_value in zip(tested, adjusted, strict=True):
            row["p_holm"] = float(p_value)
    problems = Problem.objects.in_bulk(list(differing))
    ordered = sorted(differing, key=lambda pk: problems[pk].index)
    return {
        "pairs": pairs,
        "rows": rows,
        "differing": [
            {"problem": problems[pk], "cells": [_cell(results, pair, pk) for pair in pairs]}
            for pk in ordered[:MAX_DIFFERING]
        ],
        "differing_total": len(ordered),
        "seed": SEED,
        "resamples": RESAMPLES,
    }


def compare_experiments(a: Experiment, b: Experiment) -> dict[str, Any]:
    pairs = pair_strategies(list(a.strategies.select_related("experiment")),
                            list(b.strategies.select_related("experiment")))
    out = compare_pairs(pairs)
    out["unpaired"] = ([s for s in a.strategies.all() if s not in {p.a for p in pairs}]
                       + [s for s in b.strategies.all() if s not in {p.b for p in pairs}])
    out["a"], out["b"] = a, b
    out["manifest_diff"] = manifest_diff(a.manifest, b.manifest)
    return out


def compare_strategies(a: Strategy, b: Strategy) -> dict[str, Any]:
    out = compare_pairs([Pair(a, b)])
    out["unpaired"] = []
    out["a"], out["b"] = a.experiment, b.experiment
    out["manifest_diff"] = manifest_diff(a.experiment.manifest, b.experiment.manifest)
    return out


def choices(user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    """What the picker offers: the user's finished experiments, newest first, and their
    strategies grouped by experiment."""
    experiments = list(experiments_for_user(user).filter(status=Experiment.Status.FINISHED)
                       .select_related("team")[:200])
    strategies: dict[int, list[Strategy]] = {e.pk: [] for e in experiments}
    for strategy in Strategy.objects.filter(experiment__in=experiments):
        strategies[strategy.experiment_id].append(strategy)
    return {"experiments": experiments,
            "groups": [{"experiment": e, "strategies": strategies[e.pk]} for e in experiments]}
