"""Registry entries of this subpackage: one ``Entry`` per public metric.

A config's fields are keyword arguments of its function (``sel_at_k`` and the
``*_at_k`` selectors take ``k``; ``sel_at_k`` takes ``rng=default_rng(seed)``).
"""

from __future__ import annotations

from strategies.entry import Entry
from strategies.metrics.coverage import CoverageConfig, forecast_coverage
from strategies.metrics.diversity import (
    AnswerEntropyConfig,
    DistinctNConfig,
    EmbeddingDistanceConfig,
    UniqueAnswersConfig,
    answer_entropy,
    distinct_n_scores,
    pairwise_embedding_distance,
    unique_answers,
)
from strategies.metrics.majk import MajorityAtKConfig, mean_majority_at_k
from strategies.metrics.passk import PassAtKConfig, mean_pass_at_k, mean_pass_hat_k
from strategies.metrics.selfbleu import SelfBleuConfig, self_bleu
from strategies.metrics.selk import (
    OracleGapConfig,
    SelAtKConfig,
    best_of_n_at_k,
    first_at_k,
    oracle_at_k,
    oracle_gap,
    sel_at_k,
)
from strategies.metrics.stats import (
    BootstrapConfig,
    HolmConfig,
    bootstrap_ci,
    holm_bonferroni,
    paired_comparison,
)

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "pass_at_k",
        "metric",
        mean_pass_at_k,
        PassAtKConfig,
        "Unbiased pass@k averaged over problems, for k <= n.",
    ),
    Entry(
        "pass_hat_k",
        "metric",
        mean_pass_hat_k,
        PassAtKConfig,
        "pass^k: the chance that k draws are all correct, averaged over problems.",
    ),
    Entry(
        "coverage",
        "metric",
        forecast_coverage,
        CoverageConfig,
        "Coverage curve on 1, 2, 4, ..., n, its power-law fit and a forecast at factor x n.",
    ),
    Entry(
        "maj_at_k",
        "metric",
        mean_majority_at_k,
        MajorityAtKConfig,
        "Exact maj@k: majority vote over a random k-subset, ties split, averaged.",
    ),
    Entry(
        "sel_at_k",
        "metric",
        sel_at_k,
        SelAtKConfig,
        "Any selector's accuracy on random k-subsets, averaged over seeded resamples.",
    ),
    Entry("first_at_k", "metric", first_at_k, SelAtKConfig, "first@k, equal to pass@1."),
    Entry("oracle_at_k", "metric", oracle_at_k, SelAtKConfig, "oracle@k, equal to pass@k."),
    Entry(
        "best_of_n_at_k",
        "metric",
        best_of_n_at_k,
        SelAtKConfig,
        "Exact best-of-n@k by verifier score, ties split.",
    ),
    Entry(
        "oracle_gap",
        "metric",
        oracle_gap,
        OracleGapConfig,
        "Coverage minus a selector's accuracy: what a perfect selector would add.",
    ),
    Entry(
        "distinct_n",
        "metric",
        distinct_n_scores,
        DistinctNConfig,
        "Unique / total n-grams over one prompt's pooled responses.",
    ),
    Entry(
        "self_bleu",
        "metric",
        self_bleu,
        SelfBleuConfig,
        "Self-BLEU-4 of one prompt's responses (and 1 - Self-BLEU as diversity).",
    ),
    Entry(
        "embedding_distance",
        "metric",
        pairwise_embedding_distance,
        EmbeddingDistanceConfig,
        "Mean pairwise 1 - clip(cos, 0, 1) of response embeddings.",
    ),
    Entry(
        "answer_entropy",
        "metric",
        answer_entropy,
        AnswerEntropyConfig,
        "Entropy of the extracted-answer distribution of one prompt.",
    ),
    Entry(
        "unique_answers",
        "metric",
        unique_answers,
        UniqueAnswersConfig,
        "Number and fraction of distinct extracted answers of one prompt.",
    ),
    Entry(
        "bootstrap_ci",
        "metric",
        bootstrap_ci,
        BootstrapConfig,
        "Percentile bootstrap CI of a mean over problems.",
    ),
    Entry(
        "paired_comparison",
        "metric",
        paired_comparison,
        BootstrapConfig,
        "A vs B on the same problems: CI, sign-flip, bootstrap and McNemar p-values.",
    ),
    Entry(
        "holm_bonferroni",
        "metric",
        holm_bonferroni,
        HolmConfig,
        "Holm-Bonferroni adjusted p-values for a family of comparisons.",
    ),
)
