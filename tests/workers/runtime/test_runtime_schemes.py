"""Sample jobs of several prompts, samplers and seeds decoded in shared batches."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.sampling import DecodingConfig
from tests.workers.runtime.helpers import batch_sizes
from workers.runtime.engine import stable_seed
from workers.runtime.models import LoadedModel
from workers.runtime.schemes import EngineGenerator, SampleJob, pool_candidates, sample_many

# Layout comparisons truncate with top-k: the random model's near-uniform distributions
# would otherwise turn last-bit differences between batch layouts into other tokens.
TOP_K = DecodingConfig(temperature=1.0, top_k=10, max_new_tokens=6)
MIN_P = DecodingConfig(temperature=0.8, min_p=0.05, top_k=10, max_new_tokens=5)
MIX = DecodingConfig(temperature=1.0, temperature_mix=(0.5, 1.3), top_k=10, max_new_tokens=4)
GREEDY = DecodingConfig(temperature=0.0, max_new_tokens=6)


def _jobs() -> list[SampleJob]:
    return [
        SampleJob("What is 2 + 3?", TOP_K, 3, seed=1),
        SampleJob("What is 2 + 3?", MIN_P, 2, seed=2),
        SampleJob("Name a colour.", GREEDY, 4, seed=3),
        SampleJob("Name a colour.", MIX, 5, seed=4),
    ]


def _decoding_rows(shapes: list[tuple[int, int]]) -> list[int]:
    return [rows for rows, width in shapes if width == 1]


def test_jobs_decode_together_and_get_the_samples_they_get_alone(tiny: LoadedModel) -> None:
    jobs = _jobs()
    with batch_sizes(tiny.model) as shapes:
        together = sample_many(tiny, jobs)
    alone = [sample_many(tiny, [job])[0] for job in jobs]

    # 3 + 2 + 1 (greedy: one row) + 5 rows in one batch; a prefill per request.
    assert max(_decoding_rows(shapes)) == 11
    assert [len(samples) for samples in together] == [3, 2, 1, 5]
    for got, want in zip(together, alone, strict=True):
        assert [s.text for s in got] == [s.text for s in want]
        assert [s.generated_tokens for s in got] == [s.generated_tokens for s in want]
        assert [s.finish_reason for s in got] == [s.finish_reason for s in want]


def test_a_small_batch_splits_the_jobs_and_keeps_the_samples(tiny: LoadedModel) -> None:
    jobs = _jobs()
    with batch_sizes(tiny.model) as shapes:
        split = sample_many(tiny, jobs, max_batch_rows=2)
    whole = sample_many(tiny, jobs)

    assert max(_decoding_rows(shapes)) == 2
    assert [[s.text for s in p] for p in split] == [[s.text for s in p] for p in whole]


def test_a_temperature_mix_fills_indices_by_temperature(tiny: LoadedModel) -> None:
    [mixed] = sample_many(tiny, [SampleJob("Name a colour.", MIX, 5, seed=4)])
    low = DecodingConfig(temperature=0.5, top_k=10, max_new_tokens=4)
    high = DecodingConfig(temperature=1.3, top_k=10, max_new_tokens=4)
    [cold] = sample_many(tiny, [SampleJob("Name a colour.", low, 3, seed=stable_seed(4, 0))])
    [hot] = sample_many(tiny, [SampleJob("Name a colour.", high, 2, seed=stable_seed(4, 1))])

    assert [s.text for s in mixed[0::2]] == [s.text for s in cold]
    assert [s.text for s in mixed[1::2]] == [s.text for s in hot]


def test_pool_candidates_of_a_single_call_scheme_match_its_sample_job(tiny: LoadedModel) -> None:
    from workers.runtime.schemes import sample_job

    options = {"scheme": "direct", "scheme_config": {}, "decoding": TOP_K,
               "problem_prompt": "What is 4 + 4?", "n": 3, "seed": 9}
    candidates = pool_candidates(tiny, **options)
    [samples] = sample_many(tiny, [sample_job(**options)])

    assert [c.text for c in candidates] == [s.text for s in samples]


def test_the_generator_decodes_all_its_prompts_in_one_batch(tiny: LoadedModel) -> None:
    generator = EngineGenerator(tiny, TOP_K)
    prompts = ["What is 1 + 1?", "What is 2 + 2?", "What is 3 + 3?"]
    with batch_sizes(tiny.model) as shapes:
        out = generator(prompts, n=2, temperature=1.0, max_new_tokens=6, seed=5)

    assert max(_decoding_rows(shapes)) == 6
    for i, prompt in enumerate(prompts):
        [alone] = sample_many(tiny, [SampleJob(prompt, TOP_K, 2, seed=stable_seed(5, i))])
        assert [c.text for c in out[i]] == [s.text for s in alone]


def test_the_generator_repeats_a_greedy_answer_n_times(tiny: LoadedModel) -> None:
    generator = EngineGenerator(tiny, GREEDY, speculative_tokens=4)
    [answers] = generator(["Name a colour."], n=3, temperature=0.0, max_new_tokens=6, seed=0)
    [plain] = EngineGenerator(tiny, GREEDY)(
        ["Name a colour."], n=1, temperature=0.0, max_new_tokens=6, seed=0
    )

    assert [c.text for c in answers] == [plain[0].text] * 3


def test_jobs_with_one_decoding_share_a_sampling_call(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.runtime import batch

    rows: list[int] = []
    real = batch.choose_tokens

    def counting(logits: Any, *args: Any, **kwargs: Any) -> Any:
        rows.append(int(logits.shape[0]))
        return real(logits, *args, **kwargs)

    monkeypatch.setattr(batch, "choose_tokens", counting)
    jobs = [SampleJob(f"What is {i} + {i}?", TOP_K, 2, seed=i) for i in range(3)]
    sample_many(tiny, jobs)

    assert rows[0] == 6  # the three problems' rows in one call
