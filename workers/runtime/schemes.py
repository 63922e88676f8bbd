"""Runs a prompting scheme on the engine and returns a problem's N candidates.

Single-call schemes (direct, chain of thought, few-shot) render one prompt and
sample N continuations in one batch, or decode it by beam search (the N best beams).
Multi-call schemes (verbalized sampling, iterative deepening, verifier-guided
refinement, sequential revision) drive the engine through the
``strategies.types.Generator`` protocol; refinement is guided by the model's
self-evaluation score. Nothing here imports Django or Celery.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from strategies import registry
from strategies.prompting.deepening import iterative_deepening
from strategies.prompting.plansearch import plansearch
from strategies.prompting.refine import refine
from strategies.prompting.sequential import sequential_revision
from strategies.prompting.verbalized import verbalized_pool
from strategies.sampling import DecodingConfig, build_processor
from strategies.sampling.beam import StepFunction
from strategies.select.adaptive import AdaptiveConfig, should_stop
from strategies.types import Candidate, Problem
from strategies.verify.extract import extract_answer
from strategies.verify.self_eval import SelfEvalConfig, render_self_eval, self_eval_score
from workers.runtime.engine import (
    DEFAULT_MAX_BATCH_ROWS,
    Processor,
    Request,
    generate_batch,
    stable_seed,
)
from workers.runtime.scoring import yes_no_logprobs

if TYPE_CHECKING:
    from workers.runtime.models import LoadedModel

SINGLE_CALL_SCHEMES = ("direct", "chain_of_thought", "few_shot")
# CodeT's test-generation prompt: one call per problem, sampled like a single-call scheme.
TEST_SCHEME = "generated_tests"
MULTI_CALL_SCHEMES = ("verbalized", "deepening", "refine", "sequential", "plansearch")
BEAM_DECODERS = ("beam_search", "diverse_beam_search")
ADAPTIVE_DECODER = "adaptive_consistency"


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


@dataclass(frozen=True)
class SampleJob:
    """N samples of one user prompt under one decoding configuration and seed.

    A greedy configuration decodes one sample (the N would be identical).
    """

    user_text: str
    decoding: DecodingConfig
    n: int
    seed: int
    stop_strings: tuple[str, ...] = ()

    def rows(self) -> int:
        """Rows the job takes in a batch."""
        return 1 if self.decoding.is_greedy else self.n


def _requests(
    loaded: LoadedModel, job: SampleJob, processors: dict[DecodingConfig, Processor]
) -> list[tuple[Request, list[int]]]:
    """The engine requests of one job, each with the sample indices it fills.

    A temperature mix is one request per temperature: temperature ``j`` fills indices
    ``j, j + len(mix), ...`` with seed ``stable_seed(seed, j)``. Requests with the same
    decoding configuration share one processor object (``processors``), so the engine
    chooses their rows' tokens in one call.
    """
    prompt = loaded.render_prompt(job.user_text)
    decoding = job.decoding
    if decoding.temperature_mix and not decoding.is_greedy:
        mix = decoding.temperature_mix
        groups = [
            (
                replace(decoding, temperature=t, temperature_mix=()),
                stable_seed(job.seed, j),
                list(range(j, job.n, len(mix))),
            )
            for j, t in enumerate(mix)
        ]
    else:
        groups = [(decoding, job.seed, list(range(1 if decoding.is_greedy else job.n)))]
    return [
        (
            Request(
                prompt_text=prompt,
                n=len(indices),
                processor=None if group.is_greedy else _shared_processor(processors, group),
                greedy=group.is_greedy,
                seed=seed,
                max_new_tokens=group.max_new_tokens,
                stop_strings=job.stop_strings,
            ),
            indices,
        )
        for group, seed, indices in groups
        if indices
    ]


def _shared_processor(
    processors: dict[DecodingConfig, Processor], decoding: DecodingConfig
) -> Processor:
    if decoding not in processors:
        processors[decoding] = build_processor(decoding)
    return processors[decoding]


def sample_many(
    loaded: LoadedModel,
    jobs: Sequence[SampleJob],
    *,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    speculative_tokens: int = 0,
    draft: LoadedModel | None = None,
) -> list[list[PoolCandidate]]:
    """The samples of every job, all decoded in shared batches of the engine.

    Jobs may mix prompts, samplers and seeds (e.g. a top-H and a min-p pool of the
    same problems); each job's samples equal those it gets decoded alone.
    """
    processors: dict[DecodingConfig, Processor] = {}
    planned = [_requests(loaded, job, processors) for job in jobs]
    flat = [request for requests in planned for request, _ in requests]
    generated = generate_batch(
        loaded,
        flat,
        max_batch_rows=max_batch_rows,
        speculative_tokens=speculative_tokens,
        draft=draft,
    )
    out: list[list[PoolCandidate]] = []
    position = 0
    for requests in planned:
        by_index: dict[int, PoolCandidate] = {}
        for _, indices in requests:
            samples = generated[position]
            position += 1
            for i, s in zip(indices, samples, strict=True):
                by_index[i] = PoolCandidate(
                    s.text,
                    s.prompt_tokens,
                    s.generated_tokens,
                    s.logprob_sum,
                    s.finish_reason,
                    s.seconds,
                )
        out.append([by_index[i] for i in sorted(by_index)])
    return out


def _sample(
    loaded: LoadedModel,
    user_text: str,
    decoding: DecodingConfig,
    n: int,
    seed: int,
    stop_strings: Sequence[str] = (),
    **engine: Any,
) -> list[PoolCandidate]:
    """N samples of one prompt (one for greedy decoding); ``engine`` holds
    ``sample_many``'s ``max_batch_rows``, ``speculative_tokens`` and ``draft``."""
    job = SampleJob(user_text, decoding, n, seed, tuple(stop_strings))
    [samples] = sample_many(loaded, [job], **engine)
    return samples


