"""Selection and metrics for finished pools: the cheap, replayable part.

Every registered selector is applied the same way (``selection``: vectorised where
``strategies.select.batch`` implements it, else per problem) and every figure comes from
``strategies.metrics``. A pool is loaded as columns (``pool_samples``), its answers
grouped and its diversity measured (``diversity``, text figures on a seeded subsample),
once for all the strategies that read the same samples of it. Rewriting a strategy's
results replaces them whole inside one transaction, so a redelivered metrics task leaves
exactly one copy.

The figures with a team's human labels (``compute_labelled_results``) are the same
selection and accuracy figures (pass@k, pass^k, sel@k of the strategy's selector at each
k, selected accuracy, oracle gap), computed by the same code with each labelled
candidate's verdict (and answer, where the label gives one) in place of the automatic
one, stored as ``Metric`` rows with ``labelled=True`` beside the automatic rows, which
stay as they are.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from django.db import transaction

from strategies import registry
from strategies.metrics.coverage import forecast_coverage
from strategies.metrics.passk import pass_at_k, pass_hat_k
from strategies.metrics.selk import oracle_gap
from strategies.metrics.stats import bootstrap_cis, holm_bonferroni, paired_comparison
from strategies.select.base import Selection
from webapp.experiments.code_verification import matrix_view, strategy_matrices
from webapp.experiments.diversity import Embedder, measure_diversity
from webapp.experiments.guard import unless_cancelled
from webapp.experiments.models import (
    Comparison,
    Experiment,
    Metric,
    ProblemResult,
    Strategy,
)
from webapp.experiments.pool_samples import Labels, PoolSamples, ProblemPool, load_samples
from webapp.experiments.selection import (
    batch_route,
    route_reads_texts,
    sel_at_k_pools,
    select_pools,
)
from webapp.review.models import HumanLabel
from webapp.review.services import label_verdict, visible_samples_q

BOOTSTRAP_RESAMPLES = 2000
# Resamples of the paired test of each strategy against the first one.
COMPARISON_RESAMPLES = 5000
# The figures recomputed with human labels; the others (diversity, cost, the coverage
# fit) do not depend on verdicts or are not worth a second fit.
LABELLED_METRICS = ("pass_at_k", "pass_hat_k", "sel_at_k", "selected_accuracy", "oracle_gap")

@dataclass
class MetricRows:
    """A strategy's figures as unsaved ``Metric`` rows. Means get their bootstrap
    intervals when ``rows`` is read, all together: those with one seed and one number of
    problems share one draw of resample indices (``bootstrap_cis``)."""

    labelled: bool = False
    stored: list[Metric] = field(default_factory=list)
    pending: list[tuple[Metric, np.ndarray, int]] = field(default_factory=list)

    @property
    def rows(self) -> list[Metric]:
        by_seed: dict[int, list[tuple[Metric, np.ndarray]]] = defaultdict(list)
        for metric, values, seed in self.pending:
            by_seed[seed].append((metric, values))
        for seed, means in by_seed.items():
            intervals = bootstrap_cis([values for _, values in means],
                                      n_resamples=BOOTSTRAP_RESAMPLES, seed=seed)
            for (metric, _), ci in zip(means, intervals, strict=True):
                metric.value, metric.ci_low, metric.ci_high = ci.mean, ci.low, ci.high
        self.pending.clear()
        return self.stored

    def add(self, strategy: Strategy, name: str, value: float | None, k: int = 0,
            ci: tuple[float, float] | None = None) -> None:
        if value is not None and not math.isfinite(value):
            value = None
        self.stored.append(Metric(strategy=strategy, name=name, k=k, value=value,
                                  labelled=self.labelled,
                                  ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None))

    def add_mean(self, strategy: Strategy, name: str, values: Sequence[float], k: int = 0,
                 seed: int = 0) -> None:
        """The mean over problems with its percentile bootstrap interval."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        self.add(strategy, name, None, k)
        if finite:
            self.pending.append((self.stored[-1], np.array(finite), seed))


def selector_for(strategy: Strategy) -> tuple[Callable[..., Selection], Any]:
    entry = registry.get(strategy.selector)
    return entry.function, entry.config_class(**strategy.selector_config)


def with_matrices(strategy: Strategy, pools: list[ProblemPool]) -> list[ProblemPool]:
    """The pools with CodeT's and B4's pass matrices of generated tests, where the
    strategy has a test pool."""
    if strategy.test_pool_id is None:
        return pools
    matrices = strategy_matrices(strategy)
    out = []
    for pool in pools:
        stored = matrices.get(pool.problem_id)
        if stored is None:
            raise ValueError(f"problem {pool.index} has no pass matrix of generated "
                             "tests yet")
        matrix, executed = matrix_view(stored, strategy.n, strategy.test_n)
        out.append(replace(pool, matrix=matrix, executed=executed))
    return out


