"""The demo team, login and experiment that ``manage.py up`` creates on first run."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from webapp.datasets.services import ensure_arithmetic_dataset
from webapp.experiments.models import Experiment
from webapp.experiments.services import submit_experiment
from webapp.experiments.specs import ExperimentSpec, StrategySpec
from webapp.teams.services import ensure_team

DEMO_USERNAME = "demo"
DEMO_TEAM = "Demo team"
DEMO_EXPERIMENT = "Demo: greedy vs. majority vote vs. first sample"
DEMO_MODEL = "smollm2-135m-instruct"
DEMO_PROBLEMS = 20
DEMO_DATASET_SEED = 0
DEMO_N = 8
DEMO_MAX_NEW_TOKENS = 32
# Easy problems: the packaged 135M model solves some, not all, so strategies differ.
DEMO_DIFFICULTY = "easy"
DEMO_STRATEGIES = (
    StrategySpec(temperature=0.0, selector="first", label="Greedy"),
    StrategySpec(temperature=0.7, selector="majority", label="T=0.7, N=8 + majority vote"),
    StrategySpec(temperature=0.7, selector="first", label="T=0.7, N=8 + first sample"),
)


def ensure_demo_login(password_file: Path) -> tuple[str, str]:
    """The demo user (created once with a random password kept in ``password_file``)."""
    User = get_user_model()
    user = User.objects.filter(username=DEMO_USERNAME).first()
    if user is not None and password_file.exists():
        return DEMO_USERNAME, password_file.read_text().strip()
    password = secrets.token_urlsafe(9)
    if user is None:
        user = User.objects.create_user(DEMO_USERNAME, password=password)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return DEMO_USERNAME, password


@transaction.atomic
def ensure_demo_experiment(model_name: str = DEMO_MODEL) -> tuple[Experiment, bool]:
    """The demo experiment; submitted only when it does not exist yet."""
    User = get_user_model()
    user = User.objects.get(username=DEMO_USERNAME)
    team = ensure_team(DEMO_TEAM, owner=user)
    existing = Experiment.objects.filter(team=team, name=DEMO_EXPERIMENT).first()
    if existing is not None:
        return existing, False
    dataset = ensure_arithmetic_dataset(
        team, size=DEMO_PROBLEMS, seed=DEMO_DATASET_SEED, difficulty=DEMO_DIFFICULTY
    )
    spec = ExperimentSpec(
        name=DEMO_EXPERIMENT,
        model_name=model_name,
        dataset=dataset,
        n_samples=DEMO_N,
        max_new_tokens=DEMO_MAX_NEW_TOKENS,
        seed=0,
        strategies=DEMO_STRATEGIES,
    )
    return submit_experiment(team, user, spec), True
