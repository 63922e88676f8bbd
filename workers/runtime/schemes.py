"""Runs a pool's prompting scheme on the engine and returns a problem's candidates.

Single-call schemes (direct, chain of thought, few-shot, CodeT's test prompt) render one
prompt and sample N continuations in one batch, or decode it by beam search (the N best
beams) or adaptive consistency. Multi-call schemes (verbalized sampling, iterative
deepening, verifier-guided refinement, sequential revision, PlanSearch) run themselves
(``Scheme.run``) against the engine through the ``strategies.types.Generator`` protocol;
refinement is guided by the model's self-evaluation score. Which is which, and
everything else about a scheme, comes from ``strategies.prompting`` and the pool's
``strategies.recipe.PoolRecipe``: nothing here switches on scheme names. Nothing here
imports Django or Celery.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from strategies import registry
from strategies.prompting.entries import SCHEMES
from strategies.prompting.scheme import plain_config
from strategies.recipe import (
    ADAPTIVE_DECODER,
    BEAM_DECODERS,
    MULTI_CALL_SCHEMES,
    SAMPLE_DECODER,
    SINGLE_CALL_SCHEMES,
    TEST_SCHEME,
    PoolRecipe,
)
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


@dataclass(frozen=True)
class SampleJob:
    """N samples of one user prompt under one decoding configuration and seed.

    A greedy configuration decodes one sample (the N would be identical). ``first``
    skips the samples below it (a pool grown from 16 to 64 decodes 16..63 only).
    """

    user_text: str
    decoding: DecodingConfig
    n: int
    seed: int
    stop_strings: tuple[str, ...] = ()
    first: int = 0

    def rows(self) -> int:
        """Rows the job takes in a batch."""
        return 1 if self.decoding.is_greedy else self.n - self.first


def _requests(
    loaded: LoadedModel, job: SampleJob, processors: dict[DecodingConfig, Processor]
) -> list[tuple[Request, list[int]]]:
    """The engine requests of one job, each with the sample indices it fills.

    A temperature mix is one request per temperature: temperature ``j`` fills indices
    ``j, j + len(mix), ...`` with seed ``stable_seed(seed, j)``. Requests with the same
    decoding configuration share one processor object (``processors``), so the engine
    chooses their rows' tokens in one call. Indices below ``job.first`` are skipped
    (the request's own ``first``), except in a greedy request's single row.
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
    out = []
    for group, seed, indices in groups:
        skip = 0 if group.is_greedy else sum(1 for i in indices if i < job.first)
        if skip == len(indices):
            continue
        request = Request(
            prompt_text=prompt,
            n=len(indices),
            processor=None if group.is_greedy else _shared_processor(processors, group),
            greedy=group.is_greedy,
            seed=seed,
            max_new_tokens=group.max_new_tokens,
            stop_strings=job.stop_strings,
            first=skip,
        )
        out.append((request, indices[skip:]))
    return out


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
) -> list[list[Candidate]]:
    """The samples of every job (from its ``first`` on), all decoded in shared batches
    of the engine.

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
    out: list[list[Candidate]] = []
    position = 0
    for job, requests in zip(jobs, planned, strict=True):
        by_index: dict[int, Candidate] = {}
        for _, indices in requests:
            samples = generated[position]
            position += 1
            for i, s in zip(indices, samples, strict=True):
                by_index[i] = Candidate(
                    text=s.text,
                    prompt_tokens=s.prompt_tokens,
                    generated_tokens=s.generated_tokens,
                    logprob_sum=s.logprob_sum,
                    finish_reason=s.finish_reason,
                    seconds=s.seconds,
                )
        out.append([by_index[i] for i in sorted(by_index) if i >= job.first])
    return out


def _sample(
    loaded: LoadedModel,
    user_text: str,
    decoding: DecodingConfig,
    n: int,
    seed: int,
    stop_strings: Sequence[str] = (),
    **engine: Any,
) -> list[Candidate]:
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
) -> list[Candidate]:
    """The ``n`` best beams of a (diverse) beam search over one prompt, best first."""
    if decoder not in BEAM_DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; valid: sample, {', '.join(BEAM_DECODERS)}")
    entry = registry.get(decoder)
    config = entry.config_class(
        **plain_config(decoder_config, tuples=True),
        num_return_sequences=n,
        max_new_tokens=max_new_tokens,
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
        Candidate(
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
        # A greedy prompt decodes once: its answer stands for all n.
        return [samples * n if decoding.is_greedy and n > 1 else samples for samples in pools]


def self_eval_scores(loaded: LoadedModel, problem_prompt: str, texts: Sequence[str]) -> list[float]:
    """The model's self-evaluation score of each response (ALGORITHMS section 12a)."""
    config = SelfEvalConfig()
    prompts = [render_self_eval(problem_prompt, text, config) for text in texts]
    pairs = yes_no_logprobs(loaded, prompts, yes=config.yes, no=config.no)
    return [self_eval_score(y, n) for y, n in pairs]


