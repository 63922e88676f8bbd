"""Stored counts: verdict tallies recounted with every write (a redelivered write adds
nothing, pools shared by experiments with other verifiers or a smaller N count right),
progress read from them, and the metrics claim that trusts them only as far as it must."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.types import Candidate
from strategies.verify.result import VerifierResult
from tests.factories import make_experiment
from webapp.experiments import services, tallies, verification
from webapp.experiments.models import Experiment, Sample, Verdict, VerdictTally
from webapp.experiments.pools import pool_demands, record_samples
from webapp.experiments.specs import ExperimentSpec, StrategySpec

pytestmark = pytest.mark.django_db

PROMPTS = [("What is 1+1?", "2"), ("What is 2+2?", "4"), ("What is 3+3?", "6")]


def candidate(text: str) -> Candidate:
    return Candidate(text=text, prompt_tokens=10, generated_tokens=6, logprob_sum=-3.0,
                     finish_reason="eos", seconds=0.1)


def generate(experiment: Experiment, problems: int | None = None) -> None:
    """Store every pool's samples (all of them, or those of the first ``problems``) with
    their completion markers, as a generation task does."""
    chosen = list(experiment.problems.order_by("index"))[:problems]
    for pool_id, n in pool_demands(experiment).items():
        for problem in chosen:
            record_samples(pool_id, problem.pk, {
                i: candidate(f"The answer is {problem.answer if i % 2 == 0 else 0}.")
                for i in range(n)
            }, requested=n)


def verify(experiment: Experiment) -> None:
    problem_ids = list(experiment.problems.values_list("pk", flat=True))
    for pool_id in pool_demands(experiment):
        verification.record_verdicts(experiment, pool_id, problem_ids)


def stages(experiment: Experiment) -> dict[str, tuple[object, object]]:
    return {row["key"]: (row["done"], row["total"]) for row in services.progress(experiment)}


def tallied(verifier: str) -> dict[tuple[int, int], int]:
    return {(t.pool_id, t.problem_id): t.n_verdicts
            for t in VerdictTally.objects.filter(verifier=verifier)}


def stored(verifier: str) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pool_id, problem_id in Verdict.objects.filter(verifier=verifier).values_list(
            "sample__pool_id", "sample__problem_id"):
        counts[(pool_id, problem_id)] = counts.get((pool_id, problem_id), 0) + 1
    return counts


def test_it_counts_each_verdict_once_when_a_slice_is_verified_again(team: Any) -> None:
    experiment = make_experiment(team, prompts=PROMPTS, n=4)
    generate(experiment)
    verify(experiment)
    verify(experiment)  # a redelivered verification task: its insert adds nothing
    key = verification.verifier_for(experiment)
    assert tallied(key) == stored(key)
    assert sum(tallied(key).values()) == 3 * (1 + 4)  # greedy pool + one sampled pool
    assert stages(experiment)["verify"] == (15, 15)


def test_it_counts_progress_while_a_slice_is_still_generating(team: Any) -> None:
    experiment = make_experiment(team, prompts=PROMPTS, n=4)
    generate(experiment, problems=1)
    sampled = experiment.strategies.get(position=1).pool_id
    last = experiment.problems.order_by("index").last()
    # Half of the last problem's samples, not yet marked generated.
    record_samples(sampled, last.pk, {i: candidate("The answer is 6.") for i in range(2)})
    assert stages(experiment) == {"generate": (5 + 2, 15), "verify": (0, 15),
                                  "select": (0, 9)}
    verify(experiment)
    assert stages(experiment)["verify"] == (5 + 2, 15)


def test_it_keeps_a_count_per_verifier_on_a_shared_pool(team: Any) -> None:
    by_math = make_experiment(team, prompts=PROMPTS, n=4, name="math")
    by_exact = services.submit_experiment(team, None, ExperimentSpec(
        name="exact", model_name="tiny-random", dataset=by_math.dataset, n_samples=4,
        max_new_tokens=8, seed=0, verifier="exact",
        strategies=[StrategySpec(temperature=0.0, selector="first"),
                    StrategySpec(temperature=0.7, selector="majority"),
                    StrategySpec(temperature=0.7, selector="first")]))
    assert pool_demands(by_exact) == pool_demands(by_math)  # the same pools
    generate(by_math)
    verify(by_math)
    assert stages(by_math)["verify"] == (15, 15)
    assert stages(by_exact)["verify"] == (0, 15)
    verify(by_exact)
    assert stages(by_exact)["verify"] == (15, 15)
    assert tallied("exact") == stored("exact")


def test_it_counts_a_larger_shared_pool_up_to_the_experiments_n(team: Any) -> None:
    large = make_experiment(team, prompts=PROMPTS, n=4, name="large")
    generate(large)
    sampled = large.strategies.get(position=1).pool_id
    verification.record_verdicts(large, sampled,
                                 list(large.problems.values_list("pk", flat=True)))
    small = make_experiment(team, prompts=PROMPTS, n=2, name="small")
    # Four verdicts per problem in the sampled pool, of which the small one reads two;
    # its greedy pool is not verified yet.
    assert stages(small) == {"generate": (9, 9), "verify": (6, 9), "select": (0, 9)}


def test_it_counts_rescored_and_rejudged_samples_once(team: Any) -> None:
    experiment = make_experiment(team, prompts=PROMPTS, n=4)
    generate(experiment)
    ids = list(Sample.objects.order_by("pk").values_list("pk", flat=True))
    for _ in range(2):  # a redelivered generation task scores and judges again
        verification.record_scores([(pk, 0.5) for pk in ids])
        verification.record_judged("judge", [
            (pk, "2", VerifierResult(answer="2", passed=True, score=1.0, detail=""))
            for pk in ids])
    for key in (verification.SELF_EVAL_VERIFIER, "judge"):
        assert tallied(key) == stored(key)
        assert sum(tallied(key).values()) == len(ids)


def test_it_claims_the_metrics_only_when_the_rows_agree_with_the_counts(team: Any) -> None:
    experiment = make_experiment(team, prompts=PROMPTS, n=4)
    services.claim_experiment(experiment.pk)
    generate(experiment)
    assert not services.claim_metrics_if_verified(experiment.pk)  # nothing verified
    verify(experiment)
    # A verdict gone behind the tally's back: the counts hold, the rows do not.
    removed = Verdict.objects.filter(verifier=verification.verifier_for(experiment)).first()
    assert removed is not None
    Verdict.objects.filter(pk=removed.pk).delete()
    assert tallies.experiment_counts(experiment,
                                     verification.verifier_for(experiment)).is_verified
    assert not services.claim_metrics_if_verified(experiment.pk)
    verify(experiment)  # judged again: the claim goes through, once
    assert services.claim_metrics_if_verified(experiment.pk)
    assert not services.claim_metrics_if_verified(experiment.pk)
