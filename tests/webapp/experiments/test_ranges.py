"""N up to 10,000: a pool whose N is above ``STRATLAB_CHUNK_SAMPLES`` is generated and
verified a range of one problem's sample indices per chunk, each range a batch at a time;
the problem is complete (marker, metrics claim) only once every index is stored."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.types import Candidate
from tests.factories import make_experiment
from webapp.experiments import generation, pools, recovery, services, verification
from webapp.experiments.models import Experiment, PoolProblem, Sample

pytestmark = pytest.mark.django_db

ONE_PROBLEM = [("What is 2+2?", "4")]


@pytest.fixture
def narrow(settings: Any) -> None:
    """Ranges of 8 indices and batches of 3 rows, so that N = 20 spans both."""
    settings.STRATLAB_CHUNK_SAMPLES = 8
    settings.STRATLAB_MAX_BATCH_ROWS = 3


def _running(team: Any, **kwargs: Any) -> Experiment:
    experiment = make_experiment(team, **kwargs)
    services.claim_experiment(experiment.pk)
    experiment.refresh_from_db()
    return experiment


def _pools(experiment: Experiment) -> tuple[int, int]:
    """The greedy pool (N = 1) and the sampled one."""
    greedy, sampled, _ = experiment.strategies.order_by("position")
    return greedy.pool_id, sampled.pool_id


def _candidates(first: int, last: int) -> list[Candidate]:
    return [Candidate(text=f"The answer is {i}", prompt_tokens=3, generated_tokens=4,
                      logprob_sum=-1.0, finish_reason="eos", seconds=0.01)
            for i in range(first, last)]


def _generate(experiment: Experiment, pool_id: int, problem_id: int, n: int,
              samples: tuple[int, int] | None) -> list[tuple[int, int]]:
    """What a generation task does for the chunk, with stored text for the model's: each
    window's candidates, stored as decoded. Returns the windows."""
    [work] = generation.chunk_work(experiment.pk, [[pool_id, n]], [problem_id], samples)
    for window in work.lacking:
        assert generation.store_candidates(window, _candidates(window.first, window.last))
    return [(w.first, w.last) for w in work.lacking]


def test_k_is_reported_at_the_powers_of_two_up_to_n() -> None:
    assert services.k_values_for(1) == [1]
    assert services.k_values_for(6) == [1, 2, 4]
    assert services.k_values_for(256)[-1] == 256
    assert services.k_values_for(10_000) == [2**i for i in range(14)]  # ... 4096, 8192


def test_a_pool_above_the_range_width_is_chunked_by_ranges_of_one_problem(
    team: Any, narrow: None
) -> None:
    experiment = make_experiment(team, n=20)
    greedy, sampled = _pools(experiment)
    problems = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    chunks = services.generation_chunks(experiment)
    # The greedy pool's one sample per problem: one slice, as for any N.
    assert [(c.pool_ids, c.problem_ids, c.samples) for c in chunks[:1]] == [
        ([greedy], tuple(problems), None)]
    # The sampled pool's 20: three ranges per problem, problem by problem.
    assert [(c.pool_ids, c.problem_ids, c.samples) for c in chunks[1:]] == [
        ([sampled], (problem,), samples)
        for problem in problems for samples in [(0, 8), (8, 16), (16, 20)]]
    last = chunks[3]
    assert last.key == f"generate:{sampled}:{problems[0]}:s16-19"
    assert last.args(7) == [7, [[sampled, 20]], [problems[0]], None, [16, 20]]
    assert last.verification().key == f"verify:{sampled}:{problems[0]}:s16-19"
    assert last.verification().args(7) == [7, [sampled], [problems[0]], [16, 20]]
    assert recovery.describe(last) == "Generation of problem 0 (samples 16-19)"

    # Up to the width, the chunks are the usual slices over both pools.
    small = make_experiment(team, n=8, name="Small")
    assert all(c.samples is None and set(c.pool_ids) == {greedy, sampled}
               for c in services.generation_chunks(small))


def test_a_range_decodes_its_missing_indices_a_batch_at_a_time(
    team: Any, narrow: None
) -> None:
    experiment = _running(team, n=20, prompts=ONE_PROBLEM)
    _, sampled = _pools(experiment)
    problem = experiment.problems.get().pk
    # A delivery of the middle range died after storing samples 8 to 10.
    pools.record_samples(sampled, problem, dict(zip(range(8, 11), _candidates(8, 11),
                                                    strict=True)))
    [work] = generation.chunk_work(experiment.pk, [[sampled, 20]], [problem], (8, 16))
    assert [(w.first, w.last, w.n) for w in work.lacking] == [(11, 14, 20), (14, 16, 20)]
    assert [(w.first, w.last) for w in work.followups] == [(8, 16)]

    assert _generate(experiment, sampled, problem, 20, (8, 16)) == [(11, 14), (14, 16)]
    assert not pools.is_pool_problem_done(sampled, problem, 20)  # only 8..15 are stored
    # The other ranges, the last one first: the write that stores the last index marks it.
    assert _generate(experiment, sampled, problem, 20, (16, 20)) == [(16, 19), (19, 20)]
    assert not PoolProblem.objects.exists()
    assert _generate(experiment, sampled, problem, 20, (0, 8)) == [(0, 3), (3, 6), (6, 8)]
    marker = PoolProblem.objects.get(pool_id=sampled, problem_id=problem)
    assert (marker.n_requested, marker.n_done) == (20, 20)
    assert pools.is_pool_problem_done(sampled, problem, 20)
    stored = dict(Sample.objects.filter(pool_id=sampled).values_list("index", "text"))
    assert stored == {i: f"The answer is {i}" for i in range(20)}

    # A range done is no work, and a redelivered window stores nothing twice.
    assert generation.chunk_work(experiment.pk, [[sampled, 20]], [problem], (0, 8))[0] \
        .followups == ()
    assert generation.store_candidates(work.lacking[0], _candidates(0, 3))
    assert Sample.objects.filter(pool_id=sampled).count() == 20