def diversity_rows(strategy: Strategy, data: PoolSamples, out: MetricRows,
                   embed: Embedder | None) -> None:
    """Per-problem diversity of the candidates, averaged over problems, how many texts
    per problem the text figures read (``diversity_subsample``, their mean) and over how
    many problems the embedding distance is (``embedding_problems``)."""
    if strategy.n < 2:
        return
    if data.diversity_ is None:
        data.diversity_ = measure_diversity(data, strategy.experiment.seed, embed)
    diversity = data.diversity_
    for n_gram, values in sorted(diversity.distinct.items()):
        out.add_mean(strategy, "distinct_n", values, k=n_gram)
    out.add_mean(strategy, "self_bleu_diversity", diversity.bleu)
    out.add_mean(strategy, "unique_answers", diversity.unique)
    out.add_mean(strategy, "answer_entropy", diversity.entropy)
    if diversity.embedding:
        out.add_mean(strategy, "embedding_distance", diversity.embedding)
        out.add(strategy, "embedding_problems", float(diversity.embedded))
    out.add(strategy, "diversity_subsample", float(np.mean(diversity.sizes)))


def compute_strategy_results(strategy: Strategy, k_values: list[int],
                             embed: Embedder | None = None,
                             data: PoolSamples | None = None) -> list[ProblemResult]:
    """Select and measure one strategy, replacing its stored results and automatic
    figures (not once the experiment is cancelled); returns its per-problem results."""
    data = data or load_samples(strategy.experiment, strategy.pool_id, strategy.n)
    results, out = measure_strategy(strategy, k_values, embed, data)
    with unless_cancelled(strategy.experiment_id) as is_open:
        if not is_open:
            return results
        strategy.results.all().delete()
        strategy.metrics.filter(labelled=False).delete()
        ProblemResult.objects.bulk_create(results)
        Metric.objects.bulk_create(out.rows)
    return results


def measure_strategy(strategy: Strategy, k_values: list[int], embed: Embedder | None,
                     data: PoolSamples, labelled: bool = False,
                     ) -> tuple[list[ProblemResult], MetricRows]:
    """The strategy's per-problem results and figures, unsaved. ``labelled`` figures
    (candidates read with human labels) are only ``LABELLED_METRICS``: sel@k goes through
    the same selector paths and seeded subsets, so a problem no label touches gets the
    very value it has without labels."""
    select, config = selector_for(strategy)
    route = None if strategy.test_pool_id is not None else batch_route(
        strategy.selector, config, int(data.sizes.max(initial=0)))

    @functools.cache
    def pools() -> list[ProblemPool]:
        return with_matrices(strategy, data.pools())

    arrays = functools.cache(lambda: data.arrays(texts=route_reads_texts(strategy.selector)))
    selections = select_pools(strategy, data, pools, select, config, route, arrays)
    sel_at_k = sel_at_k_pools(strategy, data, pools, k_values, select, config, route, arrays)
    out = MetricRows(labelled=labelled)
    results, ns, cs, credits = problem_rows(strategy, data, selections, sel_at_k, k_values,
                                            out)
    if ns:
        coverage = [pass_at_k(n, c, n) for n, c in zip(ns, cs, strict=True)]
        out.add(strategy, "oracle_gap", oracle_gap(coverage, credits))
    if labelled:
        return results, out
    if ns and min(ns) > 1:
        forecast = forecast_coverage(ns, cs, factor=10.0)
        if forecast.fit is not None:
            out.add(strategy, "coverage_fit_a", forecast.fit.a)
            out.add(strategy, "coverage_fit_b", forecast.fit.b)
            out.add(strategy, "coverage_fit_r2", forecast.fit.r2)
            out.add(strategy, "coverage_forecast", float(forecast.coverage), k=forecast.k)
    diversity_rows(strategy, data, out, embed)
    cost_rows(strategy, data, out)
    return results, out


