"""A small finished experiment to review: one problem, a greedy pool of one candidate and
a sampled pool of four read by two strategies (majority vote and first sample). Model
output carries markup and htmx attributes, which must stay inert text everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from strategies.types import Candidate
from tests.factories import PASSWORD, make_experiment
from webapp.experiments.models import Experiment, Sample
from webapp.experiments.pools import record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.verification import record_verdicts

EVIL = '<img src=x onerror=alert(1)><b hx-get="/evil" hx-post="/evil">bold</b>'
#: The sampled pool's outputs: the answer 4 twice (spelled 4 and 4.0), 5 once, none once.
SAMPLED = [
    "<script>alert('pwned')</script> Adding: the answer is 4",
    "I think it is 5. The answer is 5",
    f"{EVIL}\nSo the answer is 4.0",
    'No idea <div hx-post="/experiments/" hx-trigger="load">x</div>',
]
GREEDY = ["Two and two: the answer is 4"]


def store(pool_id: int, problem_id: int, texts: list[str]) -> None:
    record_samples(pool_id, problem_id, {
        i: Candidate(text=text, prompt_tokens=9, generated_tokens=7, logprob_sum=-2.0,
                     finish_reason="eos", seconds=0.1)
        for i, text in enumerate(texts)
    }, requested=len(texts))


def finish(experiment: Experiment) -> Experiment:
    problems = list(experiment.problems.values_list("pk", flat=True))
    for pool_id in set(experiment.strategies.values_list("pool_id", flat=True)):
        record_verdicts(experiment, pool_id, problems)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    compute_results(experiment.pk)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FINISHED)
    experiment.refresh_from_db()
    return experiment


@pytest.fixture
def experiment(team: Any) -> Experiment:
    experiment = make_experiment(team, prompts=[("What is 2+2? <script>alert(2)</script>", "4")])
    problem = experiment.problems.get()
    greedy, majority, _first = experiment.strategies.order_by("position")
    store(greedy.pool_id, problem.pk, GREEDY)
    store(majority.pool_id, problem.pk, SAMPLED)
    return finish(experiment)


@pytest.fixture
def problem(experiment: Experiment) -> Any:
    return experiment.problems.get()


def sampled(experiment: Experiment, index: int) -> Sample:
    pool_id = experiment.strategies.get(position=1).pool_id
    return Sample.objects.get(pool_id=pool_id, problem__in=experiment.problems, index=index)


@pytest.fixture
def candidate(experiment: Experiment) -> Sample:
    """The sampled pool's second candidate (answer 5, judged fail)."""
    return sampled(experiment, 1)


def login(client: Any, user: Any) -> None:
    assert client.login(username=user.username, password=PASSWORD)
