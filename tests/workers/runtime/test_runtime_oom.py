"""Out of memory: the batch halves and decoding goes on, with no sample lost or repeated."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch

from strategies.sampling import DecodingConfig, build_processor
from strategies.types import Candidate
from workers.runtime import batch
from workers.runtime.engine import generate, generate_many
from workers.runtime.kv_cache import RowCache
from workers.runtime.models import LoadedModel

CPU_OOM = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 1073741824 bytes. Error code 12 (Cannot allocate memory)"
)


class OutOfMemoryAbove:
    """The real model behind a stand-in for the allocator: a forward call with more than
    ``max_rows`` rows fails as an allocation would, before any work is done."""

    def __init__(self, model: Any, max_rows: int, error: type[Exception] = RuntimeError) -> None:
        self._model = model
        self.max_rows = max_rows
        self.error = error
        self.failures = 0
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ids = kwargs["input_ids"]
        if ids.shape[0] > self.max_rows:
            self.failures += 1
            raise self.error(CPU_OOM if self.error is RuntimeError else "CUDA out of memory.")
        self.shapes.append(tuple(ids.shape))
        return self._model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _constrained(tiny: LoadedModel, max_rows: int, **kwargs: Any) -> LoadedModel:
    return dataclasses.replace(tiny, model=OutOfMemoryAbove(tiny.model, max_rows, **kwargs))


def _ends_some_rows_early(tiny: LoadedModel) -> Any:
    """Forbid end-of-sequence except for the first batch row at positions 2 and 5."""
    eos = tiny.eos_token_ids[0]
    base = build_processor(DecodingConfig(temperature=0.9, top_k=10, top_p=0.95))

    def process(scores: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        scores = base(scores, positions)
        scores[:, list(tiny.eos_token_ids)] = -math.inf
        if int(positions[0]) in (2, 5):
            scores[0] = -math.inf
            scores[0, eos] = 0.0
        return scores

    return process


def _same(left: list[Candidate], right: list[Candidate]) -> None:
    assert [s.token_ids for s in left] == [s.token_ids for s in right]
    assert [s.finish_reason for s in left] == [s.finish_reason for s in right]
    assert [s.generated_tokens for s in left] == [s.generated_tokens for s in right]
    for a, b in zip(left, right, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)


OPTIONS: dict[str, Any] = {"n": 8, "greedy": False, "max_new_tokens": 9, "seed": 21}


@pytest.fixture(autouse=True)
def no_kept_prompts(tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests count attempts at each size: prompts kept for reuse would add one at the
    same size first (``test_kept_prompts_go_first_...`` turns them back on)."""
    from workers.runtime import lean

    lean.forget_prompts()
    monkeypatch.setattr(lean.for_model(tiny).prefixes, "limit", 0)  # type: ignore[union-attr]


