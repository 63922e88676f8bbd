"""Selection and metrics for finished pools: the cheap, replayable part.

Every registered selector is applied the same way (``selection``: vectorised where
``strategies.select.batch`` implements it, else per problem) and every figure comes from
``strategies.metrics``. A pool is loaded, and its diversity measured, once for all the
strategies that read the same samples of it. Rewriting a strategy's results replaces them
whole inside one transaction, so a redelivered metrics task leaves exactly one copy.

The figures with a team's human labels (``compute_labelled_results``) are the same
selection and accuracy figures (pass@k, pass^k, sel@k of the strategy's selector at each
k, selected accuracy, oracle gap), computed by the same code with each labelled
candidate's verdict (and answer, where the label gives one) in place of the automatic
one, stored as ``Metric`` rows with ``labelled=True`` beside the automatic rows, which
stay as they are.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from django.db import transaction

from strategies import registry
from strategies.metrics.coverage import forecast_coverage
from strategies.metrics.diversity import (
    answer_entropy,
    distinct_n_scores,
    pairwise_embedding_distance,
    unique_answers,
)
from strategies.metrics.passk import pass_at_k, pass_hat_k
from strategies.metrics.selfbleu import self_bleu
from strategies.metrics.selk import oracle_gap
from strategies.metrics.stats import bootstrap_ci, holm_bonferroni, paired_comparison
from strategies.select.adaptive import AdaptiveConfig, adaptive_sample_count
from strategies.select.base import Selection, answer_groups, selection_credit
from strategies.types import Candidate
from webapp.datasets.models import Dataset
from webapp.experiments.code_verification import matrix_view, strategy_matrices
from webapp.experiments.guard import unless_cancelled
from webapp.experiments.models import (
    Comparison,
    Experiment,
    Metric,
    ProblemResult,
    Sample,
    Strategy,
    Verdict,
)
from webapp.experiments.selection import (
    Arrays,
    ProblemPool,
    batch_route,
    pool_arrays,
    sel_at_k_pools,
    select_pools,
)
from webapp.experiments.verification import scoring_verifier, verifier_for
from webapp.review.models import HumanLabel
from webapp.review.services import label_verdict, visible_samples_q

Embedder = Callable[[Sequence[str]], np.ndarray]

BOOTSTRAP_RESAMPLES = 2000
# Resamples of the paired test of each strategy against the first one.
COMPARISON_RESAMPLES = 5000
# The figures recomputed with human labels; the others (diversity, cost, the coverage
# fit) do not depend on verdicts or are not worth a second fit.
LABELLED_METRICS = ("pass_at_k", "pass_hat_k", "sel_at_k", "selected_accuracy", "oracle_gap")

#: A team's label on a sample: (passes, or None to keep the automatic verdict; the answer
#: it gives, or None to keep the extracted one).
Labels = dict[int, tuple[bool | None, str | None]]


@dataclass
class MetricRows:
    rows: list[Metric] = field(default_factory=list)
    labelled: bool = False

    def add(self, strategy: Strategy, name: str, value: float | None, k: int = 0,
            ci: tuple[float, float] | None = None) -> None:
        if value is not None and not math.isfinite(value):
            value = None
        self.rows.append(Metric(strategy=strategy, name=name, k=k, value=value,
                                labelled=self.labelled,
                                ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None))

    def add_mean(self, strategy: Strategy, name: str, values: Sequence[float], k: int = 0,
                 seed: int = 0) -> None:
        """The mean over problems with its percentile bootstrap interval."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            self.add(strategy, name, None, k)
            return
        ci = bootstrap_ci(np.array(finite), n_resamples=BOOTSTRAP_RESAMPLES, seed=seed)
        self.add(strategy, name, ci.mean, k, (ci.low, ci.high))


@dataclass
class Diversity:
    """Per-problem diversity of a pool's candidates (each list: one value per problem)."""

    distinct: dict[int, list[float]]
    bleu: list[float]
    unique: list[float]
    entropy: list[float]
    embedding: list[float]


@dataclass
class PoolSamples:
    """The first ``n`` samples of one pool for each problem, as candidates, and what is
    measured on them alone: shared by every strategy that reads the same samples."""

    pools: list[ProblemPool]
    seconds: float
    groups_: list[np.ndarray] | None = None
    arrays_: Arrays | None = None
    diversity_: Diversity | None = None
    adaptive_: list[int] | None = None

    def groups(self) -> list[np.ndarray]:
        """Each problem's ``answer_groups``, once per pool: equivalent answers together
        (programs by their normalised text)."""
        if self.groups_ is None:
            self.groups_ = [answer_groups(p.candidates, exact=p.code)[0] for p in self.pools]
        return self.groups_

    def arrays(self) -> Arrays:
        if self.arrays_ is None:
            self.arrays_ = pool_arrays(self.pools, self.groups())
        return self.arrays_

    def diversity(self, seed: int, embed: Embedder | None) -> Diversity:
        if self.diversity_ is None:
            self.diversity_ = measure_diversity(self.pools, self.groups(), seed, embed)
        return self.diversity_

    def adaptive(self) -> list[int]:
        """How many samples adaptive consistency would have drawn, per pool of n > 1."""
        if self.adaptive_ is None:
            self.adaptive_ = [
                adaptive_sample_count([c.answer for c in p.candidates],
                                      AdaptiveConfig(max_samples=len(p.candidates)))
                for p in self.pools if len(p.candidates) > 1
            ]
        return self.adaptive_