def problem_rows(strategy: Strategy, data: PoolSamples, selections: list[Selection],
                 sel_at_k: list[dict[int, float]], k_values: list[int], out: MetricRows,
                 ) -> tuple[list[ProblemResult], list[int], list[int], list[float]]:
    """Each problem's result, and pass@k, pass^k, sel@k and selected accuracy over the
    judged problems; returns the results and the judged problems' n, correct counts and
    credits."""
    seed = strategy.experiment.seed
    results: list[ProblemResult] = []
    pass_values: dict[int, list[float]] = defaultdict(list)
    hat_values: dict[int, list[float]] = defaultdict(list)
    sel_values: dict[int, list[float]] = defaultdict(list)
    credits: list[float] = []
    ns, cs = [], []
    curves: dict[tuple[int, int], list[tuple[int, float, float]]] = {}
    judged, correct = data.judged, data.correct
    for row, (selection, sel_k) in enumerate(zip(selections, sel_at_k, strict=True)):
        n = int(data.sizes[row])
        credit = n_correct = None
        if judged[row]:
            credit = selected_credit(selection, correct[row])
            n_correct = int(correct[row, :n].sum())
            ns.append(n)
            cs.append(n_correct)
            credits.append(credit)
            if (n, n_correct) not in curves:  # problems share their (n, c) often
                curves[n, n_correct] = [(k, pass_at_k(n, n_correct, k),
                                         pass_hat_k(n, n_correct, k))
                                        for k in k_values if k <= n]
            for k, at_k, hat_k in curves[n, n_correct]:
                pass_values[k].append(at_k)
                hat_values[k].append(hat_k)
            for k, value in sel_k.items():
                sel_values[k].append(value)
        results.append(ProblemResult(
            strategy=strategy, problem_id=int(data.problem_ids[row]), n=n,
            n_correct=n_correct, selected_index=selection.index,
            selected_answer=selection.answer, selected_credit=credit,
            tied_answers=[data.answers[row, i] for i in selection.tied]
            if len(selection.tied) > 1 else [],
        ))
    for k, values in sorted(pass_values.items()):
        out.add_mean(strategy, "pass_at_k", values, k=k, seed=seed)
    for k, values in sorted(hat_values.items()):
        out.add_mean(strategy, "pass_hat_k", values, k=k, seed=seed)
    for k, values in sorted(sel_values.items()):
        out.add_mean(strategy, "sel_at_k", values, k=k, seed=seed)
    out.add_mean(strategy, "selected_accuracy", credits, seed=seed)
    return results, ns, cs, credits


def selected_credit(selection: Selection, correct: np.ndarray) -> float:
    """``selection_credit`` on a judged problem: the share of the tied candidates that
    are correct (0.0 when abstaining)."""
    if selection.index is None:
        return 0.0
    tied = selection.tied or (selection.index,)
    return sum(1.0 for i in tied if correct[i]) / len(tied)


def cost_rows(strategy: Strategy, data: PoolSamples, out: MetricRows) -> None:
    """Tokens, seconds and the samples adaptive consistency would have drawn."""
    present = data.present
    generated = data.generated_tokens[present]
    prompt = data.prompt_tokens[present]
    seconds = data.seconds
    out.add(strategy, "mean_generated_tokens",
            float(np.mean(generated)) if generated.size else None)
    out.add(strategy, "mean_prompt_tokens", float(np.mean(prompt)) if prompt.size else None)
    out.add(strategy, "generated_tokens", float(generated.sum()))
    out.add(strategy, "prompt_tokens", float(prompt.sum()))
    out.add(strategy, "generation_seconds", seconds)
    out.add(strategy, "tokens_per_second",
            int(generated.sum()) / seconds if seconds > 0 else None)
    adaptive = data.adaptive()
    if adaptive:
        mean_adaptive = float(np.mean(adaptive))
        out.add(strategy, "adaptive_samples", mean_adaptive)
        out.add(strategy, "adaptive_saved_fraction", 1.0 - mean_adaptive / strategy.n)