def _keeping_prompts(tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> Any:
    from workers.runtime import lean

    store = lean.for_model(tiny).prefixes  # type: ignore[union-attr]
    monkeypatch.setattr(store, "limit", 1 << 26)
    return store


def _five_samples_in_caches_of_two_rows(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Five samples of one prompt where no cache of more than 2 rows can be allocated:
    they equal an unconstrained run's; the rows of each cache asked for."""
    attempts: list[int] = []

    class SmallMemoryCache(RowCache):
        def __init__(self, model: Any, rows: int, *args: Any, **kwargs: Any) -> None:
            attempts.append(rows)
            if rows > 2:
                raise RuntimeError(CPU_OOM)
            super().__init__(model, rows, *args, **kwargs)

    processor = build_processor(DecodingConfig(temperature=0.9, top_k=10))
    prompt = tiny.render_prompt("Hi")
    expected = generate(tiny, prompt, processor=processor, **{**OPTIONS, "n": 5})
    monkeypatch.setattr(batch, "RowCache", SmallMemoryCache)

    samples = generate(tiny, prompt, processor=processor, **{**OPTIONS, "n": 5})

    _same(samples, expected)
    return attempts


def test_kept_prompts_go_first_and_the_step_runs_again_at_its_size(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails while prompts are kept for reuse drops them and runs again
    with all its rows; only a second failure would halve the batch."""
    from workers.runtime import lean

    store = _keeping_prompts(tiny, monkeypatch)
    processor = _ends_some_rows_early(tiny)
    prompt = tiny.render_prompt("Name three colours.")
    expected = generate(tiny, prompt, processor=processor, **OPTIONS)
    assert len(store) == 1  # the prompt, kept by that run
    original = lean.LlamaStep.__call__
    failed: list[int] = []
    rows_seen: list[int] = []

    def fails_once(step: lean.LlamaStep, cache: RowCache, ids: torch.Tensor, *args: Any) -> Any:
        if not failed:  # as if the kept prompts held the memory this step needed
            failed.append(ids.shape[0])
            raise RuntimeError(CPU_OOM)
        rows_seen.append(ids.shape[0])
        return original(step, cache, ids, *args)

    monkeypatch.setattr(lean.LlamaStep, "__call__", fails_once)
    samples = generate(tiny, prompt, processor=processor, **OPTIONS)

    _same(samples, expected)
    assert failed == [8] and rows_seen[0] == 8  # not halved
    assert len(store) == 0 and store.bytes == 0


def test_kept_prompts_go_first_when_a_cache_cannot_be_allocated(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is tried again once at its size; if its cache still does not fit (its
    prefill kept its prompt again), the batch halves."""
    store = _keeping_prompts(tiny, monkeypatch)
    attempts = _five_samples_in_caches_of_two_rows(tiny, monkeypatch)
    # 5 rows twice (the second after dropping the kept prompt), then 2 + 2 + 1; each
    # new batch may try once more after dropping what its prefill kept, and the 2-row
    # batches fit.
    assert attempts == [5, 5, 2, 2, 1]
    assert len(store) == 1  # the prompt, kept by the prefills that fitted


def test_it_halves_the_batch_on_out_of_memory_and_matches_an_unconstrained_run(
    tiny: LoadedModel,
) -> None:
    processor = _ends_some_rows_early(tiny)
    prompt = tiny.render_prompt("Name three colours.")
    expected = generate(tiny, prompt, processor=processor, **OPTIONS)
    small = _constrained(tiny, max_rows=3)

    samples = generate(small, prompt, processor=processor, **OPTIONS)

    _same(samples, expected)
    wrapper = small.model
    assert wrapper.failures == 2  # 8 rows, then 4, fail once; 2 at a time from then on
    decode_rows = [rows for rows, width in wrapper.shapes if width == 1]
    assert max(decode_rows) == 2
    assert sum(decode_rows) == sum(s.generated_tokens for s in samples) - len(samples)
    assert [s.finish_reason for s in samples].count("eos") == 2


def test_it_loses_no_sample_across_prompts_after_out_of_memory(tiny: LoadedModel) -> None:
    processor = build_processor(DecodingConfig(temperature=1.0, top_k=50))
    prompts = [tiny.render_prompt(text) for text in ("Hi", "What is 12 + 30?", "Count to five")]
    options = {**OPTIONS, "n": 5}
    expected = generate_many(tiny, prompts, processor=processor, **options)

    many = generate_many(
        _constrained(tiny, max_rows=4, error=torch.OutOfMemoryError),
        prompts,
        processor=processor,
        **options,
    )

    assert [len(samples) for samples in many] == [5, 5, 5]
    for got, want in zip(many, expected, strict=True):
        _same(got, want)


def test_it_splits_the_batch_when_its_cache_cannot_be_allocated(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _five_samples_in_caches_of_two_rows(tiny, monkeypatch)
    assert attempts == [5, 2, 2, 1]


def test_it_decodes_a_batch_again_when_its_cache_cannot_grow(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown: list[int] = []

    class NoRoomToGrow(RowCache):
        def reserve(self, columns: int) -> None:
            if columns > self.columns and self.rows > 2:
                grown.append(self.rows)
                raise RuntimeError(CPU_OOM)
            super().reserve(columns)

    processor = build_processor(DecodingConfig(temperature=0.9, top_k=10))
    prompts = [tiny.render_prompt(text) for text in ("Hi", "What is 12 + 30?")]
    options = {**OPTIONS, "n": 3}
    expected = generate_many(tiny, prompts, processor=processor, **options)
    monkeypatch.setattr(batch, "INITIAL_TOKENS", 3)
    monkeypatch.setattr(batch, "RowCache", NoRoomToGrow)

    many = generate_many(tiny, prompts, processor=processor, **options)

    assert grown == [6, 3]  # 6 rows, then 3, could not grow; then batches of 1
    for got, want in zip(many, expected, strict=True):
        _same(got, want)


def test_it_raises_when_a_single_row_does_not_fit(tiny: LoadedModel) -> None:
    with pytest.raises(RuntimeError, match="can't allocate memory"):
        generate(
            _constrained(tiny, max_rows=0), tiny.render_prompt("Hi"), processor=None, **OPTIONS
        )


def test_it_does_not_retry_other_errors(tiny: LoadedModel) -> None:
    class Broken(OutOfMemoryAbove):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs["input_ids"].shape[1] == 1:
                raise RuntimeError("shape mismatch")
            return super().__call__(*args, **kwargs)

    broken = dataclasses.replace(tiny, model=Broken(tiny.model, max_rows=100))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        generate(broken, tiny.render_prompt("Hi"), processor=None, **OPTIONS)
    assert not batch.is_out_of_memory(RuntimeError("shape mismatch"))
    assert batch.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory."))


def test_it_halves_lean_steps_on_out_of_memory(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean step (the path Llama models take) halves its batch like the model's own
    forward, and the samples are those of an unconstrained run."""
    from workers.runtime import lean

    processor = _ends_some_rows_early(tiny)
    prompt = tiny.render_prompt("Name three colours.")
    expected = generate(tiny, prompt, processor=processor, **OPTIONS)
    original = lean.LlamaStep.__call__
    rows_seen: list[int] = []

    def constrained(step: lean.LlamaStep, cache: RowCache, ids: torch.Tensor, *args: Any) -> Any:
        if ids.shape[0] > 3:
            raise RuntimeError(CPU_OOM)
        rows_seen.append(ids.shape[0])
        return original(step, cache, ids, *args)

    monkeypatch.setattr(lean.LlamaStep, "__call__", constrained)
    samples = generate(tiny, prompt, processor=processor, **OPTIONS)

    _same(samples, expected)
    assert max(rows_seen) == 2
    assert sum(rows_seen) == sum(s.generated_tokens for s in samples) - len(samples)


def test_it_halves_compiled_steps_that_run_out_of_memory(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled few-row step reports a failed allocation as ``torch.OutOfMemoryError``;
    the batch halves as for any allocation failure, and the samples are an unconstrained
    run's."""
    from workers.runtime import gemv, lean

    step = lean.for_model(tiny)
    if step is None or step.fused_rows < 4:
        pytest.skip("the compiled step is not built on this machine")
    processor = _ends_some_rows_early(tiny)
    prompt = tiny.render_prompt("Name three colours.")
    options = {**OPTIONS, "n": 4}
    expected = generate(tiny, prompt, processor=processor, **options)
    original = gemv.Gemv.llama_step
    rows_seen: list[int] = []

    def constrained(
        kernel: gemv.Gemv, shape: Any, weights: Any, x: torch.Tensor, *rest: Any
    ) -> Any:
        if x.shape[0] > 2:
            raise torch.OutOfMemoryError("cannot allocate memory for a step over 4 rows")
        rows_seen.append(x.shape[0])
        return original(kernel, shape, weights, x, *rest)

    monkeypatch.setattr(gemv.Gemv, "llama_step", constrained)
    samples = generate(tiny, prompt, processor=processor, **options)

    _same(samples, expected)
    assert rows_seen and max(rows_seen) == 2
