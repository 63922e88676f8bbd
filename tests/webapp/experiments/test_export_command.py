"""``manage.py export_experiment``: the page's exports on standard output or into a file."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import ROOT, database_url
from tests.webapp.experiments import review_data
from webapp.experiments.exports import export
from webapp.experiments.models import Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(team: Any) -> Experiment:
    return review_data.build(team)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("export_experiment", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_writes_csv_samples_to_stdout_by_default(experiment: Experiment) -> None:
    rows = list(csv.DictReader(io.StringIO(run(str(experiment.pk)))))
    assert len(rows) == 25 and rows[0]["pool"] == "A"


@pytest.mark.parametrize("what", ["samples", "problems", "metrics"])
@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_it_writes_what_the_page_offers(experiment: Experiment, what: str, fmt: str) -> None:
    printed = run(str(experiment.pk), "--what", what, "--format", fmt)
    page = b"".join(export(experiment, what, fmt).chunks).decode()
    if fmt == "json":  # the export time differs; everything else is the same
        printed_doc, page_doc = json.loads(printed), json.loads(page)
        assert printed_doc["rows"] == page_doc["rows"]
        assert printed_doc["experiment"]["id"] == experiment.pk
    elif fmt == "jsonl":
        assert printed.splitlines()[1:] == page.splitlines()[1:]
    else:
        assert printed == page


def test_it_writes_a_file_with_output(experiment: Experiment, tmp_path: Path) -> None:
    target = tmp_path / "metrics.csv"
    err = io.StringIO()
    call_command("export_experiment", str(experiment.pk), "--what", "metrics",
                 "--output", str(target), stdout=io.StringIO(), stderr=err)
    rows = list(csv.DictReader(target.open(newline="")))
    assert rows and rows[0]["strategy"] == "greedy + first"
    assert f"to {target}" in err.getvalue()


def test_humaneval_needs_a_code_experiment_and_bad_input_is_named(
        experiment: Experiment, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="code experiments only"):
        run(str(experiment.pk), "--format", "humaneval")
    with pytest.raises(CommandError, match="No experiment with id 999"):
        run("999")
    with pytest.raises(CommandError, match="no such folder"):
        run(str(experiment.pk), "--output", str(tmp_path / "missing" / "x.csv"))
    with pytest.raises(CommandError, match="invalid choice: 'xlsx'"):
        run(str(experiment.pk), "--format", "xlsx")


@pytest.mark.django_db(transaction=True)
def test_it_streams_bytes_from_a_real_process(team: Any) -> None:
    """``manage.py`` in its own process writes the export's bytes to its stdout."""
    from django.db import connection

    experiment = review_data.build(team, name="Process run")
    result = subprocess.run(
        [sys.executable, "manage.py", "export_experiment", str(experiment.pk),
         "--what", "samples", "--format", "jsonl"],
        cwd=ROOT, capture_output=True, timeout=120, check=False,
        env={**os.environ,
             "DATABASE_URL": database_url(connection.settings_dict)},
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines[0]["experiment"]["name"] == "Process run" and len(lines) == 26
