"""Selection and metrics for finished pools: the cheap, replayable part.

Every registered selector is applied the same way (``strategies.select``'s uniform
interface) and every figure comes from ``strategies.metrics``. Rewriting a
strategy's results replaces them whole inside one transaction, so a redelivered
metrics task leaves exactly one copy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from strategies.metrics.majk import answer_counts, majority_at_k
from strategies.metrics.passk import pass_at_k, pass_hat_k
from strategies.metrics.selfbleu import self_bleu
from strategies.metrics.selk import best_of_n_at_k, oracle_gap, sel_at_k
from strategies.metrics.stats import bootstrap_ci
from strategies.select.adaptive import AdaptiveConfig, adaptive_sample_count
from strategies.select.base import Selection, selection_credit
from strategies.types import Candidate
from webapp.datasets.models import Dataset
from webapp.experiments.code_verification import matrix_view, strategy_matrices
from webapp.experiments.models import (
    Experiment,
    Metric,
    ProblemResult,
    Sample,
    Strategy,
    Verdict,
)
from webapp.experiments.verification import scoring_verifier, verifier_for

Embedder = Callable[[Sequence[str]], np.ndarray]

# Random k-subsets per problem and k for selectors without a closed-form sel@k.
SEL_AT_K_RESAMPLES = 24
BOOTSTRAP_RESAMPLES = 2000


@dataclass
class ProblemPool:
    """One problem's candidates for a strategy. A code problem (``code``) is judged by
    its unit tests rather than a gold answer; CodeT and B4 get the pass matrix of the
    candidates that executed (``matrix``) and those candidates' indices (``executed``)."""

    problem_id: int
    index: int
    gold: str
    candidates: list[Candidate]
    code: bool = False
    matrix: np.ndarray | None = None
    executed: list[int] = field(default_factory=list)

    @property
    def judged(self) -> bool:
        return (bool(self.gold) or self.code) and all(
            c.is_correct is not None for c in self.candidates
        )

    @property
    def correct(self) -> np.ndarray:
        return np.array([bool(c.is_correct) for c in self.candidates])


