"""Plain helpers that build stored objects for tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from webapp.datasets.services import PromptRow, ensure_arithmetic_dataset, ensure_prompt_dataset
from webapp.experiments.models import Experiment
from webapp.experiments.services import submit_experiment
from webapp.experiments.specs import ExperimentSpec, StrategySpec
from webapp.teams.models import Team
from webapp.teams.services import ensure_team

PASSWORD = "correct-horse-battery"


def make_user(username: str) -> Any:
    return get_user_model().objects.create_user(username, password=PASSWORD)


def make_team(name: str) -> Team:
    return ensure_team(name, owner=make_user(f"{name.lower()}-owner"))


def make_experiment(team: Team, *, prompts: list[tuple[str, str]] | None = None,
                    n: int = 4, model: str = "tiny-random", **kwargs: Any) -> Experiment:
    """An experiment stored without running it (on_commit never fires inside a test
    transaction, so nothing is enqueued)."""
    if prompts is None:
        dataset = ensure_arithmetic_dataset(team, size=3, seed=1)
    else:
        dataset = ensure_prompt_dataset(team, [PromptRow(p, a) for p, a in prompts])
    strategies = kwargs.pop("strategies", None) or [
        StrategySpec(temperature=0.0, selector="first"),
        StrategySpec(temperature=0.7, selector="majority"),
        StrategySpec(temperature=0.7, selector="first"),
    ]
    spec = ExperimentSpec(
        name=kwargs.pop("name", "Test experiment"),
        model_name=model,
        dataset=dataset,
        n_samples=n,
        max_new_tokens=kwargs.pop("max_new_tokens", 8),
        seed=kwargs.pop("seed", 0),
        strategies=strategies,
        self_eval=kwargs.pop("self_eval", False),
    )
    owner = team.memberships.get(role="owner").user
    return submit_experiment(team, owner, spec)


def make_code_experiment(team: Team, strategies: list[StrategySpec], *, n: int = 4,
                         size: int = 1, model: str = "tiny-random", **kwargs: Any) -> Experiment:
    """A HumanEval experiment (first ``size`` problems) stored without running it."""
    from webapp.datasets.code import ensure_humaneval_dataset

    spec = ExperimentSpec(
        name=kwargs.pop("name", "Code experiment"), model_name=model,
        dataset=ensure_humaneval_dataset(team, size=size), n_samples=n,
        max_new_tokens=kwargs.pop("max_new_tokens", 8), seed=kwargs.pop("seed", 0),
        strategies=strategies, verifier="unit_tests",
        verifier_config=kwargs.pop("verifier_config", {}),
    )
    owner = team.memberships.get(role="owner").user
    return submit_experiment(team, owner, spec)
