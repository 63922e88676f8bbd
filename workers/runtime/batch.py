"""Decoding one batch: the rows of several requests, prefilled, then stepped together.

A ``Request`` is one prompt to continue ``n`` times with one ``Processor`` (or greedily)
and one seed; it is defined here, below the engine, so that the engine imports this
module and nothing here imports the engine.

``engine.generate_batch`` plans batches (``plan``) and hands each to ``decode``: every
part's prompt is prefilled at batch size 1 and copied into its rows of a ``RowCache``;
each step then chooses one token per row (``choose``, rows grouped by processor, one
uniform per sample), records it into the request's ``Job``, drops finished rows, and
runs the model on the rest (``forward_step``, in chunks that halve on out-of-memory).
On CPU the thread count follows the load of the cores (``workers.runtime.threads``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from workers.runtime import lean, threads
from workers.runtime.forward import forward_rows, prefill, sliding_window
from workers.runtime.kv_cache import RowCache, layer_tensors
from workers.runtime.sampler import choose_tokens, step_uniforms, token_logprobs
from workers.runtime.truncation import Truncation

if TYPE_CHECKING:
    import torch

    from workers.runtime.models import LoadedModel

logger = logging.getLogger(__name__)

FinishReason = Literal["eos", "length", "stop"]

#: ``processor(raw_logits_float32 [B, V], positions [B] int64) -> scores [B, V]``;
#: filtered tokens get ``-inf``. ``positions`` counts the tokens generated so far.
Processor = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

#: Generated tokens the KV cache has room for at first; it doubles when full.
INITIAL_TOKENS = 128
#: Tokens decoded from the end of a sequence, beyond the longest stop string's length,
#: when looking for a stop string that the newest token may have completed.
STOP_WINDOW_SLACK = 8


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


@dataclass(frozen=True)
class Request:
    """One prompt (already rendered) to continue ``n`` times with one processor and seed.

    ``greedy`` takes the argmax of the raw logits (the processor is ignored). ``first``
    skips samples ``0..first-1`` (stored already): only ``first..n-1`` are decoded, the
    same as in a request from 0, since a sample depends on its seed and index only.
    """

    prompt_text: str
    n: int
    processor: Processor | None
    greedy: bool
    seed: int
    max_new_tokens: int
    stop_strings: tuple[str, ...] = ()
    first: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if not 0 <= self.first < (1 if self.greedy else self.n):
            raise ValueError(f"first must be in [0, {self.n}) and 0 when greedy, "
                             f"got {self.first}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")


@dataclass
class Job:
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

    def reset(self, start: int, stop: int) -> None:
        """Forget samples ``[start, stop)`` (their batch is decoded again)."""
        for sample in range(start, stop):
            self.tokens[sample] = []
            self.logprobs[sample] = []
            self.finish[sample] = None

    def add(self, sample: int, token: int, logprob: float, eos: set[int], tokenizer: Any) -> bool:
        """Record one token of ``sample``; True when the sample is finished."""
        tokens = self.tokens[sample]
        tokens.append(token)
        self.logprobs[sample].append(logprob)
        if token in eos:
            self.finish[sample] = "eos"
        elif self.stops and self._ends_in_stop(tokens, tokenizer):
            self.finish[sample] = "stop"
        elif len(tokens) >= self.request.max_new_tokens:
            self.finish[sample] = "length"
        else:
            return False
        return True

    def _ends_in_stop(self, tokens: list[int], tokenizer: Any) -> bool:
        """Whether the newest token completed a stop string (decoding only the tail)."""
        window = max(len(s) for s in self.stops) + STOP_WINDOW_SLACK
        text = tokenizer.decode(tokens[-window:], skip_special_tokens=True)
        return find_stop(text, self.stops) >= 0


@dataclass(frozen=True)
class Part:
    """Samples ``[start, stop)`` of job ``job``, decoded in one batch."""

    job: int
    start: int
    stop: int


@dataclass
class Budget:
    """Rows one forward call may take; halved for the rest of the call after an OOM."""

    rows: int


class CacheTooLarge(Exception):
    """The KV cache of a batch could not be allocated (at first, or when growing)."""


def find_stop(text: str, stop_strings: Sequence[str]) -> int:
    """Index of the earliest stop string in ``text``, or -1."""
    hits = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return min(hits) if hits else -1


def forward_step(
    loaded: LoadedModel,
    cache: RowCache,
    ids: torch.Tensor,
    positions: torch.Tensor,
    budget: Budget,
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
            if not is_out_of_memory(exc):
                raise
            if release_memory(loaded):
                logger.warning(
                    "out of memory decoding %d rows; dropped the prompts kept for reuse, "
                    "trying again",
                    stop - start,
                )
                continue
            if stop - start == 1:
                raise
            budget.rows = max(1, (stop - start) // 2)
            logger.warning(
                "out of memory decoding %d rows; continuing %d rows at a time",
                stop - start,
                budget.rows,
            )
            continue
        chunks.append(logits[:, -1, :])
        start = stop
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def release_memory(loaded: LoadedModel) -> bool:
    """After an allocation failure: the prompts every lean step keeps for reuse go (the
    batch's memory matters more), and CUDA's cached blocks. Whether kept prompts were
    dropped (then the same work may fit without halving)."""
    import torch

    freed = lean.forget_prompts()
    if loaded.device.type == "cuda":
        torch.cuda.empty_cache()
    return freed > 0


def plan(parts: list[Part], max_rows: int) -> list[list[Part]]:
    """Consecutive batches of at most ``max_rows`` rows; a large part is split."""
    batches: list[list[Part]] = []
    current: list[Part] = []
    used = 0
    for part in parts:
        start = part.start
        while start < part.stop:
            take = min(part.stop - start, max_rows - used)
            current.append(Part(part.job, start, start + take))
            used += take
            start += take
            if used == max_rows:
                batches.append(current)
                current, used = [], 0
    if current:
        batches.append(current)
    return batches


def decode(loaded: LoadedModel, jobs: list[Job], parts: list[Part], budget: Budget) -> None:
    """Decode every sample of ``parts`` together, recording tokens into their jobs."""
    import torch

    device = loaded.device
    on_cpu = device.type == "cpu"
    if on_cpu:
        threads.adapt(restart=True)
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
                    reserved=width + INITIAL_TOKENS,
                )
            except RuntimeError as exc:
                if is_out_of_memory(exc) and total_rows > 1:
                    raise CacheTooLarge from exc
                raise
        first = len(row_part)
        count = part.stop - part.start
        cache.write_prompt(slice(first, first + count), prompt_cache, width - len(job.prompt_ids))
        del prompt_cache
        first_logits.append(logits.expand(count, -1))
        row_part.extend([index] * count)
        row_sample.extend(range(part.start, part.stop))
    assert cache is not None
    cache.column = width
    logits = torch.cat(first_logits) if len(first_logits) > 1 else first_logits[0].contiguous()
    step = 0
    while True:
        chosen = choose(logits, step, jobs, parts, row_part, row_sample)
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
        try:
            cache.reserve(cache.column + 1)
        except RuntimeError as exc:
            if is_out_of_memory(exc) and len(row_part) > 1:
                # The caller decodes these samples again in smaller batches; a sample's
                # tokens do not depend on its batch (up to float rounding), so nothing
                # changes but the cost.
                raise CacheTooLarge from exc
            raise
        if on_cpu:
            threads.adapt()
        logits = forward_step(loaded, cache, ids, positions, budget, window)
        cache.column += 1
        step += 1


def choose(
    logits: torch.Tensor,
    step: int,
    jobs: list[Job],
    parts: list[Part],
    row_part: list[int],
    row_sample: list[int],
) -> torch.Tensor:
    """One token per row; rows are grouped by their request's processor."""
    import torch

    device = logits.device
    # Sample i of a request draws entry i of the request's uniforms for this step.
    needed: dict[int, int] = {}
    for p, sample in zip(row_part, row_sample, strict=True):
        if not jobs[parts[p].job].request.greedy:
            needed[p] = max(needed.get(p, 0), sample + 1)
    uniforms = None
    if needed:
        offsets: dict[int, int] = {}
        draws: list[torch.Tensor] = []
        used = 0
        for p, count in needed.items():
            offsets[p] = used
            draws.append(step_uniforms(jobs[parts[p].job].request.seed, step, count))
            used += count
        pool = (torch.cat(draws) if len(draws) > 1 else draws[0]).to(device)
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
            logits,
            uniforms,
            step=step,
            processor=request.processor,
            spec=job.spec,
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