@dataclass
class MetricRows:
    rows: list[Metric] = field(default_factory=list)

    def add(self, strategy: Strategy, name: str, value: float | None, k: int = 0,
            ci: tuple[float, float] | None = None) -> None:
        if value is not None and not math.isfinite(value):
            value = None
        self.rows.append(Metric(strategy=strategy, name=name, k=k, value=value,
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


def selector_for(strategy: Strategy) -> tuple[Callable[..., Selection], Any]:
    entry = registry.get(strategy.selector)
    return entry.function, entry.config_class(**strategy.selector_config)


def select_in(pool: ProblemPool, indices: Sequence[int], select: Callable[..., Selection],
              config: Any, rng: np.random.Generator) -> tuple[Selection, list[Candidate]]:
    """The selector's choice among the pool's candidates ``indices`` (in order), and those
    candidates. CodeT and B4 choose among the ones that executed, by their matrix rows;
    their selection's indices are mapped back to positions in the returned list."""
    subset = [pool.candidates[i] for i in indices]
    if pool.matrix is None:
        return select(subset, config, rng=rng), subset
    rows = [pool.executed.index(i) for i in indices if i in pool.executed]
    positions = [k for k, i in enumerate(indices) if i in pool.executed]
    if not rows:
        return Selection(index=None, answer=None, tied=()), subset
    chosen = select([subset[k] for k in positions], config, matrix=pool.matrix[rows], rng=rng)
    if chosen.index is None:
        return chosen, subset
    return Selection(
        index=positions[chosen.index], answer=chosen.answer,
        tied=tuple(positions[t] for t in chosen.tied),
    ), subset


def load_pools(strategy: Strategy) -> list[ProblemPool]:
    """Each problem's candidates for this strategy (samples 0..n-1 of its pool)."""
    experiment = strategy.experiment
    verifier = verifier_for(experiment)
    verdicts = {
        v.sample_id: v
        for v in Verdict.objects.filter(
            sample__pool_id=strategy.pool_id, verifier__in=[verifier, scoring_verifier()]
        )
        if v.verifier == verifier
    }
    scores = dict(
        Verdict.objects.filter(
            sample__pool_id=strategy.pool_id, verifier=scoring_verifier()
        ).values_list("sample_id", "score")
    )
    by_problem: dict[int, list[Candidate]] = defaultdict(list)
    samples = Sample.objects.filter(
        pool_id=strategy.pool_id,
        problem__dataset_id=experiment.dataset_id,
        index__lt=strategy.n,
    ).order_by("problem_id", "index")
    for s in samples:
        verdict = verdicts.get(s.pk)
        outcome = verdict.outcome if verdict else None
        by_problem[s.problem_id].append(
            Candidate(
                text=s.text,
                answer=verdict.answer if verdict else None,
                is_correct=None
                if outcome in (None, Verdict.Outcome.UNJUDGED)
                else outcome == Verdict.Outcome.PASS,
                score=scores.get(s.pk, verdict.score if verdict else None),
                prompt_tokens=s.prompt_tokens,
                generated_tokens=s.generated_tokens,
                logprob_sum=s.logprob_sum,
                finish_reason=s.finish_reason,
            )
        )
    code = experiment.dataset.kind == Dataset.Kind.CODE
    matrices = strategy_matrices(strategy)
    pools = []
    for problem in experiment.dataset.problems.order_by("index"):
        candidates = by_problem.get(problem.pk)
        if not candidates:
            continue
        pool = ProblemPool(problem.pk, problem.index, problem.answer, candidates, code=code)
        if strategy.test_pool_id is not None:
            stored = matrices.get(problem.pk)
            if stored is None:
                raise ValueError(f"problem {problem.index} has no pass matrix of generated "
                                 "tests yet")
            pool.matrix, pool.executed = matrix_view(stored, strategy.n, strategy.test_n)
        pools.append(pool)
    return pools


def sel_at_k_values(strategy: Strategy, pool: ProblemPool, ks: Sequence[int],
                    select: Callable[..., Selection], config: Any) -> dict[int, float]:
    """sel@k of this strategy's selector on one judged problem, for each k <= n."""
    n = len(pool.candidates)
    correct = pool.correct
    answers = [c.answer for c in pool.candidates]
    values: dict[int, float] = {}
    rng = np.random.default_rng([strategy.experiment.seed, pool.index, strategy.position])
    for k in ks:
        if k > n:
            continue
        if strategy.selector in ("first", "random"):
            values[k] = float(correct.mean())
        elif strategy.selector == "oracle":
            values[k] = pass_at_k(n, int(correct.sum()), k)
        elif strategy.selector == "majority" and not pool.code:
            counts = answer_counts(answers, pool.gold)
            values[k] = majority_at_k(counts.c_star, counts.others, counts.n_none, n, k)
        elif strategy.selector == "best_of_n":
            scores = [c.score if c.score is not None else -math.inf for c in pool.candidates]
            values[k] = float(best_of_n_at_k(np.array([scores]), correct[None, :], k)[0])
        else:
            def credit(indices: np.ndarray) -> float:
                chosen, subset = select_in(pool, sorted(int(i) for i in indices), select,
                                           config, rng)
                return selection_credit(chosen, subset) or 0.0

            values[k] = sel_at_k(n, k, credit, rng=rng, n_resamples=1 if k == n else
                                 SEL_AT_K_RESAMPLES)
    return values


def diversity_rows(strategy: Strategy, pools: list[ProblemPool], out: MetricRows,
                   embed: Embedder | None) -> None:
    """Per-problem diversity of the candidates, averaged over problems."""
    if strategy.n < 2:
        return
    distinct: dict[int, list[float]] = defaultdict(list)
    bleu, embedding, unique, entropy = [], [], [], []
    for pool in pools:
        texts = [c.text for c in pool.candidates]
        answers = [c.answer for c in pool.candidates]
        for n_gram, value in distinct_n_scores(texts).items():
            distinct[n_gram].append(value)
        bleu.append(self_bleu(texts, seed=strategy.experiment.seed).diversity)
        unique.append(float(unique_answers(answers).count))
        entropy.append(answer_entropy(answers))
        if embed is not None:
            embedding.append(float(pairwise_embedding_distance(embed(texts))))
    for n_gram, values in sorted(distinct.items()):
        out.add_mean(strategy, "distinct_n", values, k=n_gram)
    out.add_mean(strategy, "self_bleu_diversity", bleu)
    out.add_mean(strategy, "unique_answers", unique)
    out.add_mean(strategy, "answer_entropy", entropy)
    if embedding:
        out.add_mean(strategy, "embedding_distance", embedding)


def compute_strategy_results(strategy: Strategy, k_values: list[int],
                             embed: Embedder | None = None) -> None:
    select, config = selector_for(strategy)
    pools = load_pools(strategy)
    seed = strategy.experiment.seed
    out = MetricRows()
    results: list[ProblemResult] = []
    pass_values: dict[int, list[float]] = defaultdict(list)
    hat_values: dict[int, list[float]] = defaultdict(list)
    sel_values: dict[int, list[float]] = defaultdict(list)
    credits: list[float] = []
    ns, cs, adaptive = [], [], []
    for pool in pools:
        rng = np.random.default_rng([seed, pool.index, strategy.position])
        selection, _ = select_in(pool, range(len(pool.candidates)), select, config, rng)
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
            for k, value in sel_at_k_values(strategy, pool, k_values, select, config).items():
                sel_values[k].append(value)
        if n > 1:
            adaptive.append(adaptive_sample_count([c.answer for c in pool.candidates],
                                                  AdaptiveConfig(max_samples=n)))
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
    if ns and min(ns) > 1:
        forecast = forecast_coverage(ns, cs, factor=10.0)
        if forecast.fit is not None:
            out.add(strategy, "coverage_fit_a", forecast.fit.a)
            out.add(strategy, "coverage_fit_b", forecast.fit.b)
            out.add(strategy, "coverage_fit_r2", forecast.fit.r2)
            out.add(strategy, "coverage_forecast", float(forecast.coverage), k=forecast.k)
    diversity_rows(strategy, pools, out, embed)

    generated = [c.generated_tokens for p in pools for c in p.candidates]
    prompt = [c.prompt_tokens for p in pools for c in p.candidates]
    seconds = float(
        sum(Sample.objects.filter(
            pool_id=strategy.pool_id, problem_id__in=[p.problem_id for p in pools],
            index__lt=strategy.n,
        ).values_list("seconds", flat=True))
    )
    out.add(strategy, "mean_generated_tokens", float(np.mean(generated)) if generated else None)
    out.add(strategy, "mean_prompt_tokens", float(np.mean(prompt)) if prompt else None)
    out.add(strategy, "generated_tokens", float(sum(generated)))
    out.add(strategy, "prompt_tokens", float(sum(prompt)))
    out.add(strategy, "generation_seconds", seconds)
    out.add(strategy, "tokens_per_second", sum(generated) / seconds if seconds > 0 else None)
    if adaptive:
        mean_adaptive = float(np.mean(adaptive))
        out.add(strategy, "adaptive_samples", mean_adaptive)
        out.add(strategy, "adaptive_saved_fraction", 1.0 - mean_adaptive / strategy.n)

    with transaction.atomic():
        strategy.results.all().delete()
        strategy.metrics.all().delete()
        ProblemResult.objects.bulk_create(results)
        Metric.objects.bulk_create(out.rows)


def compute_results(experiment_id: int, embed: Embedder | None = None) -> None:
    """Select and measure every strategy of the experiment."""
    experiment = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    for strategy in experiment.strategies.select_related("experiment__dataset"):
        compute_strategy_results(strategy, list(experiment.k_values), embed)