def test_a_whole_problem_is_decoded_a_batch_at_a_time_and_marked_with_its_last_batch(
    team: Any, narrow: None
) -> None:
    experiment = _running(team, n=8, prompts=ONE_PROBLEM)
    greedy, sampled = _pools(experiment)
    problem = experiment.problems.get().pk
    [work] = generation.chunk_work(experiment.pk, [[greedy, 1], [sampled, 8]], [problem])
    assert [(w.pool_id, w.first, w.last) for w in work.lacking] == [
        (greedy, 0, 1), (sampled, 0, 3), (sampled, 3, 6), (sampled, 6, 8)]
    for window in work.lacking[:3]:
        generation.store_candidates(window, _candidates(window.first, window.last))
    assert pools.is_pool_problem_done(greedy, problem, 1)
    assert not pools.is_pool_problem_done(sampled, problem, 8)  # 0..5 of 8
    generation.store_candidates(work.lacking[3], _candidates(6, 8))
    assert pools.is_pool_problem_done(sampled, problem, 8)


def test_the_reconciler_reads_which_ranges_lack_samples_or_verdicts(
    team: Any, narrow: None
) -> None:
    experiment = _running(team, n=20, prompts=ONE_PROBLEM)
    greedy, sampled = _pools(experiment)
    problem = experiment.problems.get().pk
    chunks = services.generation_chunks(experiment)
    whole, first, middle, last = chunks
    _generate(experiment, greedy, problem, 1, None)
    for samples in ((0, 8), (16, 20)):
        _generate(experiment, sampled, problem, 20, samples)

    def missing() -> list[str]:
        return [c.key for c in recovery.missing_work(experiment, chunks).chunks]

    assert missing() == [whole.verification().key, first.verification().key, middle.key,
                         last.verification().key]
    assert verification.record_verdicts(experiment, sampled, [problem], (0, 8)) == 8
    verification.record_verdicts(experiment, greedy, [problem])
    assert missing() == [middle.key, last.verification().key]
    # A delivery ending asks about its own chunk only.
    assert not recovery.chunk_needs_work(experiment.pk, first)
    assert recovery.chunk_needs_work(experiment.pk, middle)
    assert recovery.chunk_needs_work(experiment.pk, last.verification())
    assert not services.claim_metrics_if_verified(experiment.pk)

    _generate(experiment, sampled, problem, 20, (8, 16))
    for samples in ((8, 16), (16, 20)):
        verification.record_verdicts(experiment, sampled, [problem], samples)
    assert recovery.missing_work(experiment, chunks).claim_metrics
    assert services.claim_metrics_if_verified(experiment.pk)


def test_a_shared_pool_filled_by_a_larger_n_that_stopped_still_completes(
        team: Any, narrow: None) -> None:
    """A pool's samples are shared by recipe, not by N: an experiment at N = 24 stores
    indices 0..15 and fails; one at N = 12 then finds every sample stored but no marker
    for 12. Its last range decodes one sample again to write the marker, and the
    reconciler sends that range until it has."""
    big = _running(team, n=24, prompts=ONE_PROBLEM, name="Big")
    _, sampled = _pools(big)
    problem = big.problems.get().pk
    for samples in ((0, 8), (8, 16)):
        _generate(big, sampled, problem, 24, samples)
    services.fail_experiment(big.pk, "stopped")
    small = _running(team, n=12, prompts=ONE_PROBLEM, name="Small")
    assert _pools(small)[1] == sampled
    chunks = services.generation_chunks(small)
    last = next(c for c in chunks if c.samples == (8, 12))

    missing = recovery.missing_work(small, chunks)
    assert last in missing.chunks and not missing.claim_metrics
    assert _generate(small, sampled, problem, 12, (0, 8)) == []
    assert _generate(small, sampled, problem, 12, (8, 12)) == [(11, 12)]
    assert pools.is_pool_problem_done(sampled, problem, 12)
    assert Sample.objects.filter(pool_id=sampled, problem_id=problem).count() == 16

    greedy = _pools(small)[0]
    _generate(small, greedy, problem, 1, None)
    verification.record_verdicts(small, greedy, [problem])
    for samples in ((0, 8), (8, 12)):
        verification.record_verdicts(small, sampled, [problem], samples)
    assert recovery.missing_work(small, chunks) == recovery.Missing((), claim_metrics=True)
    assert services.claim_metrics_if_verified(small.pk)
