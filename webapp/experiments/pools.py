"""Pool bookkeeping: what each sample pool holds and still needs for an experiment.

A pool's samples for a problem count as generated once its completion marker
(``PoolProblem``, written in the same transaction as the samples) covers the N asked
for and those samples are still stored. Everything that asks "is this (pool,
problem) done?" (generation, code verification, progress, the metrics claim) asks
here, so services and code verification both build on this module and on nothing
of each other.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from strategies.recipe import PoolRecipe
from strategies.types import Candidate
from webapp.datasets.models import Problem
from webapp.experiments.models import Experiment, PoolProblem, Sample, SamplePool


def ensure_pool(recipe: PoolRecipe) -> SamplePool:
    """The pool of exactly this recipe, created on first use (its key is ``recipe.key()``)."""
    pool, _ = SamplePool.objects.get_or_create(key=recipe.key(), defaults=recipe.stored_fields())
    return pool


def pool_demands(experiment: Experiment) -> dict[int, int]:
    """Samples per problem each pool must hold for this experiment: {pool id: n}."""
    demands: dict[int, int] = {}
    rows = experiment.strategies.values_list("pool_id", "n", "test_pool_id", "test_n")
    for pool_id, n, test_pool_id, test_n in rows:
        demands[pool_id] = max(demands.get(pool_id, 0), n)
        if test_pool_id is not None:
            demands[test_pool_id] = max(demands.get(test_pool_id, 0), test_n)
    return demands


def done_problems(pool_id: int, problem_ids: Sequence[int], n: int) -> set[int]:
    """Problems of the slice generated for a request of ``n``: a completion marker covers
    ``n`` and its samples are still stored (a variable-size scheme may hold fewer than n)."""
    return done_where(pool_id, Q(problem_id__in=problem_ids), n)


def done_where(pool_id: int, where: Q, n: int) -> set[int]:
    """``done_problems`` for the problems a filter on ``problem`` selects (such as
    ``experiment.problem_q()``: all of an experiment's, without listing their ids)."""
    markers = PoolProblem.objects.filter(
        where, pool_id=pool_id, n_requested__gte=n
    ).values_list("problem_id", "n_done")
    stored = dict(
        Sample.objects.filter(where, pool_id=pool_id, index__lt=n)
        .values("problem_id")
        .annotate(c=Count("id"))
        .values_list("problem_id", "c")
    )
    return {pid for pid, done in markers if stored.get(pid, 0) >= min(done, n)}


def is_pool_problem_done(pool_id: int, problem_id: int, n: int) -> bool:
    """Whether the pool's samples for the problem were generated for a request of ``n``."""
    return problem_id in done_problems(pool_id, [problem_id], n)


def problems_missing_samples(pool_id: int, problem_ids: Sequence[int], n: int) -> list[Problem]:
    """Problems of the slice whose samples 0..n-1 were not generated (see ``done_problems``)."""
    done = done_problems(pool_id, problem_ids, n)
    missing = [pid for pid in problem_ids if pid not in done]
    return list(Problem.objects.filter(pk__in=missing).order_by("index"))


def in_range(samples: tuple[int, int] | None) -> Q:
    """The filter on ``index`` of a chunk's sample indices ``[first, last)``; None: all."""
    if samples is None:
        return Q()
    return Q(index__gte=samples[0], index__lt=samples[1])


def problems_lacking_verdicts(
    pool_id: int, problem_ids: Sequence[int], n: int, verifier: str, *, first: int = 0
) -> set[int]:
    """Problems of the slice with a sample among first..n-1 that has no ``verifier``
    verdict."""
    return lacking_verdicts_where(pool_id, Q(problem_id__in=problem_ids, index__gte=first), n,
                                  verifier)


def lacking_verdicts_where(pool_id: int, where: Q, n: int, verifier: str) -> set[int]:
    """``problems_lacking_verdicts`` for the problems a filter on ``problem`` selects."""
    return set(
        Sample.objects.filter(where, pool_id=pool_id, index__lt=n)
        .exclude(verdicts__verifier=verifier)
        .values_list("problem_id", flat=True)
        .distinct()
    )


def range_counts(pool_id: int, where: Q, ranges: Sequence[tuple[int, int]], *,
                 lacking: str | None = None) -> dict[tuple[int, int], int]:
    """Samples per (problem, number of the range in ``ranges``, sample indices ``[first,
    last)`` each) for the problems a filter on ``problem`` selects; with ``lacking``,
    only those without that verifier's verdict. One grouped query, however many
    ranges."""
    if not ranges:
        return {}
    rows = Sample.objects.filter(
        where, functools.reduce(operator.or_, map(in_range, ranges)), pool_id=pool_id)
    if lacking is not None:
        rows = rows.exclude(verdicts__verifier=lacking)
    part = Case(*[When(in_range(r), then=Value(i)) for i, r in enumerate(ranges)],
                output_field=IntegerField())
    grouped = (rows.annotate(part=part).values("problem_id", "part")
               .annotate(c=Count("id")).values_list("problem_id", "part", "c"))
    return {(problem_id, part): count for problem_id, part, count in grouped}


def problems_needing_work(
    pool_id: int, problem_ids: Sequence[int], n: int, *, verifiers: Sequence[str] = ()
) -> list[Problem]:
    """Problems lacking samples, or a verdict of one of the model-run ``verifiers`` (the
    self-evaluation score, the model judge) on one of their samples."""
    missing = {p.pk: p for p in problems_missing_samples(pool_id, problem_ids, n)}
    lacking: set[int] = set()
    for verifier in verifiers:
        lacking |= problems_lacking_verdicts(pool_id, problem_ids, n, verifier)
    for problem in Problem.objects.filter(pk__in=lacking - set(missing)):
        missing[problem.pk] = problem
    return sorted(missing.values(), key=lambda p: p.index)


def samples_without_verdict(
    pool_id: int, problem_id: int, n: int, verifier: str, *, first: int = 0
) -> list[tuple[int, str]]:
    """(sample id, text) of the problem's samples ``first..n-1`` without a ``verifier``
    verdict."""
    return list(
        Sample.objects.filter(pool_id=pool_id, problem_id=problem_id, index__gte=first,
                              index__lt=n)
        .exclude(verdicts__verifier=verifier)
        .order_by("index")
        .values_list("pk", "text")
    )


def existing_sample_indices(pool_id: int, problem_id: int, *, first: int = 0,
                            last: int | None = None) -> set[int]:
    """Indices stored for the (pool, problem), those in ``[first, last)`` only if given."""
    rows = Sample.objects.filter(pool_id=pool_id, problem_id=problem_id, index__gte=first)
    if last is not None:
        rows = rows.filter(index__lt=last)
    return set(rows.values_list("index", flat=True))


def record_samples(
    pool_id: int, problem_id: int, candidates: Mapping[int, Candidate], *,
    requested: int | None = None, every_index: bool = False,
) -> dict[int, int]:
    """Store generated candidates by sample index; an index already stored is left untouched.

    Returns {index: sample id} of the candidates' indices. The unique (pool, problem,
    index) key is what makes a redelivered generation task harmless. A generator passes
    ``requested``, the N it was asked for: the same transaction then marks the (pool,
    problem) complete for requests up to N, with however many samples the scheme
    produced. With ``every_index`` (a pool whose N samples are exactly the indices
    0..N-1, stored a batch or a range at a time, maybe by several tasks at once) it is
    marked only once all N are stored; the pool's row is locked first, so that of two
    writes finishing the set together the later one sees the other's samples.
    """
    with transaction.atomic():
        if requested is not None and every_index:
            list(SamplePool.objects.select_for_update().filter(pk=pool_id).values_list("pk"))
        Sample.objects.bulk_create(
            [
                Sample(
                    pool_id=pool_id,
                    problem_id=problem_id,
                    index=index,
                    text=c.text,
                    prompt_tokens=c.prompt_tokens,
                    generated_tokens=c.generated_tokens,
                    logprob_sum=c.logprob_sum,
                    finish_reason=c.finish_reason,
                    seconds=c.seconds,
                )
                for index, c in candidates.items()
            ],
            ignore_conflicts=True,
        )
        stored = Sample.objects.filter(pool_id=pool_id, problem_id=problem_id)
        if requested is not None and (
            not every_index or stored.filter(index__lt=requested).count() >= requested
        ):
            marker, created = PoolProblem.objects.get_or_create(
                pool_id=pool_id, problem_id=problem_id,
                defaults={"n_requested": requested,
                          "n_done": stored.filter(index__lt=requested).count()},
            )
            if not created:
                requested = max(requested, marker.n_requested)
                PoolProblem.objects.filter(pk=marker.pk).update(
                    n_requested=requested, n_done=stored.filter(index__lt=requested).count()
                )
        return dict(stored.filter(index__in=list(candidates)).values_list("index", "pk"))


def experiment_samples(experiment: Experiment) -> QuerySet[Sample]:
    """The samples an experiment reads: 0..n-1 of each pool, on its dataset's problems."""
    condition = Q(pk__in=[])
    for pool_id, n in pool_demands(experiment).items():
        condition |= Q(pool_id=pool_id, index__lt=n)
    return Sample.objects.filter(condition, experiment.problem_q())


@dataclass(frozen=True)
class GenerationTotals:
    """Samples an experiment expects and whether every (pool, problem) is generated."""

    expected: int
    is_complete: bool


def generation_totals(experiment: Experiment) -> GenerationTotals:
    """Expected samples: a (pool, problem) done for the pool's demand n (marker and samples
    stored, as in ``done_problems``) counts what it holds up to n, any other counts n;
    complete when every one is done."""
    problems = experiment.problems.count()
    demands = pool_demands(experiment)
    stored = {
        (pool_id, problem_id): c
        for pool_id, problem_id, c in experiment_samples(experiment)
        .values("pool_id", "problem_id")
        .annotate(c=Count("id"))
        .values_list("pool_id", "problem_id", "c")
    }
    expected = 0
    marked: dict[int, int] = {}
    markers = PoolProblem.objects.filter(
        experiment.problem_q(), pool_id__in=demands
    ).values_list("pool_id", "problem_id", "n_requested", "n_done")
    for pool_id, problem_id, requested, done in markers:
        n = demands[pool_id]
        if requested >= n and stored.get((pool_id, problem_id), 0) >= min(done, n):
            expected += min(done, n)
            marked[pool_id] = marked.get(pool_id, 0) + 1
    unmarked = 0
    for pool_id, n in demands.items():
        left = problems - marked.get(pool_id, 0)
        expected += left * n
        unmarked += left
    return GenerationTotals(expected=expected, is_complete=unmarked == 0)