def forward_step(loaded: LoadedModel) -> StepFunction:
    """A beam-search step over the model: next-token log-probs (float32) of each sequence.

    Each call runs a full forward pass (no KV cache) over the sequences, left-padded with
    an attention mask and matching position ids, and returns ``log_softmax`` of the last
    position. Simple and exact; quadratic in length, which suits short generations.
    """
    import torch

    model = loaded.model
    pad = loaded.tokenizer.pad_token_id
    pad = int(pad if pad is not None else loaded.eos_token_ids[0])
    try:
        # Only the last position's logits are needed, where the model can skip the rest.
        extra = (
            {"logits_to_keep": 1}
            if "logits_to_keep" in inspect.signature(model.forward).parameters
            else {}
        )
    except (TypeError, ValueError):
        extra = {}

    def step(sequences: list[list[int]]) -> torch.Tensor:
        longest = max(len(seq) for seq in sequences)
        ids = torch.full((len(sequences), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, longest - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, longest - len(seq) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = model(
                input_ids=ids.to(loaded.device),
                attention_mask=mask.to(loaded.device),
                position_ids=positions.to(loaded.device),
                use_cache=False,
                **extra,
            )
        return torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)

    return step


def beam_candidates(
    loaded: LoadedModel,
    user_text: str,
    decoder: str,
    decoder_config: Mapping[str, Any],
    *,
    n: int,
    max_new_tokens: int,
) -> list[PoolCandidate]:
    """The ``n`` best beams of a (diverse) beam search over one prompt, best first."""
    if decoder not in BEAM_DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; valid: sample, {', '.join(BEAM_DECODERS)}")
    entry = registry.get(decoder)
    config = entry.config_class(
        **_tuples(dict(decoder_config)), num_return_sequences=n, max_new_tokens=max_new_tokens
    )
    started = time.perf_counter()
    prompt_ids = loaded.encode_prompt(loaded.render_prompt(user_text))
    if not prompt_ids:
        raise ValueError("the prompt encodes to no tokens")
    eos = set(loaded.eos_token_ids)
    hypotheses = entry.function(forward_step(loaded), prompt_ids, loaded.eos_token_ids, config)
    wall = time.perf_counter() - started
    total = sum(len(h.token_ids) for h in hypotheses) or 1
    return [
        PoolCandidate(
            text=loaded.tokenizer.decode(list(h.token_ids), skip_special_tokens=True),
            prompt_tokens=len(prompt_ids),
            generated_tokens=len(h.token_ids),
            logprob_sum=h.logprob_sum,
            finish_reason="eos" if h.token_ids and h.token_ids[-1] in eos else "length",
            seconds=wall * len(h.token_ids) / total,
        )
        for h in hypotheses
    ]


class EngineGenerator:
    """The ``Generator`` protocol over the engine, keeping the row's truncation settings.

    All prompts of one call decode together in shared batches; ``speculative_tokens``
    lets a greedy prompt that decodes alone draft by prompt lookup, or with ``draft``
    (same output).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        decoding: DecodingConfig,
        *,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        speculative_tokens: int = 0,
        draft: LoadedModel | None = None,
    ) -> None:
        self.loaded = loaded
        self.decoding = decoding
        self.max_batch_rows = max_batch_rows
        self.speculative_tokens = speculative_tokens
        self.draft = draft

    def __call__(
        self, prompts: Sequence[str], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[Candidate]]:
        decoding = replace(
            self.decoding,
            temperature=temperature,
            temperature_mix=(),
            ead=False if temperature != 1.0 else self.decoding.ead,
            max_new_tokens=min(max_new_tokens, self.decoding.max_new_tokens),
        )
        jobs = [
            SampleJob(prompt, decoding, n, stable_seed(seed, i)) for i, prompt in enumerate(prompts)
        ]
        pools = sample_many(
            self.loaded,
            jobs,
            max_batch_rows=self.max_batch_rows,
            speculative_tokens=self.speculative_tokens,
            draft=self.draft,
        )
        out = []
        for samples in pools:
            if decoding.is_greedy and n > 1:
                samples = samples * n
            out.append(
                [
                    Candidate(
                        text=s.text,
                        prompt_tokens=s.prompt_tokens,
                        generated_tokens=s.generated_tokens,
                        logprob_sum=s.logprob_sum,
                        finish_reason=s.finish_reason,
                    )
                    for s in samples
                ]
            )
        return out


def self_eval_scores(loaded: LoadedModel, problem_prompt: str, texts: Sequence[str]) -> list[float]:
    """The model's self-evaluation score of each response (ALGORITHMS section 12a)."""
    config = SelfEvalConfig()
    prompts = [render_self_eval(problem_prompt, text, config) for text in texts]
    pairs = yes_no_logprobs(loaded, prompts, yes=config.yes, no=config.no)
    return [self_eval_score(y, n) for y, n in pairs]


def _with_seconds(
    candidates: list[Candidate], seconds: float, scores: Sequence[float | None] | None = None
) -> list[PoolCandidate]:
    total = sum(c.generated_tokens for c in candidates) or len(candidates) or 1
    return [
        PoolCandidate(
            c.text,
            c.prompt_tokens,
            c.generated_tokens,
            c.logprob_sum,
            c.finish_reason,
            seconds * (c.generated_tokens or 1) / total if candidates else 0.0,
            None if scores is None else scores[i],
        )
        for i, c in enumerate(candidates)
    ]


def adaptive_rounds(n: int) -> list[int]:
    """Round sizes 1, 1, 2, 4, 8, ... summing to ``n`` (the last one trimmed).

    >>> adaptive_rounds(10)
    [1, 1, 2, 4, 2]
    """
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(1 if len(sizes) < 2 else sizes[-1] * 2)
    sizes[-1] -= sum(sizes) - n
    return sizes


def adaptive_candidates(
    loaded: LoadedModel,
    user_text: str,
    decoding: DecodingConfig,
    *,
    n: int,
    seed: int,
    config: AdaptiveConfig,
) -> list[PoolCandidate]:
    """Sample in rounds and stop once the Beta rule says the majority is decided
    (ALGORITHMS section 12b): the samples never drawn are the compute saved."""
    drawn: list[PoolCandidate] = []
    for round_index, size in enumerate(adaptive_rounds(min(n, config.max_samples))):
        drawn.extend(_sample(loaded, user_text, decoding, size, stable_seed(seed, round_index)))
        if should_stop([extract_answer(c.text) for c in drawn], config):
            break
    return drawn


def decodes_in_one_batch(scheme: str, decoder: Mapping[str, Any] | None) -> bool:
    """Whether each problem of a pool is plain samples of one rendered prompt: such pools
    (and problems) can share the engine's batches (``sample_job`` and ``sample_many``)."""
    return not decoder and (scheme in SINGLE_CALL_SCHEMES or scheme == TEST_SCHEME)


def sample_job(
    *,
    scheme: str,
    scheme_config: dict[str, Any],
    decoding: DecodingConfig,
    problem_prompt: str,
    n: int,
    seed: int,
    problem_metadata: Mapping[str, Any] | None = None,
    stop_strings: Sequence[str] = (),
) -> SampleJob:
    """One problem of a single-call pool as a job for ``sample_many``: the same samples
    ``pool_candidates`` gives it."""
    entry = registry.get(scheme)
    values = _tuples(scheme_config)
    values.pop("budget_tokens", None)
    problem = Problem(prompt=problem_prompt, answer=None, metadata=dict(problem_metadata or {}))
    user_text = entry.function(problem, entry.config_class(**values))
    return SampleJob(user_text, decoding, n, seed, tuple(stop_strings))


def pool_candidates(
    loaded: LoadedModel,
    *,
    scheme: str,
    scheme_config: dict[str, Any],
    decoding: DecodingConfig,
    problem_prompt: str,
    n: int,
    seed: int,
    decoder: Mapping[str, Any] | None = None,
    problem_metadata: Mapping[str, Any] | None = None,
    stop_strings: Sequence[str] = (),
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    speculative_tokens: int = 0,
    draft: LoadedModel | None = None,
) -> list[PoolCandidate]:
    """The N candidates of one problem under a prompting scheme (fewer if it stops early).

    ``decoder`` is the pool's non-sampling decoder ({"name", "config"}; empty to sample).
    Sequential revision's ``scheme_config`` holds its ``budget_tokens``. A code problem's
    ``problem_metadata`` names its ``entry_point`` (the test-generation prompt needs it);
    ``stop_strings`` end sampled single-call candidates (e.g. after a function body).
    ``max_batch_rows``, ``speculative_tokens`` and ``draft`` go to the engine
    (``generate_batch``).
    """
    entry = registry.get(scheme)
    values = _tuples(scheme_config)
    budget = values.pop("budget_tokens", None)
    config = entry.config_class(**values)
    problem = Problem(prompt=problem_prompt, answer=None, metadata=dict(problem_metadata or {}))
    if decoder and decoder["name"] == ADAPTIVE_DECODER:
        if scheme not in SINGLE_CALL_SCHEMES:
            raise ValueError(
                f"adaptive stopping needs a single-call prompting scheme, not {scheme!r}"
            )
        stop = AdaptiveConfig(**decoder.get("config", {}))
        return adaptive_candidates(
            loaded, entry.function(problem, config), decoding, n=n, seed=seed, config=stop
        )
    if decoder:
        if scheme not in SINGLE_CALL_SCHEMES:
            raise ValueError(
                f"{decoder['name']} needs a single-call prompting scheme, not {scheme!r}"
            )
        return beam_candidates(
            loaded,
            entry.function(problem, config),
            decoder["name"],
            decoder.get("config", {}),
            n=n,
            max_new_tokens=decoding.max_new_tokens,
        )
    if scheme in SINGLE_CALL_SCHEMES or scheme == TEST_SCHEME:
        return _sample(
            loaded,
            entry.function(problem, config),
            decoding,
            n,
            seed,
            stop_strings,
            max_batch_rows=max_batch_rows,
            speculative_tokens=speculative_tokens,
            draft=draft,
        )
    if scheme not in MULTI_CALL_SCHEMES:
        raise ValueError(f"prompting scheme {scheme!r} cannot run in a sample pool")
    generator = EngineGenerator(
        loaded,
        decoding,
        max_batch_rows=max_batch_rows,
        speculative_tokens=speculative_tokens,
        draft=draft,
    )
    started = time.perf_counter()
    if scheme == "sequential":
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise ValueError("sequential revision needs an integer budget_tokens")
        # Each call is capped like one sample of a parallel pool; the pool keeps N at most.
        config = replace(
            config, max_new_tokens=decoding.max_new_tokens, max_rounds=min(config.max_rounds, n)
        )
        chain = sequential_revision(generator, problem_prompt, budget, config, seed=seed)
        return _with_seconds(chain[:n], time.perf_counter() - started)
    if scheme == "plansearch":
        # Observations -> plans -> code: each plan's program is one candidate.
        plans = plansearch(generator, problem_prompt, config, seed=seed)
        candidates = [plan.candidate for plan in plans][:n]
        return _with_seconds(candidates, time.perf_counter() - started)
    if scheme == "verbalized":
        candidates = verbalized_pool(generator, problem_prompt, n, config, seed=seed)
        return _with_seconds(
            candidates, time.perf_counter() - started, [c.score for c in candidates]
        )
    if scheme == "deepening":
        chains = iterative_deepening(generator, problem_prompt, config, n=n, seed=seed)
        finals = [
            Candidate(
                text=chain[-1].text,
                prompt_tokens=sum(c.prompt_tokens for c in chain),
                generated_tokens=sum(c.generated_tokens for c in chain),
                logprob_sum=chain[-1].logprob_sum,
                finish_reason=chain[-1].finish_reason,
            )
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


__all__ = [
    "EngineGenerator",
    "PoolCandidate",
    "SampleJob",
    "beam_candidates",
    "forward_step",
    "decodes_in_one_batch",
    "pool_candidates",
    "sample_job",
    "sample_many",
    "self_eval_scores",
]
