"""Metrics over pools of samples (pass@k)."""

from __future__ import annotations

from strategies.metrics.passk import PassAtKConfig, mean_pass_at_k, pass_at_k, pass_at_k_array

__all__ = ["PassAtKConfig", "mean_pass_at_k", "pass_at_k", "pass_at_k_array"]
