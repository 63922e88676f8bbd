"""PlanSearch (ALGORITHMS §6): search over natural-language plans, then write code per plan.

Pipeline: first-order observations (with three follow-ups, parsed as a Python list),
subsets of size 0..S shuffled and truncated to a budget, optional second-order
observations, one natural-language plan per observation set (optionally doubled by a
criticise-and-fix step), then pseudocode and code; the program is the last fenced block.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strategies.prompting.common import (
    last_fenced_block,
    render_conversation,
    spread_tokens,
    total_tokens,
)
from strategies.prompting.plansearch_prompts import (
    CODE,
    CRITIQUE,
    FIX,
    FOLLOW_UPS,
    OBSERVATIONS,
    PLAN,
    PSEUDOCODE,
    SECOND_ORDER,
    bullet_list,
)
from strategies.prompting.scheme import Scheme, Scorer
from strategies.types import Candidate, Generator, Problem

__all__ = [
    "SCHEME",
    "PlanCandidate",
    "PlanSearchConfig",
    "extract_code",
    "observation_subsets",
    "parse_observations",
    "plansearch",
]


@dataclass(frozen=True, kw_only=True)
class PlanSearchConfig:
    """Settings of PlanSearch; defaults follow the reference CLI, plus two budgets."""

    n_observations: int = 10
    max_subset_size: int = 2
    max_observation_sets: int = 8
    max_plans: int = 16
    second_order: bool = True
    criticism: bool = False
    pseudocode: bool = True
    idea_temperature: float = 0.0
    code_temperature: float = 0.0
    parse_temperatures: tuple[float, ...] = (0.0, 0.2, 0.4)
    max_new_tokens: int = 1024
    language: str = "python"

    def __post_init__(self) -> None:
        for name in ("n_observations", "max_observation_sets", "max_plans", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        size = self.max_subset_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"max_subset_size must be an integer >= 0, got {size!r}")
        for name in ("second_order", "criticism", "pseudocode"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("idea_temperature", "code_temperature"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        temps = self.parse_temperatures
        if not isinstance(temps, tuple) or not temps or not all(t >= 0 for t in temps):
            raise ValueError(f"parse_temperatures must be a non-empty tuple of >= 0, got {temps!r}")
        if not self.language.strip():
            raise ValueError("language must be a non-empty string")


@dataclass(frozen=True)
class PlanCandidate:
    """One program (``candidate.answer``; the raw reply is ``candidate.text``) with its plan."""

    candidate: Candidate
    plan: str
    observations: tuple[str, ...]
    pseudocode: str = ""
    is_fixed: bool = False


def parse_observations(text: str) -> list[str] | None:
    """Read a Python list of strings from the last fenced block (or the bare reply).

    Entries are stripped, empty ones and repeats dropped; ``None`` when nothing parses.

    >>> parse_observations("Sure:\\n```python\\n['sort first', 'use a heap', 'sort first']\\n```")
    ['sort first', 'use a heap']
    >>> parse_observations("no list here") is None
    True
    """
    block = last_fenced_block(text)
    chunks = [block] if block is not None else []
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        chunks.append(text[start : end + 1])
    for chunk in chunks:
        try:
            value = ast.literal_eval(chunk.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(dict.fromkeys(v.strip() for v in value if v.strip()))
    return None


def extract_code(text: str) -> str:
    """Return the last fenced code block of a reply, or the whole reply when it has none.

    >>> extract_code("Plan...\\n```python\\ndef f():\\n    return 1\\n```")
    'def f():\\n    return 1\\n'
    """
    block = last_fenced_block(text)
    return block if block is not None else text.strip()


def observation_subsets(
    observations: Sequence[str], max_size: int, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Return every subset of size 0..``max_size`` (in input order), shuffled by ``rng``.

    >>> sorted(observation_subsets(["a", "b"], 1, np.random.default_rng(0)))
    [(), ('a',), ('b',)]
    """
    subsets = [
        combo
        for size in range(min(max_size, len(observations)) + 1)
        for combo in itertools.combinations(observations, size)
    ]
    return [subsets[int(i)] for i in rng.permutation(len(subsets))]


@dataclass
class _Session:
    """Calls the generator with a fresh seed each time and keeps every reply for accounting."""

    generator: Generator
    seed: int
    max_new_tokens: int
    replies: list[Candidate] = field(default_factory=list)

    def ask(self, prompts: Sequence[str], temperature: float) -> list[Candidate]:
        """Return one reply per prompt (one batched call)."""
        if not prompts:
            return []
        rows = self.generator(
            list(prompts),
            n=1,
            temperature=temperature,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed + len(self.replies),
        )
        out = [row[0] for row in rows]
        self.replies.extend(out)
        return out

    def ask_lists(self, prompts: Sequence[str], temperatures: Sequence[float]) -> list[list[str]]:
        """Return a parsed list per prompt, retrying unparsed ones at the next temperature."""
        results: list[list[str] | None] = [None] * len(prompts)
        for temperature in temperatures:
            todo = [i for i, result in enumerate(results) if result is None]
            if not todo:
                break
            for i, reply in zip(
                todo, self.ask([prompts[i] for i in todo], temperature), strict=True
            ):
                results[i] = parse_observations(reply.text)
        return [result or [] for result in results]


