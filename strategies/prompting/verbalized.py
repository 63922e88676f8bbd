"""Verbalized Sampling (ALGORITHMS §5): ask for k responses with probabilities, then sample.

One call returns k candidate responses with verbalised probabilities. The reply is parsed
and repaired (``verbalized_parse``), duplicates merged, a probability floor applied with
relaxation, the weights normalised, and the items sorted; a pool of N samples takes
``ceil(N / k)`` calls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.prompting.common import spread_tokens, total_tokens
from strategies.prompting.scheme import Scheme, Scorer
from strategies.prompting.verbalized_parse import extract_raw_items, repair_weight
from strategies.types import Candidate, Generator, Problem

__all__ = [
    "SCHEME",
    "VerbalizedConfig",
    "VerbalizedItem",
    "argmax_verbalized",
    "parse_verbalized",
    "render_verbalized",
    "sample_verbalized",
    "verbalized_pool",
]

logger = logging.getLogger(__name__)

WEIGHT_MODES = ("elicited", "uniform", "softmax")
POOL_MODES = ("draw", "items")

_STANDARD = (
    "Generate {k} different responses to the user's request below. Sample them at random "
    "from the full distribution of possible responses. Return only JSON of the form "
    '{{"responses": [{{"text": "...", "probability": 0.0}}, ...]}}, where each probability '
    "is your estimate (between 0 and 1) of how likely that response is relative to the "
    "full distribution of responses.{tail}\n\nRequest:\n{request}"
)
_TAIL = " Choose responses from the tails, so that each response's probability is below {p_max}."


@dataclass(frozen=True)
class VerbalizedItem:
    """One verbalised response and its (normalised) probability."""

    text: str
    probability: float


@dataclass(frozen=True, kw_only=True)
class VerbalizedConfig:
    """Settings of Verbalized Sampling; defaults follow the official package."""

    k: int = 5
    tail: bool = False
    p_max: float = 0.10
    tau: float = 0.12
    min_k_survivors: int = 3
    weight_mode: str = "elicited"
    pool_mode: str = "draw"
    temperature: float = 0.9
    max_new_tokens: int = 1024

    def __post_init__(self) -> None:
        for name in ("k", "min_k_survivors", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0 < self.p_max <= 1:
            raise ValueError(f"p_max must be in (0, 1], got {self.p_max!r}")
        if not 0 <= self.tau <= 1:
            raise ValueError(f"tau must be in [0, 1], got {self.tau!r}")
        if self.weight_mode not in WEIGHT_MODES:
            raise ValueError(f"weight_mode must be one of {WEIGHT_MODES}, got {self.weight_mode!r}")
        if self.pool_mode not in POOL_MODES:
            raise ValueError(f"pool_mode must be one of {POOL_MODES}, got {self.pool_mode!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")


def render_verbalized(problem: Problem, config: VerbalizedConfig | None = None) -> str:
    """Return the VS-Standard (or, with ``tail``, the VS-tail) prompt for ``problem``.

    >>> "3 different responses" in render_verbalized(Problem("Name a colour.", None),
    ...     VerbalizedConfig(k=3))
    True
    """
    config = config or VerbalizedConfig()
    tail = _TAIL.format(p_max=config.p_max) if config.tail else ""
    return _STANDARD.format(k=config.k, tail=tail, request=problem.prompt.strip())


def _merge(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Drop empty texts and merge duplicates (first position kept, weights added)."""
    merged: dict[str, float] = {}
    for text, weight in pairs:
        key = text.strip()
        if key:
            merged[key] = merged.get(key, 0.0) + weight
    return list(merged.items())


def _floor(pairs: list[tuple[str, float]], tau: float, min_k: int) -> list[tuple[str, float]]:
    """Keep weights >= tau; with fewer than ``min_k`` survivors keep the top ``min_k``."""
    kept = [pair for pair in pairs if pair[1] >= tau]
    if len(kept) >= min(min_k, len(pairs)):
        return kept
    order = sorted(range(len(pairs)), key=lambda i: -pairs[i][1])[:min_k]
    return [pairs[i] for i in sorted(order)]


def _normalise(weights: np.ndarray, mode: str) -> np.ndarray:
    """Return the weights as probabilities under ``mode`` (elicited, uniform or softmax)."""
    total = float(weights.sum())
    if mode == "elicited" and total > 0:
        return weights / total
    if mode == "softmax":
        shifted: np.ndarray = np.exp(weights - weights.max())
        return shifted / float(shifted.sum())
    return np.full(len(weights), 1.0 / len(weights))