def _with_seconds(candidates: list[Candidate], seconds: float) -> list[Candidate]:
    """The candidates with ``seconds`` shared out by generated tokens (scores kept)."""
    total = sum(c.generated_tokens for c in candidates) or len(candidates) or 1
    return [replace(c, seconds=seconds * (c.generated_tokens or 1) / total) for c in candidates]


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
) -> list[Candidate]:
    """Sample in rounds and stop once the Beta rule says the majority is decided
    (ALGORITHMS section 12b): the samples never drawn are the compute saved."""
    drawn: list[Candidate] = []
    for round_index, size in enumerate(adaptive_rounds(min(n, config.max_samples))):
        drawn.extend(_sample(loaded, user_text, decoding, size, stable_seed(seed, round_index)))
        if should_stop([extract_answer(c.text) for c in drawn], config):
            break
    return drawn


def decodes_in_one_batch(scheme: str, decoder: Mapping[str, Any] | None) -> bool:
    """Whether each problem of a pool is plain samples of one rendered prompt: such pools
    (and problems) can share the engine's batches (``sample_job`` and ``sample_many``).
    An unknown scheme is not: ``pool_candidates`` reports it."""
    return not decoder and scheme in SCHEMES and SCHEMES[scheme].single_call


def _recipe(
    recipe: PoolRecipe | None,
    scheme: str | None,
    scheme_config: Mapping[str, Any] | None,
    decoding: DecodingConfig | None,
    decoder: Mapping[str, Any] | None,
) -> PoolRecipe:
    """The pool's recipe, given or made from the loose arguments (model and seed aside:
    generation takes the loaded model and the problem's seed)."""
    if recipe is not None:
        if scheme is not None or scheme_config is not None or decoding is not None or decoder:
            raise TypeError("pass a recipe or scheme, scheme_config, decoding and decoder")
        return recipe
    if scheme is None or decoding is None:
        raise TypeError("pass a recipe, or a scheme and a decoding")
    return PoolRecipe(
        model="",
        scheme=scheme,
        scheme_config=scheme_config or {},
        decoding=decoding,
        decoder=str((decoder or {}).get("name") or SAMPLE_DECODER),
        decoder_config=(decoder or {}).get("config") or {},
        seed=0,
    )


def _problem(problem_prompt: str, problem_metadata: Mapping[str, Any] | None) -> Problem:
    return Problem(prompt=problem_prompt, answer=None, metadata=dict(problem_metadata or {}))


def sample_job(
    *,
    scheme: str | None = None,
    scheme_config: Mapping[str, Any] | None = None,
    decoding: DecodingConfig | None = None,
    problem_prompt: str,
    n: int,
    seed: int,
    problem_metadata: Mapping[str, Any] | None = None,
    stop_strings: Sequence[str] = (),
    recipe: PoolRecipe | None = None,
    first: int = 0,
) -> SampleJob:
    """One problem of a single-call pool as a job for ``sample_many``: the same samples
    ``pool_candidates`` gives it (from index ``first`` on). The pool is a ``recipe`` or
    its scheme, config and decoding; ``seed`` is the problem's."""
    recipe = _recipe(recipe, scheme, scheme_config, decoding, None)
    if not recipe.batchable:
        raise ValueError(f"a {recipe.scheme} pool decoded by {recipe.decoder} is not one job")
    user_text = recipe.scheme_object.render(
        _problem(problem_prompt, problem_metadata), recipe.config()
    )
    return SampleJob(user_text, recipe.decoding, n, seed, tuple(stop_strings),
                     0 if recipe.decoding.is_greedy else first)


