"""The registry, the command line and the shared types."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from strategies import registry
from strategies.types import Candidate, Problem

ROOT = Path(__file__).resolve().parents[2]
# The whole catalogue of DESIGN sections 4 and 5, by kind.
CATALOGUE = {
    "sampler": [
        "beam_search", "diverse_beam_search", "ead", "epsilon", "eta", "greedy", "min_p",
        "temperature", "temperature_mix", "top_h", "top_k", "top_p", "typical_p",
    ],
    "prompting": [
        "chain_of_thought", "deepening", "direct", "few_shot", "generated_tests", "plansearch",
        "refine", "sequential", "verbalized",
    ],
    "verifier": ["choice", "exact", "judge", "math", "regex", "self_eval", "unit_tests"],
    "selector": [
        "adaptive_consistency", "b4", "best_of_majority", "best_of_n", "codet", "first",
        "lowest_perplexity", "majority", "mbr", "oracle", "random", "rpc", "weighted_majority",
    ],
    "metric": [
        "answer_entropy", "best_of_n_at_k", "bootstrap_ci", "coverage", "distinct_n",
        "embedding_distance", "first_at_k", "holm_bonferroni", "maj_at_k", "oracle_at_k",
        "oracle_gap", "paired_comparison", "pass_at_k", "pass_hat_k", "sel_at_k", "self_bleu",
        "unique_answers",
    ],
}
EXPECTED = {name: kind for kind, names in CATALOGUE.items() for name in names}


def test_it_registers_every_algorithm() -> None:
    assert {name: registry.get(name).kind for name in registry.names()} == EXPECTED


def test_it_keeps_entries_consistent() -> None:
    for name, entry in registry.REGISTRY.items():
        assert entry.name == name
        assert entry.kind in registry.KINDS
        assert callable(entry.function)
        assert entry.description
        assert dataclasses.is_dataclass(entry.config_class)
        params = entry.config_class.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen
        entry.config_class()  # defaults are valid


def test_it_lists_names_by_kind() -> None:
    assert registry.names("selector") == sorted(CATALOGUE["selector"])
    assert registry.names("sampler") == sorted(CATALOGUE["sampler"])
    assert registry.names() == sorted(EXPECTED)
    with pytest.raises(ValueError, match="sampler"):
        registry.names("dataset")


def test_it_lists_valid_names_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'beams'.*majority") as info:
        registry.get("beams")
    assert all(name in str(info.value) for name in EXPECTED)


def test_it_lists_strategies_on_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "strategies", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = result.stdout.splitlines()
    assert dict(line.split("\t") for line in lines) == EXPECTED
    assert lines == [f"{name}\t{EXPECTED[name]}" for name in sorted(EXPECTED)]


def test_it_computes_the_mean_logprob() -> None:
    assert Candidate(text="x", generated_tokens=4, logprob_sum=-2.0).mean_logprob == -0.5
    assert Candidate(text="", logprob_sum=-1.0).mean_logprob == -1.0  # no division by zero


def test_it_freezes_the_shared_types() -> None:
    problem = Problem(prompt="What is 1 + 1?", answer="2")
    assert problem.metadata == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.answer = "3"  # type: ignore[misc]
    candidate = Candidate(text="2")
    assert (candidate.answer, candidate.is_correct, candidate.finish_reason) == (None, None, "")
