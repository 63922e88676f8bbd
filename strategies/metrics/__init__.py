"""Metrics over pools of samples: pass@k, coverage, maj@k, sel@k, diversity, statistics."""

from __future__ import annotations

from strategies.metrics.coverage import (
    PowerLawFit,
    coverage_curve,
    extrapolate,
    fit_power_law,
    forecast_coverage,
)
from strategies.metrics.diversity import (
    answer_entropy,
    distinct_n,
    pairwise_embedding_distance,
    unique_answers,
)
from strategies.metrics.majk import majority_at_k, majority_at_k_array, mean_majority_at_k
from strategies.metrics.passk import (
    PassAtKConfig,
    mean_pass_at_k,
    mean_pass_hat_k,
    pass_at_k,
    pass_at_k_array,
    pass_hat_k,
    pass_hat_k_array,
)
from strategies.metrics.selfbleu import self_bleu, sentence_bleu
from strategies.metrics.selk import best_of_n_at_k, first_at_k, oracle_at_k, oracle_gap, sel_at_k
from strategies.metrics.stats import bootstrap_ci, holm_bonferroni, paired_comparison

__all__ = [
    "PassAtKConfig",
    "PowerLawFit",
    "answer_entropy",
    "best_of_n_at_k",
    "bootstrap_ci",
    "coverage_curve",
    "distinct_n",
    "extrapolate",
    "first_at_k",
    "fit_power_law",
    "forecast_coverage",
    "holm_bonferroni",
    "majority_at_k",
    "majority_at_k_array",
    "mean_majority_at_k",
    "mean_pass_at_k",
    "mean_pass_hat_k",
    "oracle_at_k",
    "oracle_gap",
    "paired_comparison",
    "pairwise_embedding_distance",
    "pass_at_k",
    "pass_at_k_array",
    "pass_hat_k",
    "pass_hat_k_array",
    "sel_at_k",
    "self_bleu",
    "sentence_bleu",
    "unique_answers",
]
