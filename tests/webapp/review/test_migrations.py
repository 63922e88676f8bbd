"""The migration that makes comments the team's fills each existing comment's team from
the experiment it was written on."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("review", "0001_initial")]
AFTER = [("review", "0002_team_comments_and_answer_labels")]


@pytest.mark.django_db(transaction=True)
def test_it_gives_every_comment_its_experiments_team(team: Any, owner: Any) -> None:
    from tests.factories import make_experiment, make_team

    experiment = make_experiment(team, prompts=[("1+1?", "2")])
    other_team = make_team("Beta")
    other = make_experiment(other_team, prompts=[("2+2?", "4")], name="Beta run")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Comment = old.get_model("review", "Comment")
        for run in (experiment, other):
            Comment.objects.create(experiment_id=run.pk, problem_id=run.problems.get().pk,
                                   author_id=owner.pk, body=f"on {run.name}")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest
    new = executor.loader.project_state(AFTER).apps.get_model("review", "Comment")
    assert dict(new.objects.values_list("body", "team_id")) == {
        "on Test experiment": team.pk, "on Beta run": other_team.pk}