def pool_candidates(
    loaded: LoadedModel,
    *,
    scheme: str | None = None,
    scheme_config: Mapping[str, Any] | None = None,
    decoding: DecodingConfig | None = None,
    problem_prompt: str,
    n: int,
    seed: int,
    decoder: Mapping[str, Any] | None = None,
    problem_metadata: Mapping[str, Any] | None = None,
    stop_strings: Sequence[str] = (),
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    speculative_tokens: int = 0,
    draft: LoadedModel | None = None,
    recipe: PoolRecipe | None = None,
) -> list[Candidate]:
    """The N candidates of one problem under a prompting scheme (fewer if it stops early).

    The pool is a ``recipe``, or its ``scheme``, ``scheme_config`` (sequential revision's
    holds its ``budget_tokens``), ``decoding`` and non-sampling ``decoder`` ({"name",
    "config"}; empty to sample); ``seed`` is the problem's. A code problem's
    ``problem_metadata`` names its ``entry_point`` (the test-generation prompt needs it);
    ``stop_strings`` end sampled single-call candidates (e.g. after a function body).
    ``max_batch_rows``, ``speculative_tokens`` and ``draft`` go to the engine
    (``generate_batch``).
    """
    recipe = _recipe(recipe, scheme, scheme_config, decoding, decoder)
    engine: dict[str, Any] = {
        "max_batch_rows": max_batch_rows,
        "speculative_tokens": speculative_tokens,
        "draft": draft,
    }
    chosen = recipe.scheme_object
    config, extras = recipe.user_config()
    problem = _problem(problem_prompt, problem_metadata)
    if recipe.decoder != SAMPLE_DECODER and not chosen.single_call:
        what = "adaptive stopping" if recipe.is_adaptive else recipe.decoder
        raise ValueError(f"{what} needs a single-call prompting scheme, not {recipe.scheme!r}")
    if recipe.is_adaptive:
        return adaptive_candidates(
            loaded,
            chosen.render(problem, config),
            recipe.decoding,
            n=n,
            seed=seed,
            config=recipe.adaptive_config(),
        )
    if recipe.is_beam:
        return beam_candidates(
            loaded,
            chosen.render(problem, config),
            recipe.decoder,
            recipe.decoder_config,
            n=n,
            max_new_tokens=recipe.decoding.max_new_tokens,
        )
    if chosen.single_call:
        user_text = chosen.render(problem, config)
        return _sample(loaded, user_text, recipe.decoding, n, seed, stop_strings, **engine)

    def self_evaluation(candidate: Candidate) -> float:
        return self_eval_scores(loaded, problem_prompt, [candidate.text])[0]

    generator = EngineGenerator(loaded, recipe.decoding, **engine)
    started = time.perf_counter()
    candidates = chosen.run(
        generator,
        problem,
        n,
        config,
        seed=seed,
        max_new_tokens=recipe.decoding.max_new_tokens,
        scorer=self_evaluation,
        extras=extras,
    )
    return _with_seconds(candidates, time.perf_counter() - started)


__all__ = [
    "ADAPTIVE_DECODER",
    "BEAM_DECODERS",
    "MULTI_CALL_SCHEMES",
    "SINGLE_CALL_SCHEMES",
    "TEST_SCHEME",
    "EngineGenerator",
    "SampleJob",
    "adaptive_candidates",
    "adaptive_rounds",
    "beam_candidates",
    "decodes_in_one_batch",
    "forward_step",
    "pool_candidates",
    "sample_job",
    "sample_many",
    "self_eval_scores",
]
