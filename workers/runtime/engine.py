"""Batched sampler: prompts prefilled once, their candidates decoded together.

``generate_batch`` takes ``Request``s (a prompt, ``n``, a processor or greedy, a seed) and
decodes as many of them in one batch as ``max_batch_rows`` allows. Each prompt is
prefilled once with batch size 1; its keys/values are copied into the ``n`` rows of a
preallocated cache (``workers.runtime.kv_cache.RowCache``), left-padded to the batch's
longest prompt, and every row then decodes in lock-step with its own position ids. A row
that finishes (end-of-sequence token, stop string, or its ``max_new_tokens``) leaves the
batch: a live row from the end takes its place, so no step decodes a finished row.
``generate`` (one prompt) and ``generate_many`` (a list of prompts) are thin wrappers.

Log-probabilities are those of the unmodified model: the raw logit of the chosen token
minus the row's ``logsumexp``, whatever the processor did. Sampling is exact for
``softmax(processor(raw_logits, positions))`` and drawn by inverse CDF
(``workers.runtime.sampler``): sample ``i`` of a request uses the ``i``-th uniform that
the request's ``torch.Generator`` (seeded from its seed) draws at each step, so a sample
depends on its request's seed and ``n`` only, not on which other rows share the batch,
and the global RNG is never touched. Rows of one batch may use different processors.

Greedy requests decode one row (the ``n`` candidates are identical). With
``speculative_tokens`` they are decoded by prompt lookup (``workers.runtime.speculative``):
drafted tokens are verified by the model in one forward pass and only the model's own
argmax tokens are kept.

When a forward step runs out of memory (CUDA OOM, or a CPU allocation failure), the
step is rerun on halves of the batch (and again, down to one row); the smaller size is
kept for the rest of the call. A cache too large to allocate splits the batch. No sample
is lost or repeated, and since cache writes go to fixed columns a rerun step is exact.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from workers.runtime.forward import forward_rows, prefill, sliding_window
from workers.runtime.kv_cache import RowCache, layer_tensors
from workers.runtime.sampler import choose_tokens, token_logprobs
from workers.runtime.truncation import Truncation, describe_processor

if TYPE_CHECKING:
    import torch

    from workers.runtime.models import LoadedModel

logger = logging.getLogger(__name__)

FinishReason = Literal["eos", "length", "stop"]
#: ``processor(raw_logits_float32 [B, V], positions [B] int64) -> scores [B, V]``;
#: filtered tokens get ``-inf``. ``positions`` counts the tokens generated so far.
Processor = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

#: Rows decoded together at most (before any out-of-memory halving).
DEFAULT_MAX_BATCH_ROWS = 128
#: Generated tokens the KV cache has room for at first; it doubles when full.
_INITIAL_TOKENS = 256
#: Tokens decoded from the end of a sequence, beyond the longest stop string's length,
#: when looking for a stop string that the newest token may have completed.
_STOP_WINDOW_SLACK = 8


@dataclass(frozen=True)
class GeneratedSample:
    """One generated candidate.

    ``token_ids`` are all generated tokens, including the end-of-sequence token or the
    token that completed a stop string; ``token_logprobs`` has one raw-model log-prob
    per token and ``logprob_sum`` is their sum. ``text`` is the decoded generation
    (special tokens skipped), cut just before the first stop string when one was hit.
    ``seconds`` is this sample's share of the wall time of the batch that decoded it
    (proportional to its generated tokens; the shares of one call sum to its wall time).
    """

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    generated_tokens: int
    logprob_sum: float
    token_logprobs: tuple[float, ...]
    finish_reason: FinishReason
    seconds: float


@dataclass(frozen=True)
class Request:
    """One prompt (already rendered) to continue ``n`` times with one processor and seed.

    ``greedy`` takes the argmax of the raw logits (the processor is ignored).
    """

    prompt_text: str
    n: int
    processor: Processor | None
    greedy: bool
    seed: int
    max_new_tokens: int
    stop_strings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")


def stable_seed(seed: int, index: int) -> int:
    """A seed derived from ``(seed, index)`` that is the same in every process."""
    digest = hashlib.sha256(f"{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**63 - 1)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CUDA OOM or a CPU allocator error)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    message = str(exc).lower()
    return any(
        text in message
        for text in ("out of memory", "can't allocate memory", "cannot allocate memory")
    )


@dataclass
class _Job:
    """The decoding state of one request's samples."""

    request: Request
    prompt_ids: list[int]
    spec: Truncation | None
    stops: tuple[str, ...]
    rows: int  # samples actually decoded: 1 for greedy (the n are identical)
    tokens: list[list[int]] = field(default_factory=list)
    logprobs: list[list[float]] = field(default_factory=list)
    finish: list[FinishReason | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens = [[] for _ in range(self.rows)]
        self.logprobs = [[] for _ in range(self.rows)]
        self.finish = [None] * self.rows
        self.seconds = [0.0] * self.rows

    @property
    def stop_window(self) -> int:
        return max((len(s) for s in self.stops), default=0) + _STOP_WINDOW_SLACK

    def add(self, sample: int, token: int, logprob: float, eos: set[int], tokenizer: Any) -> bool:
        """Record one token of ``sample``; True when the sample is finished."""
        tokens = self.tokens[sample]
        tokens.append(token)
        self.logprobs[sample].append(logprob)
        if token in eos:
            self.finish[sample] = "eos"
        elif self.stops and _find_stop(
            tokenizer.decode(tokens[-self.stop_window :], skip_special_tokens=True), self.stops
        ) >= 0:
            self.finish[sample] = "stop"
        elif len(tokens) >= self.request.max_new_tokens:
            self.finish[sample] = "length"
        else:
            return False
        return True


@dataclass(frozen=True)
class _Part:
    """Samples ``[start, stop)`` of job ``job``, decoded in one batch."""

    job: int
    start: int
    stop: int


@dataclass
class _Budget:
    """Rows one forward call may take; halved for the rest of the call after an OOM."""

    rows: int


class _CacheTooLarge(Exception):
    """The KV cache of a planned batch could not be allocated."""


def _find_stop(text: str, stop_strings: Sequence[str]) -> int:
    """Index of the earliest stop string in ``text``, or -1."""
    hits = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(hits) if hits else -1


def _forward_step(
    loaded: LoadedModel,
    cache: RowCache,
    ids: torch.Tensor,
    positions: torch.Tensor,
    budget: _Budget,
    window: int | None,
) -> torch.Tensor:
    """Last-position logits ``[rows, V]`` of one step, in chunks of ``budget.rows`` rows.

    A chunk that runs out of memory halves ``budget.rows`` and is run again in smaller
    chunks; its cache writes land in the same columns, so nothing is duplicated.
    """
    import torch

    rows = ids.shape[0]
    chunks: list[torch.Tensor] = []
    start = 0
    while start < rows:
        stop = min(rows, start + budget.rows)
        try:
            logits = forward_rows(
                loaded, cache, ids[start:stop], positions[start:stop], start, stop, window
            )
        except RuntimeError as exc:
            if not is_out_of_memory(exc) or stop - start == 1:
                raise
            budget.rows = max(1, (stop - start) // 2)
            logger.warning(
                "out of memory decoding %d rows; continuing %d rows at a time",
                stop - start,
                budget.rows,
            )
            _release_memory(loaded)
            continue
        chunks.append(logits[:, -1, :])
        start = stop
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def _release_memory(loaded: LoadedModel) -> None:
    import torch

    if loaded.device.type == "cuda":
        torch.cuda.empty_cache()


def _plan(parts: list[_Part], max_rows: int) -> list[list[_Part]]:
    """Consecutive batches of at most ``max_rows`` rows; a large part is split."""
    batches: list[list[_Part]] = []
    current: list[_Part] = []
    used = 0
    for part in parts:
        start = part.start
        while start < part.stop:
            take = min(part.stop - start, max_rows - used)
            current.append(_Part(part.job, start, start + take))
            used += take
            start += take
            if used == max_rows:
                batches.append(current)
                current, used = [], 0
    if current:
        batches.append(current)
    return batches


def _decode_batch(
    loaded: LoadedModel, jobs: list[_Job], parts: list[_Part], budget: _Budget
) -> None:
    """Decode every sample of ``parts`` together, recording tokens into their jobs."""
    import torch

    device = loaded.device
    tokenizer = loaded.tokenizer
    eos = set(loaded.eos_token_ids)
    window = sliding_window(loaded.model)
    width = max(len(jobs[p.job].prompt_ids) for p in parts)
    longest = max(jobs[p.job].request.max_new_tokens for p in parts)
    total_rows = sum(p.stop - p.start for p in parts)

    # Row r of the batch holds sample row_sample[r] of part row_part[r].
    row_part: list[int] = []
    row_sample: list[int] = []
    cache: RowCache | None = None
    first_logits: list[torch.Tensor] = []
    for index, part in enumerate(parts):
        job = jobs[part.job]
        prompt_cache, logits = prefill(loaded, job.prompt_ids)
        if cache is None:
            dtype = layer_tensors(prompt_cache)[0][0].dtype
            try:
                cache = RowCache(
                    loaded.model,
                    total_rows,
                    width + longest - 1,
                    dtype=dtype,
                    device=device,
                    reserved=width + _INITIAL_TOKENS,
                )
            except RuntimeError as exc:
                if is_out_of_memory(exc) and total_rows > 1:
                    raise _CacheTooLarge from exc
                raise
        first = len(row_part)
        count = part.stop - part.start
        cache.write_prompt(
            slice(first, first + count), prompt_cache, width - len(job.prompt_ids)
        )
        del prompt_cache
        first_logits.append(logits.expand(count, -1))
        row_part.extend([index] * count)
        row_sample.extend(range(part.start, part.stop))
    assert cache is not None
    cache.column = width
    logits = torch.cat(first_logits) if len(first_logits) > 1 else first_logits[0].contiguous()
    generators = []
    for part in parts:
        request = jobs[part.job].request
        generator = torch.Generator(device=device)
        generator.manual_seed(int(request.seed) % (2**64))
        generators.append(generator)

    step = 0
    while True:
        chosen = _choose_batch(logits, step, jobs, parts, generators, row_part, row_sample)
        chosen_lp = token_logprobs(logits, chosen).tolist()
        chosen_ids = chosen.tolist()
        keep: list[int] = []
        for row, token in enumerate(chosen_ids):
            job = jobs[parts[row_part[row]].job]
            if not job.add(row_sample[row], token, chosen_lp[row], eos, tokenizer):
                keep.append(row)
        if not keep:
            break
        if len(keep) < len(row_part):
            order = cache.keep_rows(keep)
            row_part = [row_part[r] for r in order]
            row_sample = [row_sample[r] for r in order]
            chosen_ids = [chosen_ids[r] for r in order]
        ids = torch.tensor(chosen_ids, dtype=torch.long, device=device).unsqueeze(-1)
        lengths = [len(jobs[parts[p].job].prompt_ids) + step for p in row_part]
        positions = torch.tensor(lengths, dtype=torch.long, device=device).unsqueeze(-1)
        cache.reserve(cache.column + 1)
        logits = _forward_step(loaded, cache, ids, positions, budget, window)
        cache.column += 1
        step += 1


def _choose_batch(
    logits: torch.Tensor,
    step: int,
    jobs: list[_Job],
    parts: list[_Part],
    generators: list[torch.Generator],
    row_part: list[int],
    row_sample: list[int],
) -> torch.Tensor:
    """One token per row; rows are grouped by their request's processor."""
    import torch

    device = logits.device
    # One uniform per sample of each live sampled part: sample i always gets entry i.
    live = sorted(set(row_part))
    offsets: dict[int, int] = {}
    draws: list[torch.Tensor] = []
    used = 0
    for p in live:
        request = jobs[parts[p].job].request
        if request.greedy:
            continue
        offsets[p] = used
        draws.append(
            torch.rand(request.n, generator=generators[p], dtype=torch.float64, device=device)
        )
        used += request.n
    uniforms = None
    if draws:
        pool = torch.cat(draws) if len(draws) > 1 else draws[0]
        index = [offsets.get(p, 0) + s for p, s in zip(row_part, row_sample, strict=True)]
        uniforms = pool[torch.tensor(index, dtype=torch.long, device=device)]
    # Rows sharing a processor (and greedy flag) are chosen together.
    classes: dict[tuple[int, bool], list[int]] = {}
    for row, p in enumerate(row_part):
        request = jobs[parts[p].job].request
        key = (id(request.processor), request.greedy)
        classes.setdefault(key, []).append(row)
    if len(classes) == 1:
        request = jobs[parts[row_part[0]].job].request
        job = jobs[parts[row_part[0]].job]
        return choose_tokens(
            logits, uniforms, step=step, processor=request.processor, spec=job.spec,
            greedy=request.greedy,
        )
    chosen = torch.empty(logits.shape[0], dtype=torch.long, device=device)
    for rows in classes.values():
        job = jobs[parts[row_part[rows[0]]].job]
        index_t = torch.tensor(rows, dtype=torch.long, device=device)
        chosen[index_t] = choose_tokens(
            logits.index_select(0, index_t),
            None if uniforms is None else uniforms[index_t],
            step=step,
            processor=job.request.processor,
            spec=job.spec,
            greedy=job.request.greedy,
        )
    return chosen


def _decode_speculative(loaded: LoadedModel, job: _Job, draft_tokens: int) -> None:
    """Greedy decoding of ``job`` with prompt-lookup drafts (``speculative``)."""
    from workers.runtime.speculative import greedy_speculative

    tokens, logprobs, finish, _ = greedy_speculative(
        loaded,
        job.prompt_ids,
        max_new_tokens=job.request.max_new_tokens,
        draft_tokens=draft_tokens,
        stop_strings=job.stops,
    )
    job.tokens[0] = tokens
    job.logprobs[0] = logprobs
    job.finish[0] = finish


def generate_batch(
    loaded: LoadedModel,
    requests: Sequence[Request],
    *,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    speculative_tokens: int = 0,
) -> list[list[GeneratedSample]]:
    """Samples of every request (a list per request, in order), decoded in shared batches.

    Requests are packed in order into batches of at most ``max_batch_rows`` rows (a
    request with more samples is split over batches). ``speculative_tokens`` > 0 decodes
    greedy requests alone with that many prompt-lookup draft tokens per step.
    """
    import torch

    if max_batch_rows < 1:
        raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows}")
    if speculative_tokens < 0:
        raise ValueError(f"speculative_tokens must be >= 0, got {speculative_tokens}")
    started = time.perf_counter()
    jobs: list[_Job] = []
    for request in requests:
        prompt_ids = loaded.encode_prompt(request.prompt_text)
        if not prompt_ids:
            raise ValueError("the prompt encodes to no tokens")
        jobs.append(
            _Job(
                request=request,
                prompt_ids=prompt_ids,
                spec=None if request.greedy else describe_processor(request.processor),
                stops=tuple(s for s in request.stop_strings if s),
                rows=1 if request.greedy else request.n,
            )
        )
    budget = _Budget(rows=max_batch_rows)
    with torch.inference_mode():
        parts: list[_Part] = []
        for index, job in enumerate(jobs):
            if job.request.greedy and speculative_tokens:
                began = time.perf_counter()
                _decode_speculative(loaded, job, speculative_tokens)
                job.seconds[0] = time.perf_counter() - began
            else:
                parts.append(_Part(index, 0, job.rows))
        batches = _plan(parts, max_batch_rows)
        done = 0
        while done < len(batches):
            batch = batches[done]
            began = time.perf_counter()
            try:
                _decode_batch(loaded, jobs, batch, budget)
            except _CacheTooLarge:
                rows = sum(p.stop - p.start for p in batch)
                budget.rows = min(budget.rows, max(1, rows // 2))
                logger.warning("no memory for a %d-row cache; batches of %d", rows, budget.rows)
                _release_memory(loaded)
                remaining = [p for b in batches[done:] for p in b]
                batches = batches[:done] + _plan(remaining, budget.rows)
                continue
            _share_seconds(jobs, batch, time.perf_counter() - began)
            done += 1
    results = [_samples(loaded, job) for job in jobs]
    wall = time.perf_counter() - started
    total = sum(s.generated_tokens for samples in results for s in samples)
    logger.debug(
        "generated %d samples of %d requests (%d tokens) in %.2f s: %.1f tok/s",
        sum(len(s) for s in results),
        len(requests),
        total,
        wall,
        total / wall if wall > 0 else 0.0,
    )
    return results


def _share_seconds(jobs: list[_Job], batch: list[_Part], seconds: float) -> None:
    """Split a batch's wall time over its samples in proportion to their tokens."""
    samples = [(jobs[p.job], s) for p in batch for s in range(p.start, p.stop)]
    total = sum(len(job.tokens[s]) for job, s in samples)
    for job, s in samples:
        share = len(job.tokens[s]) / total if total else 1 / len(samples)
        job.seconds[s] += seconds * share


def _samples(loaded: LoadedModel, job: _Job) -> list[GeneratedSample]:
    """The finished samples of a job (a greedy job's one row repeated ``n`` times)."""
    out: list[GeneratedSample] = []
    for i in range(job.rows):
        text = loaded.tokenizer.decode(job.tokens[i], skip_special_tokens=True)
        if job.finish[i] == "stop":
            cut = _find_stop(text, job.stops)
            if cut >= 0:
                text = text[:cut]
        out.append(
            GeneratedSample(
                text=text,
                token_ids=tuple(job.tokens[i]),
                prompt_tokens=len(job.prompt_ids),
                generated_tokens=len(job.tokens[i]),
                logprob_sum=math.fsum(job.logprobs[i]),
                token_logprobs=tuple(job.logprobs[i]),
                finish_reason=job.finish[i] or "length",
                seconds=job.seconds[i],
            )
        )
    if job.rows < job.request.n:
        copies = job.request.n
        out = [replace(out[0], seconds=out[0].seconds / copies)] * copies
    return out


def generate(
    loaded: LoadedModel,
    prompt_text: str,
    *,
    n: int,
    processor: Processor | None,
    greedy: bool,
    max_new_tokens: int,
    seed: int,
    stop_strings: Sequence[str] = (),
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    speculative_tokens: int = 0,
) -> list[GeneratedSample]:
    """Generate ``n`` candidates continuing ``prompt_text`` (already rendered).

    The prompt is prefilled once (batch size 1) and its KV cache shared by the ``n``
    rows. Each row stops on any of ``loaded.eos_token_ids`` ("eos"), on a stop string
    ("stop") or after ``max_new_tokens`` tokens ("length"), and then leaves the batch.
    ``greedy`` takes the argmax of the raw logits (the processor is ignored);
    otherwise tokens are drawn from ``softmax(processor(logits, positions))``.
    Samples are returned in row order 0..n-1.
    """
    request = Request(
        prompt_text=prompt_text,
        n=n,
        processor=processor,
        greedy=greedy,
        seed=seed,
        max_new_tokens=max_new_tokens,
        stop_strings=tuple(stop_strings),
    )
    [samples] = generate_batch(
        loaded, [request], max_batch_rows=max_batch_rows, speculative_tokens=speculative_tokens
    )
    return samples


def generate_many(
    loaded: LoadedModel,
    prompts: Sequence[str],
    *,
    n: int,
    processor: Processor | None,
    greedy: bool,
    max_new_tokens: int,
    seed: int,
    stop_strings: Sequence[str] = (),
    processors: Sequence[Processor | None] | None = None,
    greedy_per_prompt: Sequence[bool] | None = None,
    seeds: Sequence[int] | None = None,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    speculative_tokens: int = 0,
) -> list[list[GeneratedSample]]:
    """``generate`` for every prompt, decoded together in batches of ``max_batch_rows``.

    Prompt ``i`` uses ``stable_seed(seed, i)`` unless ``seeds`` gives its seed, and
    ``processor``/``greedy`` unless ``processors``/``greedy_per_prompt`` give its own
    (e.g. a top-H pool and a min-p pool of the same problems in one batch). Each prompt's
    samples equal those of ``generate`` with the same seed.
    """
    for name, values in (
        ("processors", processors),
        ("greedy_per_prompt", greedy_per_prompt),
        ("seeds", seeds),
    ):
        if values is not None and len(values) != len(prompts):
            raise ValueError(f"{name} has {len(values)} entries for {len(prompts)} prompts")
    requests = [
        Request(
            prompt_text=prompt,
            n=n,
            processor=processor if processors is None else processors[i],
            greedy=greedy if greedy_per_prompt is None else bool(greedy_per_prompt[i]),
            seed=stable_seed(seed, i) if seeds is None else int(seeds[i]),
            max_new_tokens=max_new_tokens,
            stop_strings=tuple(stop_strings),
        )
        for i, prompt in enumerate(prompts)
    ]
    return generate_batch(
        loaded, requests, max_batch_rows=max_batch_rows, speculative_tokens=speculative_tokens
    )