def selector_for(strategy: Strategy) -> tuple[Callable[..., Selection], Any]:
    entry = registry.get(strategy.selector)
    return entry.function, entry.config_class(**strategy.selector_config)


def load_samples(experiment: Experiment, pool_id: int, n: int,
                 labels: Labels | None = None) -> PoolSamples:
    """Each problem's candidates: samples 0..n-1 of the pool, with their verdicts and
    self-evaluation scores (only the columns these need); with ``labels``, a labelled
    sample's verdict (and answer, where the label gives one) is the label's."""
    in_pool = {"sample__pool_id": pool_id, "sample__index__lt": n}
    verdicts = {
        sample_id: (answer, outcome, score)
        for sample_id, answer, outcome, score in Verdict.objects.filter(
            verifier=verifier_for(experiment), **in_pool
        ).values_list("sample_id", "answer", "outcome", "score")
    }
    scores = dict(Verdict.objects.filter(verifier=scoring_verifier(), **in_pool)
                  .values_list("sample_id", "score"))
    by_problem: dict[int, list[Candidate]] = defaultdict(list)
    seconds: dict[int, list[float]] = defaultdict(list)
    labelled: set[int] = set()
    samples = Sample.objects.filter(
        experiment.problem_q(), pool_id=pool_id, index__lt=n,
    ).order_by("problem_id", "index").values_list(
        "pk", "problem_id", "text", "prompt_tokens", "generated_tokens", "logprob_sum",
        "finish_reason", "seconds")
    for pk, problem_id, text, prompt, generated, logprob, finish, spent in samples:
        answer, outcome, score = verdicts.get(pk, (None, None, None))
        is_correct = (None if outcome in (None, Verdict.Outcome.UNJUDGED)
                      else outcome == Verdict.Outcome.PASS)
        if labels and pk in labels:
            labelled_correct, labelled_answer = labels[pk]
            is_correct = is_correct if labelled_correct is None else labelled_correct
            answer = answer if labelled_answer is None else labelled_answer
            labelled.add(problem_id)
        by_problem[problem_id].append(Candidate(
            text=text, answer=answer, is_correct=is_correct,
            score=scores.get(pk, score), prompt_tokens=prompt, generated_tokens=generated,
            logprob_sum=logprob, finish_reason=finish,
        ))
        seconds[problem_id].append(spent)
    code = experiment.dataset.kind == Dataset.Kind.CODE
    pools = [
        ProblemPool(pk, index, gold, by_problem[pk], code=code, labelled=pk in labelled)
        for pk, index, gold in experiment.problems.order_by("index").values_list(
            "pk", "index", "answer")
        if by_problem.get(pk)
    ]
    # Summed in the order the samples are listed (problem index, sample index).
    total = float(sum(s for pool in pools for s in seconds[pool.problem_id]))
    return PoolSamples(pools, total)


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


def measure_diversity(pools: list[ProblemPool], groups: list[np.ndarray], seed: int,
                      embed: Embedder | None) -> Diversity:
    """Per-problem diversity of the candidates' texts and answers. Answers are counted by
    their group ids (``None`` for none), which count alike: equal canonical answers."""
    result = Diversity(defaultdict(list), [], [], [], [])
    for pool, group in zip(pools, groups, strict=True):
        texts = [c.text for c in pool.candidates]
        answers = [None if g < 0 else g for g in group.tolist()]
        for n_gram, value in distinct_n_scores(texts).items():
            result.distinct[n_gram].append(value)
        result.bleu.append(self_bleu(texts, seed=seed).diversity)
        result.unique.append(float(unique_answers(answers).count))
        result.entropy.append(answer_entropy(answers))
        if embed is not None:
            result.embedding.append(float(pairwise_embedding_distance(embed(texts))))
    return result


