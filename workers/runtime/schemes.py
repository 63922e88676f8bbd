"""Runs a prompting scheme on the engine and returns a problem's N candidates.

Single-call schemes (direct, chain of thought, few-shot) render one prompt and
sample N continuations in one batch. Multi-call schemes (verbalized sampling,
iterative deepening, verifier-guided refinement) drive the engine through the
``strategies.types.Generator`` protocol; refinement is guided by the model's
self-evaluation score. Nothing here imports Django or Celery.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from strategies import registry
from strategies.prompting.deepening import iterative_deepening
from strategies.prompting.refine import refine
from strategies.prompting.verbalized import verbalized_pool
from strategies.sampling import DecodingConfig, build_processor
from strategies.types import Candidate, Problem
from strategies.verify.self_eval import SelfEvalConfig, render_self_eval, self_eval_score
from workers.runtime.engine import generate, stable_seed
from workers.runtime.scoring import yes_no_logprobs

if TYPE_CHECKING:
    from workers.runtime.models import LoadedModel

SINGLE_CALL_SCHEMES = ("direct", "chain_of_thought", "few_shot")
MULTI_CALL_SCHEMES = ("verbalized", "deepening", "refine")


@dataclass(frozen=True)
class PoolCandidate:
    """One candidate of a pool with its cost; ``score`` is set where the scheme has one."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    logprob_sum: float
    finish_reason: str
    seconds: float
    score: float | None = None


def _sample(loaded: LoadedModel, user_text: str, decoding: DecodingConfig, n: int,
            seed: int) -> list[PoolCandidate]:
    """N samples of one prompt; a temperature mix decodes each temperature as a group."""
    prompt = loaded.render_prompt(user_text)
    if decoding.temperature_mix:
        mix = decoding.temperature_mix
        by_index: dict[int, PoolCandidate] = {}
        for j, temperature in enumerate(mix):
            indices = list(range(j, n, len(mix)))
            if not indices:
                continue
            group = replace(decoding, temperature=temperature, temperature_mix=())
            for i, s in zip(indices, _sample(loaded, user_text, group, len(indices),
                                             stable_seed(seed, j)), strict=True):
                by_index[i] = s
        return [by_index[i] for i in range(n)]
    samples = generate(
        loaded,
        prompt,
        n=1 if decoding.is_greedy else n,
        processor=None if decoding.is_greedy else build_processor(decoding),
        greedy=decoding.is_greedy,
        max_new_tokens=decoding.max_new_tokens,
        seed=seed,
    )
    return [
        PoolCandidate(s.text, s.prompt_tokens, s.generated_tokens, s.logprob_sum,
                      s.finish_reason, s.seconds)
        for s in samples
    ]


class EngineGenerator:
    """The ``Generator`` protocol over the engine, keeping the row's truncation settings."""

    def __init__(self, loaded: LoadedModel, decoding: DecodingConfig) -> None:
        self.loaded = loaded
        self.decoding = decoding

    def __call__(self, prompts: Sequence[str], *, n: int, temperature: float,
                 max_new_tokens: int, seed: int) -> list[list[Candidate]]:
        decoding = replace(
            self.decoding,
            temperature=temperature,
            temperature_mix=(),
            ead=False if temperature != 1.0 else self.decoding.ead,
            max_new_tokens=min(max_new_tokens, self.decoding.max_new_tokens),
        )
        out = []
        for i, prompt in enumerate(prompts):
            samples = _sample(self.loaded, prompt, decoding, n, stable_seed(seed, i))
            if decoding.is_greedy and n > 1:
                samples = samples * n
            out.append([
                Candidate(text=s.text, prompt_tokens=s.prompt_tokens,
                          generated_tokens=s.generated_tokens, logprob_sum=s.logprob_sum,
                          finish_reason=s.finish_reason)
                for s in samples
            ])
        return out


def self_eval_scores(loaded: LoadedModel, problem_prompt: str,
                     texts: Sequence[str]) -> list[float]:
    """The model's self-evaluation score of each response (ALGORITHMS section 12a)."""
    config = SelfEvalConfig()
    prompts = [render_self_eval(problem_prompt, text, config) for text in texts]
    pairs = yes_no_logprobs(loaded, prompts, yes=config.yes, no=config.no)
    return [self_eval_score(y, n) for y, n in pairs]


def _with_seconds(candidates: list[Candidate], seconds: float,
                  scores: Sequence[float | None] | None = None) -> list[PoolCandidate]:
    total = sum(c.generated_tokens for c in candidates) or len(candidates) or 1
    return [
        PoolCandidate(c.text, c.prompt_tokens, c.generated_tokens, c.logprob_sum,
                      c.finish_reason,
                      seconds * (c.generated_tokens or 1) / total if candidates else 0.0,
                      None if scores is None else scores[i])
        for i, c in enumerate(candidates)
    ]


def pool_candidates(
    loaded: LoadedModel,
    *,
    scheme: str,
    scheme_config: dict[str, Any],
    decoding: DecodingConfig,
    problem_prompt: str,
    n: int,
    seed: int,
) -> list[PoolCandidate]:
    """The N candidates of one problem under a prompting scheme (fewer if it stops early)."""
    entry = registry.get(scheme)
    config = entry.config_class(**_tuples(scheme_config))
    problem = Problem(prompt=problem_prompt, answer=None)
    if scheme in SINGLE_CALL_SCHEMES:
        return _sample(loaded, entry.function(problem, config), decoding, n, seed)
    if scheme not in MULTI_CALL_SCHEMES:
        raise ValueError(f"prompting scheme {scheme!r} cannot run in a sample pool")
    generator = EngineGenerator(loaded, decoding)
    started = time.perf_counter()
    if scheme == "verbalized":
        candidates = verbalized_pool(generator, problem_prompt, n, config, seed=seed)
        return _with_seconds(candidates, time.perf_counter() - started,
                             [c.score for c in candidates])
    if scheme == "deepening":
        chains = iterative_deepening(generator, problem_prompt, config, n=n, seed=seed)
        finals = [
            Candidate(text=chain[-1].text, prompt_tokens=sum(c.prompt_tokens for c in chain),
                      generated_tokens=sum(c.generated_tokens for c in chain),
                      logprob_sum=chain[-1].logprob_sum, finish_reason=chain[-1].finish_reason)
            for chain in chains
        ]
        return _with_seconds(finals, time.perf_counter() - started)
    # refine: verifier-guided refinement scored by self-evaluation.
    def verifier(candidate: Candidate) -> tuple[float, str]:
        return self_eval_scores(loaded, problem_prompt, [candidate.text])[0], ""

    # A pool has a fixed size, so refinement runs every iteration (no early exit).
    result = refine(generator, problem_prompt, verifier, replace(config, r_max=None), seed=seed)
    flat = [c for iteration in result.iterations for c in iteration][:n]
    return _with_seconds(flat, time.perf_counter() - started, [c.score for c in flat])


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


__all__ = ["PoolCandidate", "pool_candidates", "self_eval_scores"]