def parse_verbalized(text: str, config: VerbalizedConfig | None = None) -> list[VerbalizedItem]:
    """Parse, repair, floor, normalise and sort one VS reply (most probable first).

    >>> reply = '''{"responses": [{"text": "red", "probability": "30%"},
    ...   {"text": "blue", "probability": 0.6}, {"text": "red", "probability": 0.1},]}'''
    >>> parse_verbalized(reply)
    [VerbalizedItem(text='blue', probability=0.6), VerbalizedItem(text='red', probability=0.4)]
    """
    config = config or VerbalizedConfig()
    pairs = _merge([(raw, repair_weight(weight)) for raw, weight in extract_raw_items(text)])
    if len(pairs) < config.k:
        logger.info("verbalized reply has %d items, fewer than k=%d", len(pairs), config.k)
    if not pairs:
        return []
    pairs = _floor(pairs, config.tau, config.min_k_survivors)
    probs = _normalise(np.array([w for _, w in pairs], dtype=float), config.weight_mode)
    order = sorted(range(len(pairs)), key=lambda i: -probs[i])  # stable: ties keep order
    return [VerbalizedItem(pairs[i][0], float(probs[i])) for i in order]


def sample_verbalized(items: list[VerbalizedItem], rng: np.random.Generator) -> VerbalizedItem:
    """Draw one item with probability proportional to its normalised probability.

    >>> items = [VerbalizedItem("a", 1.0), VerbalizedItem("b", 0.0)]
    >>> sample_verbalized(items, np.random.default_rng(0)).text
    'a'
    """
    if not items:
        raise ValueError("items must not be empty")
    probs = np.array([item.probability for item in items], dtype=float)
    probs = probs / probs.sum() if probs.sum() > 0 else np.full(len(items), 1.0 / len(items))
    return items[int(rng.choice(len(items), p=probs))]


def argmax_verbalized(items: list[VerbalizedItem]) -> VerbalizedItem:
    """Return the most probable item (the earliest one on ties).

    >>> argmax_verbalized([VerbalizedItem("a", 0.3), VerbalizedItem("b", 0.7)]).text
    'b'
    """
    if not items:
        raise ValueError("items must not be empty")
    return max(items, key=lambda item: item.probability)


def verbalized_pool(
    generator: Generator,
    prompt: str,
    n: int,
    config: VerbalizedConfig | None = None,
    *,
    seed: int = 0,
) -> list[Candidate]:
    """Return N candidates from ``ceil(N / k)`` VS calls (one batched generator request).

    ``pool_mode="draw"`` draws N items from the pooled distribution (each call weighs
    equally); ``"items"`` keeps every item of every call in order, truncated to N (a
    short reply gives fewer). A candidate's ``score`` is its verbalised probability;
    the calls' tokens are spread evenly over the returned candidates.
    """
    config = config or VerbalizedConfig()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    calls = math.ceil(n / config.k)
    replies = generator(
        [render_verbalized(Problem(prompt=prompt, answer=None), config)],
        n=calls,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=seed,
    )[0]
    pooled = [
        (item, reply.finish_reason)
        for reply in replies
        for item in parse_verbalized(reply.text, config)
    ]
    picked = pooled[:n]
    if config.pool_mode == "draw" and pooled:
        weights = np.array([item.probability for item, _ in pooled], dtype=float)
        draws = np.random.default_rng(seed).choice(len(pooled), size=n, p=weights / weights.sum())
        picked = [pooled[int(i)] for i in draws]
    if len(picked) < n:
        logger.warning("verbalized pool has %d candidates, fewer than n=%d", len(picked), n)
    prompt_total, generated_total = total_tokens(replies)
    prompt_shares = spread_tokens(prompt_total, len(picked))
    generated_shares = spread_tokens(generated_total, len(picked))
    return [
        Candidate(
            text=item.text,
            score=item.probability,
            prompt_tokens=prompt_shares[i],
            generated_tokens=generated_shares[i],
            finish_reason=finish,
        )
        for i, (item, finish) in enumerate(picked)
    ]


def _run(
    generator: Generator,
    problem: Problem,
    n: int,
    config: VerbalizedConfig,
    *,
    seed: int,
    max_new_tokens: int,
    scorer: Scorer | None,
    extras: Mapping[str, Any],
) -> list[Candidate]:
    """N candidates, each scored by its verbalised probability."""
    del max_new_tokens, scorer, extras
    return verbalized_pool(generator, problem.prompt, n, config, seed=seed)


SCHEME = Scheme(
    name="verbalized",
    description=(
        "Verbalized Sampling: ask for k responses with probabilities and sample from them."
    ),
    config_class=VerbalizedConfig,
    function=verbalized_pool,
    single_call=False,
    runner=_run,
)
