"""Selectors: choose one answer out of N candidates, and score that choice."""

from __future__ import annotations

from strategies.select.adaptive import (
    AdaptiveConfig,
    adaptive_sample_count,
    beta_stop_probability,
    select_adaptive_consistency,
    should_stop,
)
from strategies.select.b4 import B4Config, b4_rank, select_b4
from strategies.select.base import Selection, Selector, selection_credit
from strategies.select.batch import (
    BatchSelection,
    batch_select_adaptive_consistency,
    batch_select_best_of_majority,
    batch_select_best_of_n,
    batch_select_first,
    batch_select_lowest_perplexity,
    batch_select_majority,
    batch_select_mbr,
    batch_select_oracle,
    batch_select_rpc,
    batch_select_weighted_majority,
)
from strategies.select.best_of_majority import BestOfMajorityConfig, select_best_of_majority
from strategies.select.best_of_n import BestOfNConfig, select_best_of_n
from strategies.select.clusters import ClusterRanking
from strategies.select.codet import CodeTConfig, codet_rank, select_codet
from strategies.select.first import FirstConfig, select_first, select_first_candidate
from strategies.select.majority import (
    MajorityConfig,
    MajorityResult,
    expected_accuracy,
    majority_vote,
    select_majority,
)
from strategies.select.mbr import MBRConfig, select_mbr
from strategies.select.oracle import OracleConfig, select_oracle
from strategies.select.perplexity import LowestPerplexityConfig, select_lowest_perplexity
from strategies.select.random_choice import RandomConfig, select_random
from strategies.select.rpc import RPCConfig, select_rpc
from strategies.select.scoring import selected_correctness
from strategies.select.similarity import chrf, rouge_l
from strategies.select.weighted import WeightedMajorityConfig, select_weighted_majority

__all__ = [
    "AdaptiveConfig",
    "B4Config",
    "BatchSelection",
    "BestOfMajorityConfig",
    "BestOfNConfig",
    "ClusterRanking",
    "CodeTConfig",
    "FirstConfig",
    "LowestPerplexityConfig",
    "MBRConfig",
    "MajorityConfig",
    "MajorityResult",
    "OracleConfig",
    "RPCConfig",
    "RandomConfig",
    "Selection",
    "Selector",
    "WeightedMajorityConfig",
    "adaptive_sample_count",
    "b4_rank",
    "batch_select_adaptive_consistency",
    "batch_select_best_of_majority",
    "batch_select_best_of_n",
    "batch_select_first",
    "batch_select_lowest_perplexity",
    "batch_select_majority",
    "batch_select_mbr",
    "batch_select_oracle",
    "batch_select_rpc",
    "batch_select_weighted_majority",
    "beta_stop_probability",
    "chrf",
    "codet_rank",
    "expected_accuracy",
    "majority_vote",
    "rouge_l",
    "select_adaptive_consistency",
    "select_b4",
    "select_best_of_majority",
    "select_best_of_n",
    "select_codet",
    "select_first",
    "select_first_candidate",
    "select_lowest_perplexity",
    "select_majority",
    "select_mbr",
    "select_oracle",
    "select_random",
    "select_rpc",
    "select_weighted_majority",
    "selected_correctness",
    "selection_credit",
    "should_stop",
]
