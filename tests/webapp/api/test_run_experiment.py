"""``manage.py run_experiment``: the API's spec from a file, checked the same way; with
--wait, progress per stage, the summary table, and the exit status of the outcome."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.webapp.api.test_spec_json import SPEC
from webapp.api.management.commands.run_experiment import bar, progress_line
from webapp.experiments.models import Experiment


def spec_file(tmp_path: Path, **changes: Any) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, **changes}))
    return str(path)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("run_experiment", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_progress_bars_fill_with_the_stage() -> None:
    assert bar(0, 10, 10) == "[----------]"
    assert bar(5, 10, 10) == "[#####-----]"
    assert bar(10, 10, 10) == bar(0, 0, 10) == "[##########]"
    line = progress_line([{"key": "generate", "done": 3, "total": 12},
                          {"key": "verify", "done": 0, "total": 12}])
    assert line == "generate [#####---------------] 3/12  verify [--------------------] 0/12"


@pytest.mark.django_db
def test_it_submits_the_spec_as_the_teams_owner(tmp_path: Path, team: Any, owner: Any) -> None:
    out, _ = run(spec_file(tmp_path), "--team", team.slug)
    experiment = Experiment.objects.get()
    assert f"Experiment {experiment.pk} (Sweep) queued" in out
    assert experiment.created_by == owner and experiment.strategies.count() == 3


@pytest.mark.django_db
def test_the_spec_may_name_its_team_and_a_member_may_submit(tmp_path: Path, team: Any,
                                                            teammate: Any) -> None:
    run(spec_file(tmp_path, team=team.slug), "--user", teammate.username)
    assert Experiment.objects.get().created_by == teammate


@pytest.mark.django_db
def test_a_bad_spec_lists_its_errors_by_path_and_exits_2(tmp_path: Path, team: Any) -> None:
    strategies = [dict(row) for row in SPEC["strategies"]]
    strategies[1]["top_p"] = 0
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("run_experiment", spec_file(tmp_path, strategies=strategies, n_samples=0),
                     "--team", team.slug, stdout=io.StringIO(), stderr=err)
    assert caught.value.returncode == 2
    assert "strategies[1].top_p: top_p must be" in err.getvalue()
    assert "n_samples: Ensure this value is greater than or equal to 1." in err.getvalue()
    assert not Experiment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--team", "nope"], "There is no team 'nope'"),
    ([], "Name the team"),
    (["--team", "alpha", "--user", "vera"], "vera may not run experiments"),
    (["--team", "alpha", "--user", "other-owner"], "other-owner may not run experiments"),
])
def test_it_refuses_without_a_team_and_a_members_role(
    tmp_path: Path, team: Any, viewer: Any, stranger: Any, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run(spec_file(tmp_path), *args)
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_unreadable_files_are_named(tmp_path: Path, team: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",\n oops}')
    with pytest.raises(CommandError, match="bad.json line 2: not JSON"):
        run(str(bad), "--team", team.slug)
    with pytest.raises(CommandError, match="Cannot read"):
        run(str(tmp_path / "missing.json"), "--team", team.slug)


def cancel_when_submitted(deadline: float = 30) -> None:
    """Cancel the experiment as soon as it is stored (another connection, as a teammate's
    request would be)."""
    from django.db import connection

    from webapp.experiments.lifecycle import cancel_experiment

    try:
        stop = time.monotonic() + deadline
        while time.monotonic() < stop:
            experiment = Experiment.objects.first()
            if experiment is not None:
                cancel_experiment(experiment.pk)
                return
            time.sleep(0.05)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_waiting_on_an_experiment_that_is_cancelled_exits_1(tmp_path: Path, team: Any,
                                                            broker: str) -> None:
    canceller = threading.Thread(target=cancel_when_submitted)
    canceller.start()
    out = io.StringIO()
    try:
        with pytest.raises(CommandError) as caught:
            call_command("run_experiment", spec_file(tmp_path), "--team", team.slug, "--wait",
                         "--poll", "0.1", stdout=out, stderr=io.StringIO())
    finally:
        canceller.join()
    experiment = Experiment.objects.get()
    assert caught.value.returncode == 1
    assert str(caught.value) == f"Experiment {experiment.pk} cancelled"
    assert experiment.status == Experiment.Status.CANCELLED
    assert "generate [" in out.getvalue() and "accuracy" not in out.getvalue()


@pytest.mark.pipeline
@pytest.mark.django_db(transaction=True)
def test_waiting_shows_progress_then_the_summary_table(
    tmp_path: Path, team: Any, celery_worker_process: Any
) -> None:
    spec = spec_file(tmp_path, model="tiny-random", max_new_tokens=6,
                     dataset={"source": "arithmetic", "size": 2, "seed": 0})
    out, _ = run(spec, "--team", team.slug, "--wait", "--poll", "0.3")
    experiment = Experiment.objects.get()
    assert experiment.status == Experiment.Status.FINISHED, (
        experiment.error, celery_worker_process.output()[-3000:])
    lines = out.splitlines()
    progress = [line for line in lines if line.startswith(("queued", "running", "finished"))]
    assert progress and "generate [" in progress[0] and "select [" in progress[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("strategy"))
    assert "accuracy [95% CI]" in lines[header] and set(lines[header + 1]) <= {"-", " "}
    rows = lines[header + 2:]
    labels = [s.label for s in experiment.strategies.order_by("position")]
    assert [row.startswith(label) for row, label in zip(rows, labels, strict=True)] == [True] * 3
