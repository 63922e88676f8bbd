"""Registry entries of this subpackage: one ``Entry`` per public algorithm."""

from __future__ import annotations

from strategies.entry import Entry
from strategies.prompting.chain_of_thought import ChainOfThoughtConfig, render_chain_of_thought
from strategies.prompting.deepening import DeepeningConfig, iterative_deepening
from strategies.prompting.direct import DirectConfig, render_direct
from strategies.prompting.few_shot import FewShotConfig, render_few_shot
from strategies.prompting.generated_tests import TestPromptConfig, render_test_prompt
from strategies.prompting.plansearch import PlanSearchConfig, plansearch
from strategies.prompting.refine import RefineConfig, refine
from strategies.prompting.sequential import SequentialConfig, sequential_revision
from strategies.prompting.verbalized import VerbalizedConfig, verbalized_pool

ENTRIES: tuple[Entry, ...] = (
    Entry(
        "direct",
        "prompting",
        render_direct,
        DirectConfig,
        "Ask the problem exactly as the dataset states it.",
    ),
    Entry(
        "chain_of_thought",
        "prompting",
        render_chain_of_thought,
        ChainOfThoughtConfig,
        "Ask the model to think step by step before giving the final answer.",
    ),
    Entry(
        "few_shot",
        "prompting",
        render_few_shot,
        FewShotConfig,
        "Show k worked examples before the problem.",
    ),
    Entry(
        "verbalized",
        "prompting",
        verbalized_pool,
        VerbalizedConfig,
        "Verbalized Sampling: ask for k responses with probabilities and sample from them.",
    ),
    Entry(
        "plansearch",
        "prompting",
        plansearch,
        PlanSearchConfig,
        "PlanSearch: observations, then natural-language plans, then code per plan.",
    ),
    Entry(
        "refine",
        "prompting",
        refine,
        RefineConfig,
        "Iterative Agent Decoding: refine with the best and worst responses and their scores.",
    ),
    Entry(
        "deepening",
        "prompting",
        iterative_deepening,
        DeepeningConfig,
        "Iterative deepening: trigger self-correction rounds, keeping every round's answer.",
    ),
    Entry(
        "sequential",
        "prompting",
        sequential_revision,
        SequentialConfig,
        "Sequential revision at the token budget of a parallel pool.",
    ),
    Entry(
        "generated_tests",
        "prompting",
        render_test_prompt,
        TestPromptConfig,
        "CodeT's test prompt: the model continues an assertion on the function.",
    ),
)
