"""Verifier-guided refinement: Iterative Agent Decoding (ALGORITHMS §13).

Iteration 0 samples N responses and scores them with a verifier. Each of T further
iterations shows the model the task, the best response so far with its score, the worst
response of the latest iteration with its score and any critique, and samples N
improved responses. An archive keeps the global best, so the result never regresses;
the loop stops early once the best score reaches ``r_max``. ``feedback=False`` is the
ablation: the same loop and budget, N * (T + 1) samples, with the task prompt alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from strategies.prompting.scheme import Scheme, Scorer
from strategies.types import Candidate, Generator, Problem

__all__ = [
    "SCHEME",
    "RefineConfig",
    "RefineResult",
    "RefineVerifier",
    "refine",
    "render_refine_prompt",
]

#: Scores one response: returns ``(score, critique)``; the critique may be "".
RefineVerifier = Callable[[Candidate], tuple[float, str]]

_REFINE = (
    "{task}\n\nHere is the best response so far (score {best_score:g}):\n{best}\n\n"
    "Here is a weaker recent response (score {worst_score:g}):\n{worst}\n\n"
    "{critique}Write an improved response to the task. Keep what the best response does "
    "right and avoid the mistakes of the weaker one."
)


@dataclass(frozen=True, kw_only=True)
class RefineConfig:
    """N samples per iteration, T refinement iterations, early exit at ``r_max``."""

    n: int = 4
    iterations: int = 3
    r_max: float | None = 1.0
    feedback: bool = True
    critique: bool = True
    temperature: float = 0.7
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        for name, low in (("n", 1), ("iterations", 0), ("max_new_tokens", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("feedback", "critique"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")


@dataclass(frozen=True)
class RefineResult:
    """The global best, every iteration's scored candidates, and the samples spent."""

    best: Candidate
    iterations: list[list[Candidate]]

    @property
    def samples(self) -> int:
        """Number of responses sampled, at most N * (T + 1)."""
        return sum(len(batch) for batch in self.iterations)


def render_refine_prompt(task: str, best: Candidate, worst: Candidate, critique: str = "") -> str:
    """Return the refinement prompt: task, best and worst responses with scores, critique.

    >>> prompt = render_refine_prompt("Add 2 and 2.", Candidate("4", score=1.0),
    ...                               Candidate("5", score=0.0), "5 is off by one.")
    >>> "score 1" in prompt and "Feedback on the weaker response" in prompt
    True
    """
    note = f"Feedback on the weaker response:\n{critique.strip()}\n\n" if critique.strip() else ""
    return _REFINE.format(
        task=task.strip(),
        best=best.text.strip(),
        best_score=best.score or 0.0,
        worst=worst.text.strip(),
        worst_score=worst.score or 0.0,
        critique=note,
    )


def _score(batch: Sequence[Candidate], verifier: RefineVerifier) -> list[tuple[Candidate, str]]:
    """Return each candidate with its verifier score set, and the verifier's critique."""
    out = []
    for candidate in batch:
        score, critique = verifier(candidate)
        out.append((replace(candidate, score=float(score)), critique))
    return out


def refine(
    generator: Generator,
    prompt: str,
    verifier: RefineVerifier,
    config: RefineConfig | None = None,
    *,
    seed: int = 0,
) -> RefineResult:
    """Run Iterative Agent Decoding on one task and return the archived best response.

    Ties keep the earlier response, so a later batch replaces the best only when it
    scores strictly higher.
    """
    config = config or RefineConfig()
    iterations: list[list[Candidate]] = []
    best: tuple[Candidate, str] | None = None
    next_prompt = prompt
    for step in range(config.iterations + 1):
        batch = generator(
            [next_prompt],
            n=config.n,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            seed=seed + step,
        )[0]
        scored = _score(batch, verifier)
        iterations.append([candidate for candidate, _ in scored])
        top = max(scored, key=lambda pair: pair[0].score or 0.0)
        if best is None or (top[0].score or 0.0) > (best[0].score or 0.0):
            best = top
        if config.r_max is not None and (best[0].score or 0.0) >= config.r_max:
            break
        if config.feedback:
            worst = min(scored, key=lambda pair: pair[0].score or 0.0)
            critique = worst[1] if config.critique else ""
            next_prompt = render_refine_prompt(prompt, best[0], worst[0], critique)
    assert best is not None  # the loop runs at least once
    return RefineResult(best=best[0], iterations=iterations)


def _run(
    generator: Generator,
    problem: Problem,
    n: int,
    config: RefineConfig,
    *,
    seed: int,
    max_new_tokens: int,
    scorer: Scorer | None,
    extras: Mapping[str, Any],
) -> list[Candidate]:
    """Every iteration's candidates in order (N at most), scored by ``scorer``."""
    del max_new_tokens, extras
    if scorer is None:
        raise ValueError("refinement needs a scorer (the self-evaluation score)")
    score = scorer

    def verifier(candidate: Candidate) -> tuple[float, str]:
        return score(candidate), ""

    # A pool has a fixed size, so refinement runs every iteration (no early exit).
    result = refine(generator, problem.prompt, verifier, replace(config, r_max=None), seed=seed)
    return [c for iteration in result.iterations for c in iteration][:n]


SCHEME = Scheme(
    name="refine",
    description=(
        "Iterative Agent Decoding: refine with the best and worst responses and their scores."
    ),
    config_class=RefineConfig,
    function=refine,
    single_call=False,
    runner=_run,
    sizer=lambda n, config: min(n, config.n * (config.iterations + 1)),
    self_eval_scores=True,
)
