"""The chunk runner: a chunk's jobs packed into shared batches, results per job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from strategies.recipe import PoolRecipe
from strategies.sampling import DecodingConfig
from strategies.types import Problem
from strategies.verify.code import CODE_COMPLETION_STOPS
from workers.runtime import schemes
from workers.runtime.chunk import ChunkRunner, GenerationError, load_models
from workers.runtime.models import LoadedModel


@dataclass(frozen=True, eq=False)
class Job:
    recipe: PoolRecipe
    problem: Problem
    problem_index: int
    n: int
    seed: int
    first: int = 0
    end: int | None = None

    @property
    def last(self) -> int:
        return self.n if self.end is None else self.end


def _recipe(temperature: float, scheme: str = "direct", **kwargs: Any) -> PoolRecipe:
    return PoolRecipe(model="tiny-random", scheme=scheme,
                      decoding=DecodingConfig(temperature=temperature, max_new_tokens=4),
                      seed=0, **kwargs)


def _jobs() -> list[Job]:
    greedy, sampled = _recipe(0.0), _recipe(0.8)
    return [
        Job(recipe, Problem(prompt=f"What is {i} + {i}?", answer=str(2 * i)), i, 3, 10 + i)
        for i in range(3) for recipe in (greedy, sampled)
    ]


def test_it_packs_jobs_into_batches_of_whole_jobs(tiny: LoadedModel) -> None:
    runner = ChunkRunner(tiny, max_batch_rows=4)
    groups = runner.groups(_jobs())
    # A greedy job takes one row, a sampled one N = 3: [1 + 3], [1 + 3], [1 + 3].
    assert [[job.recipe.is_greedy for job, _ in group] for group in groups] == [
        [True, False]] * 3
    assert all(sum(sample.rows() for _, sample in group) == 4 for group in groups)


def test_its_samples_do_not_depend_on_the_batch_size(tiny: LoadedModel) -> None:
    jobs = _jobs()
    wide = list(ChunkRunner(tiny, max_batch_rows=64).run(jobs))
    narrow = list(ChunkRunner(tiny, max_batch_rows=2).run(jobs))
    assert [job for job, _ in wide] == [job for job, _ in narrow] == jobs
    assert [len(cs) for _, cs in wide] == [1, 3] * 3
    assert [[c.text for c in cs] for _, cs in wide] == [[c.text for c in cs] for _, cs in narrow]
    assert all(c.seconds >= 0 and c.generated_tokens > 0 for _, cs in wide for c in cs)


def test_windows_of_a_jobs_indices_give_the_samples_of_the_whole_job(
    tiny: LoadedModel,
) -> None:
    problem = Problem(prompt="What is 3 + 4?", answer="7")
    whole = Job(_recipe(0.8), problem, 0, 7, 5)
    windows = [Job(_recipe(0.8), problem, 0, 7, 5, first, last)
               for first, last in ((0, 3), (3, 6), (6, 7))]
    runner = ChunkRunner(tiny, max_batch_rows=3)
    assert [len(g) for g in runner.groups(windows)] == [1, 1, 1]
    [(_, expected)] = list(ChunkRunner(tiny, max_batch_rows=64).run([whole]))
    got = [c for _, cs in runner.run(windows) for c in cs]
    assert [c.text for c in got] == [c.text for c in expected] and len(got) == 7


def test_it_stops_between_batches_when_told(tiny: LoadedModel) -> None:
    calls = iter([True, False])
    done = list(ChunkRunner(tiny, max_batch_rows=4).run(_jobs(), keep_going=lambda: next(calls)))
    assert len(done) == 2  # the first batch only


def test_a_failing_batch_names_its_problems(tiny: LoadedModel, monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of luck")

    monkeypatch.setattr(schemes, "sample_many", broken)
    with pytest.raises(GenerationError, match=r"^Generation failed on problems 0, 1: out of"):
        list(ChunkRunner(tiny, max_batch_rows=8).run(_jobs()[:4]))


def test_a_completion_model_stops_code_where_the_scheme_says(tiny: LoadedModel) -> None:
    runner = ChunkRunner(tiny)
    code = Problem(prompt="def f():\n", answer=None, metadata={"entry_point": "f"})
    job = Job(_recipe(0.8), code, 0, 2, 0)
    expected = () if tiny.spec.uses_chat_template else CODE_COMPLETION_STOPS
    assert runner.stop_strings(job) == expected
    assert runner.stop_strings(Job(_recipe(0.8), _jobs()[0].problem, 0, 2, 0)) == ()


def test_a_model_that_cannot_load_is_a_readable_error(tmp_path: Any) -> None:
    with pytest.raises(GenerationError, match=r"^Model 'no-such-model' failed to load"):
        load_models("no-such-model", cache_dir=str(tmp_path), extra={}, draft_name=None)
