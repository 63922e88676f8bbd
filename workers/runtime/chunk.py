"""A generation chunk on the engine: the jobs of several problems and pools, batched.

A job is one (pool, problem): its ``PoolRecipe``, the problem, the N asked for and the
problem's seed. Pools whose recipe is ``batchable`` (plain samples of one rendered
prompt) decode together: the jobs of several problems and pools, each with its own
sampler and seed, share the engine's batches of up to ``max_batch_rows`` rows, and a
job's samples are those it gets decoded alone. Such a job may be a window of its
problem's sample indices (``first`` to ``last``): a sample depends on its seed and
index only, so a problem of 10,000 samples is decoded a window at a time. Other pools
(multi-call schemes, beam and adaptive decoders) run one job at a time. Results come
back batch by batch so the caller can store them as soon as they exist. Nothing here
imports Django or Celery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from strategies import registry
from strategies.recipe import PoolRecipe
from strategies.sampling import DecodingConfig
from strategies.types import Candidate, Problem
from strategies.verify.result import VerifierResult
from workers.runtime import schemes
from workers.runtime.models import LoadedModel, ModelLoadError, get_model
from workers.runtime.speculative import check_draft


class Job(Protocol):
    """What the runner reads of one (pool, problem)."""

    @property
    def recipe(self) -> PoolRecipe: ...
    @property
    def problem(self) -> Problem: ...
    @property
    def problem_index(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def first(self) -> int:
        """The first sample index to decode (the ones below are stored already)."""
        ...
    @property
    def last(self) -> int:
        """The end (exclusive) of the sample indices to decode: ``n``, or less for a
        window of a batchable job's indices."""
        ...


J = TypeVar("J", bound=Job)


class GenerationError(RuntimeError):
    """A chunk's generation failed; the message names the problems and the cause."""


def problem_names(jobs: Sequence[Job]) -> str:
    indices = sorted({job.problem_index for job in jobs})
    label = "problem" if len(indices) == 1 else "problems"
    return f"{label} {', '.join(str(i) for i in indices)}"


def load_models(
    name: str, *, cache_dir: str, extra: dict[str, str], draft_name: str | None
) -> tuple[LoadedModel, LoadedModel | None]:
    """The model, and the draft model ``draft_name`` checked against it (or None);
    ``GenerationError`` with a readable reason when either cannot be used."""
    try:
        loaded = get_model(name, cache_dir=cache_dir, extra=extra)
    except ModelLoadError as exc:
        raise GenerationError(f"Model {name!r} failed to load: {exc}") from exc
    if not draft_name:
        return loaded, None
    try:
        draft = get_model(draft_name, cache_dir=cache_dir, extra=extra)
        check_draft(loaded, draft)
    except (ModelLoadError, ValueError) as exc:
        raise GenerationError(
            f"Draft model for {name!r} (STRATLAB_DRAFT_MODELS): {exc}"
        ) from exc
    return loaded, draft


@dataclass(frozen=True)
class ChunkRunner:
    """Runs a chunk's jobs on one loaded model with the worker's engine settings."""

    loaded: LoadedModel
    draft: LoadedModel | None = None
    max_batch_rows: int = schemes.DEFAULT_MAX_BATCH_ROWS
    speculative_tokens: int = 0

    def stop_strings(self, job: Job) -> tuple[str, ...]:
        """A completion model continuing code stops where the function (or its tests)
        ends; chat models end their turn themselves."""
        if "entry_point" not in job.problem.metadata or self.loaded.spec.uses_chat_template:
            return ()
        return job.recipe.scheme_object.completion_stops

    def _inputs(self, job: Job, n: int) -> dict[str, Any]:
        """What ``schemes.sample_job`` and ``schemes.pool_candidates`` share: ``n``
        candidates, one for a greedy pool (the N would be identical)."""
        return {
            "recipe": job.recipe,
            "problem_prompt": job.problem.prompt,
            "problem_metadata": job.problem.metadata,
            "n": 1 if job.recipe.is_greedy else n,
            "seed": job.seed,
            "stop_strings": self.stop_strings(job),
        }

    def groups(self, jobs: Sequence[J]) -> list[list[tuple[J, schemes.SampleJob]]]:
        """Batchable jobs packed in order into groups of at most ``max_batch_rows`` rows
        (a job larger than that is a group of its own, which the engine splits)."""
        groups: list[list[tuple[J, schemes.SampleJob]]] = []
        rows = 0
        for job in jobs:
            sample_job = schemes.sample_job(**self._inputs(job, job.last), first=job.first)
            if not groups or rows + sample_job.rows() > self.max_batch_rows:
                groups.append([])
                rows = 0
            groups[-1].append((job, sample_job))
            rows += sample_job.rows()
        return groups

    def run(
        self, jobs: Sequence[J], *, keep_going: Callable[[], bool] = lambda: True
    ) -> Iterator[tuple[J, list[Candidate]]]:
        """Each job with its candidates (indices ``job.first`` to ``job.last`` of a
        batchable job, ``job.first`` to the end of another), a batch at a time;
        stops early when ``keep_going()`` turns false between batches;
        ``GenerationError`` on failure."""
        together = [job for job in jobs if job.recipe.batchable]
        alone = [job for job in jobs if not job.recipe.batchable]
        engine = {"max_batch_rows": self.max_batch_rows,
                  "speculative_tokens": self.speculative_tokens, "draft": self.draft}
        try:
            groups = self.groups(together)
        except (ValueError, TypeError) as exc:
            raise GenerationError(
                f"Generation failed on {problem_names(together)}: {exc}"
            ) from exc
        for group in groups:
            if not keep_going():
                return
            try:
                pools = schemes.sample_many(self.loaded, [j for _, j in group], **engine)
            except (ValueError, RuntimeError) as exc:
                raise GenerationError(
                    f"Generation failed on {problem_names([job for job, _ in group])}: {exc}"
                ) from exc
            for (job, _), candidates in zip(group, pools, strict=True):
                yield job, candidates
        for job in alone:
            if not keep_going():
                return
            try:
                candidates = schemes.pool_candidates(self.loaded, **self._inputs(job, job.n),
                                                     **engine)
            except (ValueError, RuntimeError) as exc:
                raise GenerationError(
                    f"Generation failed on {problem_names([job])}: {exc}"
                ) from exc
            yield job, candidates[job.first:]

    def self_eval(self, job: Job, texts: Sequence[str]) -> list[float]:
        """The model's self-evaluation score of each of the problem's responses."""
        try:
            return schemes.self_eval_scores(self.loaded, job.problem.prompt, texts)
        except (ValueError, RuntimeError) as exc:
            raise GenerationError(
                f"Self-evaluation failed on problem {job.problem_index}: {exc}"
            ) from exc

    def judge(self, job: Job, texts: Sequence[str], config: Any, *,
              seed: int) -> list[VerifierResult]:
        """The model judge's verdict on each of the problem's responses (with the
        problem's reference answer when it has one)."""
        generator = schemes.EngineGenerator(
            self.loaded,
            DecodingConfig(temperature=0.0, max_new_tokens=config.max_new_tokens),
            max_batch_rows=self.max_batch_rows,
            speculative_tokens=self.speculative_tokens,
            draft=self.draft,
        )
        try:
            judged: list[VerifierResult] = registry.get("judge").function(
                generator, [job.problem.prompt] * len(texts), list(texts),
                [job.problem.answer] * len(texts), config, seed=seed,
            )
        except (ValueError, RuntimeError) as exc:
            raise GenerationError(f"Judging failed on problem {job.problem_index}: {exc}") from exc
        return judged
