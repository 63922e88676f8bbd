"""The registry's record type, kept apart so each subpackage can list its own entries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Entry"]

KINDS = ("sampler", "prompting", "verifier", "selector", "metric")


@dataclass(frozen=True)
class Entry:
    """One registered algorithm: its public function and its frozen config class."""

    name: str
    kind: str
    function: Callable[..., Any]
    config_class: type
    description: str
