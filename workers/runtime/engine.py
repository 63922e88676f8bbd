"""Batched sampler: prompts prefilled once, their candidates decoded together.

``generate_batch`` takes ``Request``s (a prompt, ``n``, a processor or greedy, a seed) and
decodes as many of them in one batch as ``max_batch_rows`` allows. Each prompt is
prefilled once with batch size 1 (on the lean step, a start it shares with a prompt
run before is taken from that one: ``workers.runtime.prefixes``); its keys/values are
copied into the ``n`` rows of a preallocated cache (``workers.runtime.kv_cache.RowCache``),
left-padded to the batch's longest prompt, and every row then decodes in lock-step with
its own position ids. A row that finishes (end-of-sequence token, stop string, or its
``max_new_tokens``) leaves the batch: a live row from the end takes its place, so no step
decodes a finished row.
``generate`` (one prompt) and ``generate_many`` (a list of prompts) are thin wrappers.

Each sample is a ``strategies.types.Candidate`` (answer, verdict and score unset):
``token_ids`` are all generated tokens, including the end-of-sequence token or the token
that completed a stop string; ``token_logprobs`` has one raw-model log-prob per token and
``logprob_sum`` is their sum. ``text`` is the decoded generation (special tokens
skipped), cut just before the first stop string when one was hit. ``seconds`` is the
sample's share of the wall time of the batch that decoded it (proportional to its
generated tokens; the shares of one call sum to its wall time).

Log-probabilities are those of the unmodified model: the raw logit of the chosen token
minus the row's ``logsumexp``, whatever the processor did. Sampling is exact for
``softmax(processor(raw_logits, positions))`` and drawn by inverse CDF
(``workers.runtime.sampler``): at each step sample ``i`` of a request uses uniform ``i``
of a ``torch.Generator`` seeded from ``(seed, step)``, so a sample depends on its
request's seed and its index only: not on ``n`` (a pool grown from 8 to 16 samples keeps
its first 8), on which rows share the batch, or on out-of-memory splits; the global RNG
is never touched. Rows of one batch may use different processors.

Greedy requests decode one row (the ``n`` candidates are identical). With
``speculative_tokens``, a greedy request decoding alone is decoded by prompt lookup
(``workers.runtime.speculative``): drafted tokens are verified by the model in one forward
pass and only the model's own argmax tokens are kept.

When a forward step runs out of memory (CUDA OOM, or a CPU allocation failure), the
prompts kept for reuse (``workers.runtime.prefixes``) are dropped and, if there were
any, the step runs again at its size; otherwise it is rerun on halves of the batch (and
again, down to one row), and the smaller size is kept for the rest of the call. Since
cache writes go to fixed columns, a rerun step is exact. A cache too large to allocate
(or to grow) likewise drops the kept prompts and tries the batch once more, then sends
the batch's samples back to be decoded again in batches half as large; a sample's
tokens do not depend on its batch (up to the float rounding of the logits, which a
step's row count may change).
No sample is lost or repeated.

This module imports neither Django nor Celery.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from strategies.types import Candidate
from workers.runtime import speculative
from workers.runtime.batch import (
    Budget,
    CacheTooLarge,
    Job,
    Part,
    Processor,
    Request,
    decode,
    find_stop,
    plan,
    release_memory,
)
from workers.runtime.truncation import describe_processor

if TYPE_CHECKING:
    from workers.runtime.models import LoadedModel

# ``Processor`` and ``Request`` live in ``batch`` (which must not import this module);
# they are re-exported because callers build requests for ``generate_batch`` from here.
__all__ = [
    "DEFAULT_MAX_BATCH_ROWS",
    "Processor",
    "Request",
    "generate",
    "generate_batch",
    "generate_many",
    "stable_seed",
]

logger = logging.getLogger(__name__)

#: Rows decoded together at most (before any out-of-memory halving).
DEFAULT_MAX_BATCH_ROWS = 128


def stable_seed(seed: int, index: int) -> int:
    """A seed derived from ``(seed, index)`` that is the same in every process."""
    digest = hashlib.sha256(f"{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**63 - 1)


def _decode_speculative(
    loaded: LoadedModel, job: Job, draft_tokens: int, draft: LoadedModel | None
) -> None:
    """Greedy decoding of ``job`` with prompt-lookup or draft-model drafts (``speculative``)."""
    tokens, logprobs, finish, _ = speculative.greedy_speculative(
        loaded,
        job.prompt_ids,
        max_new_tokens=job.request.max_new_tokens,
        draft_tokens=draft_tokens,
        stop_strings=job.stops,
        draft=draft,
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
    draft: LoadedModel | None = None,
) -> list[list[Candidate]]:
    """Samples of every request (a list per request, in order: its samples ``first`` to
    ``n - 1``), decoded in shared batches.

    Requests are packed in order into batches of at most ``max_batch_rows`` rows (a
    request with more samples is split over batches). With ``speculative_tokens`` > 0, a
    greedy request that would decode alone (a batch of one row) is decoded speculatively
    with up to that many draft tokens per step, drafted by prompt lookup or by ``draft``
    (a model with the same tokenizer); its output is the same.
    """
    import torch

    if max_batch_rows < 1:
        raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows}")
    if speculative_tokens < 0:
        raise ValueError(f"speculative_tokens must be >= 0, got {speculative_tokens}")
    if draft is not None:
        speculative.check_draft(loaded, draft)
    started = time.perf_counter()
    jobs: list[Job] = []
    for request in requests:
        prompt_ids = loaded.encode_prompt(request.prompt_text)
        if not prompt_ids:
            raise ValueError("the prompt encodes to no tokens")
        jobs.append(
            Job(
                request=request,
                prompt_ids=prompt_ids,
                spec=None if request.greedy else describe_processor(request.processor),
                stops=tuple(s for s in request.stop_strings if s),
                rows=1 if request.greedy else request.n,
            )
        )
    budget = Budget(rows=max_batch_rows)
    with torch.inference_mode():
        batches = plan([Part(i, job.request.first, job.rows) for i, job in enumerate(jobs)],
                       max_batch_rows)
        done = 0
        retried = False
        while done < len(batches):
            batch = batches[done]
            began = time.perf_counter()
            try:
                if speculative_tokens and _is_lone_greedy_row(jobs, batch):
                    _decode_speculative(loaded, jobs[batch[0].job], speculative_tokens, draft)
                else:
                    decode(loaded, jobs, batch, budget)
            except CacheTooLarge:
                for part in batch:
                    jobs[part.job].reset(part.start, part.stop)
                rows = sum(p.stop - p.start for p in batch)
                # Dropping the prompts kept for reuse may make room; the batch is tried
                # again once at its size (its prefills keep their prompts again).
                if release_memory(loaded) and not retried:
                    retried = True
                    logger.warning(
                        "no memory for a %d-row cache; dropped the prompts kept for "
                        "reuse, trying again",
                        rows,
                    )
                    continue
                retried = False
                budget.rows = min(budget.rows, max(1, rows // 2))
                logger.warning("no memory for a %d-row cache; batches of %d", rows, budget.rows)
                remaining = [p for b in batches[done:] for p in b]
                batches = batches[:done] + plan(remaining, budget.rows)
                continue
            _share_seconds(jobs, batch, time.perf_counter() - began)
            done += 1
            retried = False
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


def _is_lone_greedy_row(jobs: list[Job], batch: list[Part]) -> bool:
    """Whether a batch is one greedy row: the case speculative decoding speeds up.

    Several rows decode together for about the price of one on a memory-bound device,
    which beats drafting; a lone row has nothing to share its weight reads with.
    """
    if len(batch) != 1:
        return False
    [part] = batch
    return part.stop - part.start == 1 and jobs[part.job].request.greedy


def _share_seconds(jobs: list[Job], batch: list[Part], seconds: float) -> None:
    """Split a batch's wall time over its samples in proportion to their tokens."""
    samples = [(jobs[p.job], s) for p in batch for s in range(p.start, p.stop)]
    total = sum(len(job.tokens[s]) for job, s in samples)
    for job, s in samples:
        share = len(job.tokens[s]) / total if total else 1 / len(samples)
        job.seconds[s] += seconds * share


def _samples(loaded: LoadedModel, job: Job) -> list[Candidate]:
    """The finished samples of a job from its request's ``first`` on (a greedy job's one
    row repeated ``n`` times)."""
    out: list[Candidate] = []
    for i in range(job.request.first, job.rows):
        text = loaded.tokenizer.decode(job.tokens[i], skip_special_tokens=True)
        if job.finish[i] == "stop":
            cut = find_stop(text, job.stops)
            if cut >= 0:
                text = text[:cut]
        out.append(
            Candidate(
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
    draft: LoadedModel | None = None,
) -> list[Candidate]:
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
        loaded,
        [request],
        max_batch_rows=max_batch_rows,
        speculative_tokens=speculative_tokens,
        draft=draft,
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
    draft: LoadedModel | None = None,
) -> list[list[Candidate]]:
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
        loaded,
        requests,
        max_batch_rows=max_batch_rows,
        speculative_tokens=speculative_tokens,
        draft=draft,
    )
