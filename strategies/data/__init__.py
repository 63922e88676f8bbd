"""Small built-in datasets generated from a seed (no files, no downloads)."""

from __future__ import annotations

from strategies.data.arithmetic import ArithmeticConfig, generate_arithmetic

__all__ = ["ArithmeticConfig", "generate_arithmetic"]
