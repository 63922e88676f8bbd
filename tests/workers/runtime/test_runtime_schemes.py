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


def test_a_job_from_first_decodes_only_the_samples_after_it(tiny: LoadedModel) -> None:
    jobs = [SampleJob("What is 2 + 3?", TOP_K, 7, seed=1),
            SampleJob("Name a colour.", MIX, 5, seed=4)]
    whole = sample_many(tiny, jobs)
    grown = [SampleJob(j.user_text, j.decoding, j.n, j.seed, first=f)
             for j, f in zip(jobs, (4, 3), strict=True)]
    with batch_sizes(tiny.model) as shapes:
        tails = sample_many(tiny, grown)

    # Samples 4..6 and 3..4 only: 3 + 2 rows decode, and they equal the whole jobs' tails.
    assert max(_decoding_rows(shapes)) == 5
    assert [[s.text for s in t] for t in tails] == [[s.text for s in whole[0][4:]],
                                                    [s.text for s in whole[1][3:]]]
    assert [job.rows() for job in grown] == [3, 2]


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


def test_a_recipe_gives_the_samples_of_its_loose_inputs(tiny: LoadedModel) -> None:
    from strategies.recipe import PoolRecipe
    from workers.runtime.schemes import sample_job

    recipe = PoolRecipe(model="tiny-random", scheme="chain_of_thought", decoding=TOP_K, seed=0)
    problem = {"problem_prompt": "What is 4 + 4?", "n": 3, "seed": 9}
    loose = {"scheme": "chain_of_thought", "scheme_config": {}, "decoding": TOP_K}
    by_recipe = pool_candidates(tiny, recipe=recipe, **problem)
    by_inputs = pool_candidates(tiny, **loose, **problem)

    assert [c.text for c in by_recipe] == [c.text for c in by_inputs]
    assert sample_job(recipe=recipe, **problem) == sample_job(**loose, **problem)
    with pytest.raises(TypeError, match="recipe"):
        pool_candidates(tiny, recipe=recipe, scheme="direct", **problem)


def test_a_multi_call_scheme_runs_through_its_scheme_on_the_engine(tiny: LoadedModel) -> None:
    from strategies.prompting import get_scheme
    from strategies.types import Candidate, Problem

    scheme = get_scheme("deepening")
    config = {"rounds": 1, "max_new_tokens": 4}
    candidates = pool_candidates(tiny, scheme="deepening", scheme_config=config, decoding=TOP_K,
                                 problem_prompt="What is 2 + 3?", n=2, seed=3)
    direct = scheme.run(EngineGenerator(tiny, TOP_K), Problem(prompt="What is 2 + 3?", answer=None),
                        2, scheme.config(config), seed=3, max_new_tokens=TOP_K.max_new_tokens)

    assert all(isinstance(c, Candidate) for c in candidates)
    assert [c.text for c in candidates] == [c.text for c in direct]
    assert [c.generated_tokens for c in candidates] == [c.generated_tokens for c in direct]
    assert all(c.seconds > 0 and c.score is None for c in candidates)


def test_refinement_is_scored_by_self_evaluation(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.runtime import schemes

    scored: list[str] = []

    def fake_scores(loaded: Any, problem_prompt: str, texts: list[str]) -> list[float]:
        scored.extend(texts)
        return [0.25] * len(texts)

    monkeypatch.setattr(schemes, "self_eval_scores", fake_scores)
    candidates = pool_candidates(tiny, scheme="refine",
                                 scheme_config={"n": 1, "iterations": 1, "max_new_tokens": 4},
                                 decoding=TOP_K, problem_prompt="What is 2 + 3?", n=4, seed=3)

    assert len(candidates) == 2 == len(scored)  # N x (iterations + 1), below n
    assert [c.score for c in candidates] == [0.25, 0.25]
    assert [c.text for c in candidates] == scored


def test_it_asks_the_scheme_whether_a_pool_decodes_in_one_batch() -> None:
    from workers.runtime.schemes import decodes_in_one_batch

    assert decodes_in_one_batch("direct", {})
    assert decodes_in_one_batch("generated_tests", None)
    assert not decodes_in_one_batch("refine", {})
    assert not decodes_in_one_batch("direct", {"name": "beam_search", "config": {}})
    assert not decodes_in_one_batch("nope", {})  # pool_candidates reports it


def test_it_refuses_pools_that_are_not_one_job_or_need_one_prompt(tiny: LoadedModel) -> None:
    from workers.runtime.schemes import sample_job

    problem = {"problem_prompt": "What is 4 + 4?", "n": 3, "seed": 9}
    with pytest.raises(ValueError, match="not one job"):
        sample_job(scheme="refine", scheme_config={}, decoding=TOP_K, **problem)
    with pytest.raises(ValueError, match="beam_search needs a single-call prompting scheme"):
        pool_candidates(tiny, scheme="refine", scheme_config={}, decoding=TOP_K,
                        decoder={"name": "beam_search", "config": {}}, **problem)
    with pytest.raises(ValueError, match="unknown prompting scheme"):
        pool_candidates(tiny, scheme="nope", scheme_config={}, decoding=TOP_K, **problem)
