"""Prompting schemes: turn a problem into the message a model sees, or orchestrate calls."""

from __future__ import annotations

from strategies.prompting.chain_of_thought import ChainOfThoughtConfig, render_chain_of_thought
from strategies.prompting.deepening import DeepeningConfig, iterative_deepening
from strategies.prompting.direct import DirectConfig, render_direct
from strategies.prompting.entries import SCHEMES, get_scheme, scheme_names
from strategies.prompting.few_shot import FewShotConfig, render_few_shot
from strategies.prompting.plansearch import PlanCandidate, PlanSearchConfig, plansearch
from strategies.prompting.refine import RefineConfig, RefineResult, refine
from strategies.prompting.scheme import Scheme, Scorer
from strategies.prompting.sequential import (
    SequentialConfig,
    matched_token_budget,
    sequential_revision,
)
from strategies.prompting.verbalized import (
    VerbalizedConfig,
    VerbalizedItem,
    parse_verbalized,
    sample_verbalized,
    verbalized_pool,
)

__all__ = [
    "SCHEMES",
    "Scheme",
    "Scorer",
    "ChainOfThoughtConfig",
    "DeepeningConfig",
    "DirectConfig",
    "FewShotConfig",
    "PlanCandidate",
    "PlanSearchConfig",
    "RefineConfig",
    "RefineResult",
    "SequentialConfig",
    "VerbalizedConfig",
    "VerbalizedItem",
    "get_scheme",
    "iterative_deepening",
    "matched_token_budget",
    "parse_verbalized",
    "plansearch",
    "refine",
    "render_chain_of_thought",
    "render_direct",
    "render_few_shot",
    "sample_verbalized",
    "scheme_names",
    "sequential_revision",
    "verbalized_pool",
]
