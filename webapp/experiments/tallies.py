"""Stored counts that let progress and the metrics claim skip scanning every sample.

Both are per (pool, problem), so a pool shared between experiments is counted once:

* generated samples: a (pool, problem) marked generated for the pool's N counts its
  completion marker's ``PoolProblem.n_done`` (written with the samples,
  ``pools.record_samples``); one still being generated counts its stored samples, by an
  index seek on the (pool, problem, index) key;
* verdicts: ``VerdictTally.n_verdicts`` per verifier key, so experiments that read one
  pool with different verifiers keep their own counts. Every write of verdicts happens
  inside ``counting_verdicts``, which recounts the rows of the (pool, problem)s it
  touched in the same transaction. A recount, not an increment: a redelivered task
  whose ``ignore_conflicts`` insert adds nothing leaves the count as it was. The tally
  rows are locked first (``SELECT ... FOR UPDATE`` in a fixed order; SQLite's IMMEDIATE
  transactions serialise writers anyway), so a concurrent writer's recount waits for
  this one to commit and counts its rows too.

A tally counts the verdicts at every sample index, while an experiment reads the first
``n`` of a pool that may hold more; capped at what the experiment expects of each (pool,
problem), it is exact unless a sample past ``n`` was judged while an earlier one was
not, and it is never below the truth. Progress shows it; the metrics claim takes it as
the necessary condition and checks the rows once it holds
(``services.claim_metrics_if_verified``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count

from webapp.experiments.models import (
    Experiment,
    PoolProblem,
    Sample,
    Verdict,
    VerdictTally,
)
from webapp.experiments.pools import pool_demands

Pair = tuple[int, int]  # (pool id, problem id)


def pairs_of_samples(sample_ids: Iterable[int]) -> set[Pair]:
    """The (pool, problem)s of these samples."""
    return set(Sample.objects.filter(pk__in=list(sample_ids))
               .values_list("pool_id", "problem_id").distinct())


@contextmanager
def counting_verdicts(verifier: str, pairs: Iterable[Pair]) -> Iterator[None]:
    """A transaction for writing ``verifier`` verdicts on samples of these (pool,
    problem)s; on leaving it, their tallies hold the verdicts stored."""
    wanted = sorted(set(pairs))
    if not wanted:
        yield
        return
    pool_ids = sorted({pool_id for pool_id, _ in wanted})
    problem_ids = sorted({problem_id for _, problem_id in wanted})
    with transaction.atomic():
        VerdictTally.objects.bulk_create(
            [VerdictTally(pool_id=pool_id, problem_id=problem_id, verifier=verifier)
             for pool_id, problem_id in wanted],
            ignore_conflicts=True, batch_size=1000,
        )
        tallies = {
            (t.pool_id, t.problem_id): t
            for t in VerdictTally.objects.select_for_update().filter(
                verifier=verifier, pool_id__in=pool_ids, problem_id__in=problem_ids,
            ).order_by("pk")
        }
        yield
        counts = dict.fromkeys(tallies, 0)
        for pool_id, problem_id, c in (
            Verdict.objects.filter(verifier=verifier, sample__pool_id__in=pool_ids,
                                   sample__problem_id__in=problem_ids)
            .values("sample__pool_id", "sample__problem_id").annotate(c=Count("id"))
            .values_list("sample__pool_id", "sample__problem_id", "c")
        ):
            counts[(pool_id, problem_id)] = c
        changed = []
        for pair, tally in tallies.items():
            if tally.n_verdicts != counts[pair]:
                tally.n_verdicts = counts[pair]
                changed.append(tally)
        VerdictTally.objects.bulk_update(changed, ["n_verdicts"], batch_size=1000)


@dataclass(frozen=True)
class Counts:
    """An experiment's stored counts: samples generated and expected (as
    ``pools.generation_totals`` counts them), verdicts of its verifier on them, and
    whether every (pool, problem) is marked generated for the pool's N."""

    generated: int
    expected: int
    verified: int
    is_generated: bool

    @property
    def is_verified(self) -> bool:
        """Whether the counters say every expected sample has its verdict (see the
        module's docstring for what the metrics claim checks besides)."""
        return self.is_generated and self.verified >= self.expected


def experiment_counts(experiment: Experiment, verifier: str) -> Counts:
    """The experiment's counts from its pools' markers and tallies, one row per (pool,
    problem). A (pool, problem) marked for the pool's n expects what it holds up to n (a
    variable-size scheme may stop short) and counts as generated; any other expects n,
    and only its samples are counted (those being generated: a few ranges at most)."""
    problems = list(experiment.problems.values_list("pk", flat=True))
    demands = pool_demands(experiment)
    caps: dict[Pair, int] = {}
    for pool_id, problem_id, requested, done in PoolProblem.objects.filter(
        experiment.problem_q(), pool_id__in=demands,
    ).values_list("pool_id", "problem_id", "n_requested", "n_done"):
        if requested >= demands[pool_id]:
            caps[(pool_id, problem_id)] = min(done, demands[pool_id])
    generated = sum(caps.values())
    expected = generated
    for pool_id, n in demands.items():
        open_ids = [pk for pk in problems if (pool_id, pk) not in caps]
        expected += n * len(open_ids)
        generated += _stored(pool_id, n, open_ids)
    verified = 0
    for pool_id, problem_id, n_verdicts in VerdictTally.objects.filter(
        experiment.problem_q(), pool_id__in=demands, verifier=verifier,
    ).values_list("pool_id", "problem_id", "n_verdicts"):
        verified += min(n_verdicts, caps.get((pool_id, problem_id), demands[pool_id]))
    return Counts(generated=min(generated, expected), expected=expected,
                  verified=min(verified, expected),
                  is_generated=len(caps) == len(demands) * len(problems))


#: Problem ids per query when counting the samples of unfinished (pool, problem)s.
ID_BATCH = 2000


def _stored(pool_id: int, n: int, problem_ids: Sequence[int]) -> int:
    """Samples 0..n-1 the pool holds for these problems, by the (pool, problem, index)
    key: an index seek per problem, never a scan of the pool."""
    return sum(
        Sample.objects.filter(pool_id=pool_id, problem_id__in=problem_ids[i:i + ID_BATCH],
                              index__lt=n).count()
        for i in range(0, len(problem_ids), ID_BATCH)
    )