def compute_results(experiment_id: int, embed: Embedder | None = None) -> None:
    """Select and measure every strategy of the experiment, then compare each with the
    first. Strategies that read the same samples (pool and n) share their loading and the
    pool's own figures. A cancelled experiment's figures are not stored (``guard``)."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    strategies = list(experiment.strategies.select_related("experiment__dataset"))
    readers = Counter((s.pool_id, s.n) for s in strategies)
    shared: dict[tuple[int, int], PoolSamples] = {}
    credits: dict[int, dict[int, float]] = {}
    for strategy in strategies:
        key = (strategy.pool_id, strategy.n)
        if key not in shared:
            shared[key] = load_samples(strategy.experiment, strategy.pool_id, strategy.n)
        results = compute_strategy_results(strategy, list(experiment.k_values), embed,
                                           shared[key])
        credits[strategy.pk] = {r.problem_id: r.selected_credit for r in results
                                if r.selected_credit is not None}
        readers[key] -= 1
        if not readers[key]:
            del shared[key]  # its last reader is done: free the candidates
    rows = comparison_rows(strategies, credits, experiment.seed)
    with unless_cancelled(experiment_id) as is_open:
        if not is_open:
            return
        Comparison.objects.filter(strategy__experiment=experiment, labelled=False).delete()
        Comparison.objects.bulk_create(rows)


def comparison_rows(strategies: Sequence[Strategy], credits: dict[int, dict[int, float]],
                    seed: int, labelled: bool = False) -> list[Comparison]:
    """Each strategy against the first on the problems both judged (at least two): the
    paired test on per-problem credit, sign-flip p-values Holm-adjusted across the rows
    (several strategies against one baseline); ``labelled`` when the credit is with the
    team's human labels."""
    if len(strategies) < 2:
        return []
    base = strategies[0]
    rows = []
    for other in strategies[1:]:
        shared = sorted(set(credits.get(base.pk, {})) & set(credits.get(other.pk, {})))
        if len(shared) < 2:
            continue
        result = paired_comparison(
            np.array([credits[other.pk][p] for p in shared]),
            np.array([credits[base.pk][p] for p in shared]),
            seed=seed, n_resamples=COMPARISON_RESAMPLES,
        )
        rows.append(Comparison(
            strategy=other, baseline=base, problems=len(shared), mean_diff=result.mean_diff,
            ci_low=result.ci_low, ci_high=result.ci_high, wins=result.wins, ties=result.ties,
            losses=result.losses, p_value_sign_flip=result.p_value_sign_flip,
            p_value_bootstrap=result.p_value_bootstrap,
            p_value_mcnemar=result.p_value_mcnemar, p_holm=1.0, labelled=labelled,
        ))
    if rows:
        adjusted = holm_bonferroni([r.p_value_sign_flip for r in rows])
        for row, p_value in zip(rows, adjusted, strict=True):
            row.p_holm = float(p_value)
    return rows


# --- Figures with human labels ------------------------------------------------------


def team_labels(experiment: Experiment) -> Labels:
    """The experiment's team's labels on the candidates it reads: whether each makes its
    candidate right here (``label_verdict``; a stated answer is judged by this
    experiment's verifier) and the answer it gives."""
    return {
        sample_id: (label_verdict(experiment, outcome, answer, reference), answer or None)
        for sample_id, outcome, answer, reference in HumanLabel.objects.filter(
            visible_samples_q(experiment, "sample__"), experiment.problem_q("sample__problem"),
            team_id=experiment.team_id,
        ).values_list("sample_id", "outcome", "answer", "sample__problem__answer")
    }


def labelled_metric_rows(experiment: Experiment,
                         labels: Labels) -> tuple[list[Metric], list[Comparison]]:
    """Every strategy's ``LABELLED_METRICS`` with the labels in place of the verdicts, and
    the paired comparisons on the credit the labels give."""
    strategies = list(experiment.strategies.select_related("experiment__dataset"))
    shared: dict[tuple[int, int], PoolSamples] = {}
    rows: list[Metric] = []
    credits: dict[int, dict[int, float]] = {}
    for strategy in strategies:
        key = (strategy.pool_id, strategy.n)
        if key not in shared:
            shared[key] = load_samples(experiment, strategy.pool_id, strategy.n,
                                       labels=labels)
        measured, out = measure_strategy(strategy, list(experiment.k_values), None,
                                         shared[key], labelled=True)
        rows.extend(out.rows)
        credits[strategy.pk] = {r.problem_id: r.selected_credit for r in measured
                                if r.selected_credit is not None}
    return rows, comparison_rows(strategies, credits, experiment.seed, labelled=True)


def compute_labelled_results(experiment_id: int) -> bool:
    """Recompute the figures with the team's current labels (none: remove them) and mark
    them computed for the labels version read first. A slower run that lost to a newer
    one writes nothing: the version UPDATE is conditional and guards the rows in the same
    transaction. True when this call stored its figures."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    version = experiment.labels_version
    labels = team_labels(experiment)
    rows, comparisons = labelled_metric_rows(experiment, labels) if labels else ([], [])
    with transaction.atomic():
        won = Experiment.objects.filter(
            pk=experiment_id, labelled_version__lte=version
        ).update(labelled_version=version)
        if not won:
            return False
        Metric.objects.filter(strategy__experiment_id=experiment_id, labelled=True).delete()
        Metric.objects.bulk_create(rows)
        Comparison.objects.filter(strategy__experiment_id=experiment_id, labelled=True).delete()
        Comparison.objects.bulk_create(comparisons)
    return True
