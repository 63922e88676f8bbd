"""A hand-built, finished experiment for the review tests: five problems, three strategies
(greedy + first, T=0.7 + majority vote, T=0.7 + first; the last two share one pool), and
answers chosen so that every problem-list filter holds a known set of problems.

    problem  answer  greedy pool   sampled pool (4)   greedy  majority  first   filters
    0        2       2             2 2 2 2            1       1         1       solved
    1        3       0             0 0 0 0            0       0         0       unsolved
    2        4       0             0 0 4 9            0       0         0       missed
    3        5       5             7 5 5 1            1       1         0       disagree, missed
    4        6       0             6 6 6 0            0       1         1       disagree
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from strategies.types import Candidate
from tests.factories import PASSWORD, make_experiment
from webapp.experiments.models import Experiment, Sample, Strategy
from webapp.experiments.pools import record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.verification import record_verdicts
from webapp.teams.models import Team

PROMPTS = [("What is 1+1?", "2"), ("What is 1+2?", "3"), ("What is 2+2?", "4"),
           ("What is 2+3?", "5"), ("What is 3+3?", "6")]

# Per problem index: the greedy pool's answer, the sampled pool's four answers.
ANSWERS = {
    0: (["2"], ["2", "2", "2", "2"]),
    1: (["0"], ["0", "0", "0", "0"]),
    2: (["0"], ["0", "0", "4", "9"]),
    3: (["5"], ["7", "5", "5", "1"]),
    4: (["0"], ["6", "6", "6", "0"]),
}


def build(team: Team, answers: dict[int, tuple[list[str], list[str]]] | None = None, *,
          seed: int = 0, name: str = "Review run") -> Experiment:
    """The experiment with these answers stored, verified, measured and finished."""
    answers = answers or ANSWERS
    experiment = make_experiment(team, prompts=PROMPTS, n=4, seed=seed, name=name)
    problems = list(experiment.problems.order_by("index"))
    pools = {s.pool_id: s.is_greedy for s in experiment.strategies.all()}
    for pool_id, greedy in pools.items():
        for problem in problems:
            texts = answers[problem.index][0 if greedy else 1]
            record_samples(pool_id, problem.pk, {
                i: Candidate(text=f"The answer is {a}.", prompt_tokens=10,
                             generated_tokens=6, logprob_sum=-3.0, finish_reason="eos",
                             seconds=0.1)
                for i, a in enumerate(texts)
            })
        record_verdicts(experiment, pool_id, [p.pk for p in problems])
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    compute_results(experiment.pk)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FINISHED)
    experiment.refresh_from_db()
    return experiment


def strategies(experiment: Experiment) -> tuple[Strategy, Strategy, Strategy]:
    """(greedy + first, majority, T=0.7 + first), in the experiment's order."""
    greedy, majority, first = experiment.strategies.order_by("position")
    assert greedy.is_greedy and majority.selector == "majority" and first.selector == "first"
    return greedy, majority, first


def sample(experiment: Experiment, strategy: Strategy, problem_index: int,
           index: int) -> Sample:
    return Sample.objects.get(pool_id=strategy.pool_id, index=index,
                              problem__index=problem_index,
                              problem__dataset_id=experiment.dataset_id)


def login(client: Any, user: AbstractBaseUser) -> None:
    assert client.login(username=user.get_username(), password=PASSWORD)