def diversity_rows(strategy: Strategy, data: PoolSamples, out: MetricRows,
                   embed: Embedder | None) -> None:
    """Per-problem diversity of the candidates, averaged over problems."""
    if strategy.n < 2:
        return
    diversity = data.diversity(strategy.experiment.seed, embed)
    for n_gram, values in sorted(diversity.distinct.items()):
        out.add_mean(strategy, "distinct_n", values, k=n_gram)
    out.add_mean(strategy, "self_bleu_diversity", diversity.bleu)
    out.add_mean(strategy, "unique_answers", diversity.unique)
    out.add_mean(strategy, "answer_entropy", diversity.entropy)
    if diversity.embedding:
        out.add_mean(strategy, "embedding_distance", diversity.embedding)


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
    pools = with_matrices(strategy, data.pools)
    size = max((len(p.candidates) for p in pools), default=0)
    route = None if strategy.test_pool_id is not None else batch_route(
        strategy.selector, config, size)
    selections = select_pools(strategy, pools, select, config, route, data.arrays)
    sel_at_k = sel_at_k_pools(strategy, pools, k_values, select, config, route, data.arrays)
    seed = strategy.experiment.seed
    out = MetricRows(labelled=labelled)
    results: list[ProblemResult] = []
    pass_values: dict[int, list[float]] = defaultdict(list)
    hat_values: dict[int, list[float]] = defaultdict(list)
    sel_values: dict[int, list[float]] = defaultdict(list)
    credits: list[float] = []
    ns, cs = [], []
    for pool, selection, sel_k in zip(pools, selections, sel_at_k, strict=True):
        credit = selection_credit(selection, pool.candidates) if pool.judged else None
        n = len(pool.candidates)
        n_correct = int(pool.correct.sum()) if pool.judged else None
        if pool.judged and n_correct is not None:
            ns.append(n)
            cs.append(n_correct)
            credits.append(credit if credit is not None else 0.0)
            for k in k_values:
                if k <= n:
                    pass_values[k].append(pass_at_k(n, n_correct, k))
                    hat_values[k].append(pass_hat_k(n, n_correct, k))
            for k, value in sel_k.items():
                sel_values[k].append(value)
        results.append(
            ProblemResult(
                strategy=strategy,
                problem_id=pool.problem_id,
                n=n,
                n_correct=n_correct,
                selected_index=selection.index,
                selected_answer=selection.answer,
                selected_credit=credit,
                tied_answers=[pool.candidates[i].answer for i in selection.tied]
                if len(selection.tied) > 1 else [],
            )
        )

    for k, values in sorted(pass_values.items()):
        out.add_mean(strategy, "pass_at_k", values, k=k, seed=seed)
    for k, values in sorted(hat_values.items()):
        out.add_mean(strategy, "pass_hat_k", values, k=k, seed=seed)
    for k, values in sorted(sel_values.items()):
        out.add_mean(strategy, "sel_at_k", values, k=k, seed=seed)
    out.add_mean(strategy, "selected_accuracy", credits, seed=seed)
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

    generated = [c.generated_tokens for p in pools for c in p.candidates]
    prompt = [c.prompt_tokens for p in pools for c in p.candidates]
    seconds = data.seconds
    out.add(strategy, "mean_generated_tokens", float(np.mean(generated)) if generated else None)
    out.add(strategy, "mean_prompt_tokens", float(np.mean(prompt)) if prompt else None)
    out.add(strategy, "generated_tokens", float(sum(generated)))
    out.add(strategy, "prompt_tokens", float(sum(prompt)))
    out.add(strategy, "generation_seconds", seconds)
    out.add(strategy, "tokens_per_second", sum(generated) / seconds if seconds > 0 else None)
    adaptive = data.adaptive()
    if adaptive:
        mean_adaptive = float(np.mean(adaptive))
        out.add(strategy, "adaptive_samples", mean_adaptive)
        out.add(strategy, "adaptive_saved_fraction", 1.0 - mean_adaptive / strategy.n)
    return results, out


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
        Comparison.objects.filter(strategy__experiment=experiment).delete()
        Comparison.objects.bulk_create(rows)


def comparison_rows(strategies: Sequence[Strategy], credits: dict[int, dict[int, float]],
                    seed: int) -> list[Comparison]:
    """Each strategy against the first on the problems both judged (at least two): the
    paired test on per-problem credit, sign-flip p-values Holm-adjusted across the rows
    (several strategies against one baseline)."""
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
            p_value_mcnemar=result.p_value_mcnemar, p_holm=1.0,
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


def labelled_metric_rows(experiment: Experiment, labels: Labels) -> list[Metric]:
    """Every strategy's ``LABELLED_METRICS`` with the labels in place of the verdicts."""
    strategies = list(experiment.strategies.select_related("experiment__dataset"))
    shared: dict[tuple[int, int], PoolSamples] = {}
    rows: list[Metric] = []
    for strategy in strategies:
        key = (strategy.pool_id, strategy.n)
        if key not in shared:
            shared[key] = load_samples(experiment, strategy.pool_id, strategy.n,
                                       labels=labels)
        _, out = measure_strategy(strategy, list(experiment.k_values), None, shared[key],
                                  labelled=True)
        rows.extend(out.rows)
    return rows


def compute_labelled_results(experiment_id: int) -> bool:
    """Recompute the figures with the team's current labels (none: remove them) and mark
    them computed for the labels version read first. A slower run that lost to a newer
    one writes nothing: the version UPDATE is conditional and guards the rows in the same
    transaction. True when this call stored its figures."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    version = experiment.labels_version
    labels = team_labels(experiment)
    rows = labelled_metric_rows(experiment, labels) if labels else []
    with transaction.atomic():
        won = Experiment.objects.filter(
            pk=experiment_id, labelled_version__lte=version
        ).update(labelled_version=version)
        if not won:
            return False
        Metric.objects.filter(strategy__experiment_id=experiment_id, labelled=True).delete()
        Metric.objects.bulk_create(rows)
    return True
