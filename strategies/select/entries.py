"""Registry entries of this subpackage: one ``Entry`` per public algorithm.

Every selector entry points to a function with the uniform signature
``f(candidates, config=None, *, rng=None) -> Selection``; ``codet`` and ``b4`` also
need ``matrix=`` (solutions x generated tests, 1 = passed).
"""

from __future__ import annotations

from strategies.entry import Entry
from strategies.select.adaptive import AdaptiveConfig, select_adaptive_consistency
from strategies.select.b4 import B4Config, select_b4
from strategies.select.best_of_majority import BestOfMajorityConfig, select_best_of_majority
from strategies.select.best_of_n import BestOfNConfig, select_best_of_n
from strategies.select.codet import CodeTConfig, select_codet
from strategies.select.first import FirstConfig, select_first_candidate
from strategies.select.majority import MajorityConfig, select_majority
from strategies.select.mbr import MBRConfig, select_mbr
from strategies.select.oracle import OracleConfig, select_oracle
from strategies.select.perplexity import LowestPerplexityConfig, select_lowest_perplexity
from strategies.select.random_choice import RandomConfig, select_random
from strategies.select.rpc import RPCConfig, select_rpc
from strategies.select.weighted import WeightedMajorityConfig, select_weighted_majority

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "first",
        "selector",
        select_first_candidate,
        FirstConfig,
        "Take the first candidate (a single-sample baseline).",
    ),
    Entry(
        "majority",
        "selector",
        select_majority,
        MajorityConfig,
        "Self-consistency: the most common answer; ties go to the earliest.",
    ),
    Entry(
        "random",
        "selector",
        select_random,
        RandomConfig,
        "A uniformly random candidate from a seeded generator (a baseline).",
    ),
    Entry(
        "weighted_majority",
        "selector",
        select_weighted_majority,
        WeightedMajorityConfig,
        "Votes weighted by exp(mean logprob), exp(sum logprob) or a verifier score.",
    ),
    Entry(
        "lowest_perplexity",
        "selector",
        select_lowest_perplexity,
        LowestPerplexityConfig,
        "The single sample with the highest mean token logprob (the PPL baseline).",
    ),
    Entry(
        "rpc",
        "selector",
        select_rpc,
        RPCConfig,
        "Weibull-mixture reasoning pruning, then perplexity-weighted consistency.",
    ),
    Entry(
        "best_of_n",
        "selector",
        select_best_of_n,
        BestOfNConfig,
        "The candidate with the highest verifier score.",
    ),
    Entry(
        "best_of_majority",
        "selector",
        select_best_of_majority,
        BestOfMajorityConfig,
        "The best-scored answer among those frequent enough (alpha filter).",
    ),
    Entry(
        "mbr",
        "selector",
        select_mbr,
        MBRConfig,
        "Minimum Bayes risk: the candidate most similar to the others (chrF, ROUGE-L, answer).",
    ),
    Entry(
        "oracle",
        "selector",
        select_oracle,
        OracleConfig,
        "A correct candidate when there is one: the upper bound (coverage).",
    ),
    Entry(
        "codet",
        "selector",
        select_codet,
        CodeTConfig,
        "Code: rank clusters of solutions by tests passed x cluster size (needs matrix=).",
    ),
    Entry(
        "b4",
        "selector",
        select_b4,
        B4Config,
        "Code: rank clusters of solutions by the B4 Bayesian posterior (needs matrix=).",
    ),
    Entry(
        "adaptive_consistency",
        "selector",
        select_adaptive_consistency,
        AdaptiveConfig,
        "Majority vote over the samples drawn until the Beta stopping rule fires.",
    ),
)