def _first_order(session: _Session, problem: str, config: PlanSearchConfig) -> list[str]:
    """Ask for observations, run the follow-ups and parse the formatted list."""
    prompt = OBSERVATIONS.format(problem=problem, n=config.n_observations)
    first = session.ask([prompt], config.idea_temperature)[0]
    history = [(prompt, first.text)]
    for follow_up in FOLLOW_UPS[:-1]:  # "list them", then "filter to the most useful"
        reply = session.ask([render_conversation(history, follow_up)], config.idea_temperature)
        history.append((follow_up, reply[0].text))
    final = render_conversation(history, FOLLOW_UPS[-1])
    return session.ask_lists([final], config.parse_temperatures)[0]


def _observation_sets(
    session: _Session, problem: str, config: PlanSearchConfig, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Return the observation sets to plan from: first order, then second order, truncated."""
    observations = _first_order(session, problem, config)
    sets = observation_subsets(observations, config.max_subset_size, rng)
    sets = sets[: config.max_observation_sets]
    if config.second_order:
        bases = [subset for subset in sets if subset]
        prompts = [SECOND_ORDER.format(problem=problem, observations=bullet_list(b)) for b in bases]
        for base, new in zip(
            bases, session.ask_lists(prompts, config.parse_temperatures), strict=True
        ):
            fresh = [obs for obs in new if obs not in base]
            subsets = observation_subsets(fresh, config.max_subset_size, rng)
            sets.extend(base + extra for extra in subsets if extra)
    seen: set[frozenset[str]] = set()
    kept = []
    for subset in sets:
        if frozenset(subset) not in seen:
            seen.add(frozenset(subset))
            kept.append(subset)
    return kept[: config.max_plans]


def plansearch(
    generator: Generator, prompt: str, config: PlanSearchConfig | None = None, *, seed: int = 0
) -> list[PlanCandidate]:
    """Run PlanSearch on one problem statement; return one program per plan.

    A candidate's tokens are its own pseudocode and code calls plus an even share of
    every shared call (observations, plans, critiques), so the pool sums to the spend.
    """
    config = config or PlanSearchConfig()
    rng = np.random.default_rng(seed)
    session = _Session(generator, seed, config.max_new_tokens)
    sets = _observation_sets(session, prompt, config, rng)
    plan_prompts = [PLAN.format(problem=prompt, observations=bullet_list(s)) for s in sets]
    sketches = [reply.text for reply in session.ask(plan_prompts, config.idea_temperature)]
    plans = [(s, sketch, False) for s, sketch in zip(sets, sketches, strict=True)]
    if config.criticism:
        turns = [[(p, sketch)] for p, sketch in zip(plan_prompts, sketches, strict=True)]
        critique_prompts = [render_conversation(t, CRITIQUE) for t in turns]
        critiques = session.ask(critique_prompts, config.idea_temperature)
        fix_prompts = [
            render_conversation([*t, (CRITIQUE, c.text)], FIX)
            for t, c in zip(turns, critiques, strict=True)
        ]
        fixes = session.ask(fix_prompts, config.idea_temperature)
        plans.extend((s, fix.text, True) for s, fix in zip(sets, fixes, strict=True))
    shared = len(session.replies)
    pseudo = [""] * len(plans)
    if config.pseudocode:
        pseudo_prompts = [PSEUDOCODE.format(problem=prompt, plan=plan) for _, plan, _ in plans]
        pseudo = [r.text for r in session.ask(pseudo_prompts, config.code_temperature)]
    code_prompts = [
        CODE.format(problem=prompt, plan=plan, pseudocode=p or "(none)", language=config.language)
        for (_, plan, _), p in zip(plans, pseudo, strict=True)
    ]
    codes = session.ask(code_prompts, config.code_temperature)
    own = session.replies[shared:]
    shared_prompt, shared_generated = total_tokens(session.replies[:shared])
    prompt_share = spread_tokens(shared_prompt, len(plans))
    generated_share = spread_tokens(shared_generated, len(plans))
    out = []
    for i, ((subset, plan, is_fixed), code) in enumerate(zip(plans, codes, strict=True)):
        mine = [own[i], own[len(plans) + i]] if config.pseudocode else [own[i]]
        own_prompt, own_generated = total_tokens(mine)
        candidate = Candidate(
            text=code.text,
            answer=extract_code(code.text),
            prompt_tokens=own_prompt + prompt_share[i],
            generated_tokens=own_generated + generated_share[i],
            logprob_sum=code.logprob_sum,
            finish_reason=code.finish_reason,
        )
        out.append(PlanCandidate(candidate, plan, subset, pseudo[i], is_fixed))
    return out


def _run(
    generator: Generator,
    problem: Problem,
    n: int,
    config: PlanSearchConfig,
    *,
    seed: int,
    max_new_tokens: int,
    scorer: Scorer | None,
    extras: Mapping[str, Any],
) -> list[Candidate]:
    """Observations -> plans -> code: each plan's program is one candidate."""
    del max_new_tokens, scorer, extras
    return [plan.candidate for plan in plansearch(generator, problem.prompt, config, seed=seed)][:n]


SCHEME = Scheme(
    name="plansearch",
    description="PlanSearch: observations, then natural-language plans, then code per plan.",
    config_class=PlanSearchConfig,
    function=plansearch,
    single_call=False,
    runner=_run,
    sizer=lambda n, config: min(n, config.max_plans),
)
