"""Prompting schemes: turn a problem into the message a model sees."""

from __future__ import annotations

from strategies.prompting.direct import DirectConfig, render_direct

__all__ = ["DirectConfig", "render_direct"]
