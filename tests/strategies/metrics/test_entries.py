"""Every metric is registered once, with a frozen config whose defaults are valid."""

from __future__ import annotations

import dataclasses

from strategies.metrics.entries import ENTRIES

EXPECTED = {
    "pass_at_k",
    "pass_hat_k",
    "coverage",
    "maj_at_k",
    "sel_at_k",
    "first_at_k",
    "oracle_at_k",
    "best_of_n_at_k",
    "oracle_gap",
    "distinct_n",
    "self_bleu",
    "embedding_distance",
    "answer_entropy",
    "unique_answers",
    "bootstrap_ci",
    "paired_comparison",
    "holm_bonferroni",
}


def test_it_registers_every_metric_once() -> None:
    names = [entry.name for entry in ENTRIES]
    assert len(names) == len(set(names))
    assert set(names) == EXPECTED


def test_it_keeps_entries_consistent() -> None:
    for entry in ENTRIES:
        assert entry.kind == "metric"
        assert callable(entry.function)
        assert entry.description
        assert entry.function.__doc__
        assert dataclasses.is_dataclass(entry.config_class)
        assert entry.config_class.__dataclass_params__.frozen  # type: ignore[attr-defined]
        entry.config_class()  # defaults are valid
