"""The reproducibility manifest: recorded at submit, completed by the worker's runtime
facts, shown on the experiment page and compared on the compare page."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_experiment
from tests.webapp.experiments.test_lifecycle import run_without_model
from webapp.experiments import manifest
from webapp.experiments.models import Experiment
from webapp.experiments.specs import StrategySpec

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
FACTS = {"torch": "2.9.0", "transformers": "4.57.0", "device": "cpu", "dtype": "float32",
         "model_sha256": "ab" * 32, "chat_template_sha256": None}


def test_submit_records_what_the_experiment_asks_for_and_the_code_that_runs_it(
    team: Any,
) -> None:
    experiment = make_experiment(team, n=4, seed=11, max_new_tokens=9, strategies=[
        StrategySpec(temperature=0.0, selector="first"),
        StrategySpec(temperature=0.8, top_k=5, selector="mbr",
                     selector_config={"similarity": "rouge_l"}),
    ])
    m = Experiment.objects.get(pk=experiment.pk).manifest
    assert m["python"] == platform.python_version()
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    assert m["stratlab"]["commit"] == (git.stdout.strip() if git.returncode == 0 else None)
    assert m["stratlab"]["version"]
    assert m["dataset"]["content_hash"] == experiment.dataset.content_key
    assert m["dataset"]["problems"] == 3
    assert (m["model"], m["n_samples"], m["max_new_tokens"], m["seed"]) == (
        "tiny-random", 4, 9, 11)
    greedy, mbr = m["strategies"]
    # Full configs: every field of the selector's config, defaults included.
    assert mbr["selector"] == "mbr" and mbr["selector_config"]["similarity"] == "rouge_l"
    assert {"weights"} <= set(mbr["selector_config"])
    assert mbr["decoding"]["top_k"] == 5 and "min_p" in mbr["decoding"]
    pools = {s.position: s.pool for s in experiment.strategies.all()}
    assert [greedy["pool_key"], mbr["pool_key"]] == [pools[0].key, pools[1].key]
    assert mbr["pool_seed"] == 11 and m["problem_seed_rule"] == manifest.PROBLEM_SEED_RULE
    assert m["verifier"]["name"] == "math"
    json.dumps(m)  # plain JSON, as exports carry it


def test_without_git_the_package_version_stands(settings: Any, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "9.8.7"\n')
    settings.BASE_DIR = tmp_path
    assert manifest._git_commit() is None
    assert manifest._package_version() == "9.8.7"  # stratlab is not pip-installed here


def test_runtime_facts_are_added_once_and_other_workers_facts_kept_beside(team: Any) -> None:
    experiment = make_experiment(team, n=2)
    submitted = Experiment.objects.get(pk=experiment.pk).manifest
    assert manifest.record_runtime(experiment.pk, FACTS)
    assert not manifest.record_runtime(experiment.pk, FACTS)
    gpu = {**FACTS, "device": "cuda:0", "dtype": "bfloat16"}
    assert manifest.record_runtime(experiment.pk, gpu)
    assert not manifest.record_runtime(experiment.pk, gpu)
    stored = Experiment.objects.get(pk=experiment.pk).manifest
    assert stored["runtime"] == FACTS and stored["runtime_variants"] == [gpu]
    assert {k: stored[k] for k in submitted} == submitted
    assert not manifest.record_runtime(experiment.pk + 1000, FACTS)  # no such experiment


def test_the_diff_lists_every_differing_leaf_by_its_path() -> None:
    a = {"seed": 0, "python": "3.12.1", "k_values": [1, 2],
         "strategies": [{"n": 4, "selector_config": {"threshold": 0.5}}],
         "runtime": {"device": "cpu"}}
    b = {"seed": 0, "python": "3.12.2", "k_values": [1, 2, 4],
         "strategies": [{"n": 4, "selector_config": {"threshold": 0.7}}, {"n": 1}]}
    assert manifest.manifest_diff(a, b) == [
        ("k_values", [1, 2], [1, 2, 4]),
        ("python", "3.12.1", "3.12.2"),
        ("runtime.device", "cpu", None),
        ("strategies[0].selector_config.threshold", 0.5, 0.7),
        ("strategies[1].n", None, 1),
    ]
    assert manifest.manifest_diff(a, a) == []


def test_the_experiment_page_shows_the_manifest_collapsed_and_escaped(
    client: Client, team: Any, owner: Any,
) -> None:
    experiment = make_experiment(team, n=2, strategies=[
        StrategySpec(temperature=0.7, selector="majority", label="<b>bold</b> row")])
    manifest.record_runtime(experiment.pk, FACTS)
    client.force_login(owner)
    page = client.get(reverse("experiment-detail", args=[experiment.pk])).content.decode()
    section = page.split('<details class="manifest" id="manifest">')[1].split("</details>")[0]
    assert "Reproducibility manifest" in section
    assert "torch 2.9.0, transformers 4.57.0 · cpu (float32)" in section
    assert experiment.dataset.content_key[:16] in section
    assert "&lt;b&gt;bold&lt;/b&gt; row" in section and "<b>bold</b>" not in page


def test_the_compare_page_shows_how_two_manifests_differ(
    client: Client, team: Any, owner: Any,
) -> None:
    a = make_experiment(team, n=2, name="a", seed=1)
    b = make_experiment(team, n=2, name="b", seed=2)
    c = make_experiment(team, n=2, name="c", seed=1)
    for experiment in (a, b, c):
        run_without_model(experiment)
    manifest.record_runtime(a.pk, FACTS)
    manifest.record_runtime(b.pk, {**FACTS, "model_sha256": "cd" * 32})
    manifest.record_runtime(c.pk, FACTS)
    client.force_login(owner)
    page = client.get(reverse("experiment-compare") + f"?e={a.pk}&e={b.pk}").content.decode()
    table = page.split('id="manifest-diff-table"')[1].split("</table>")[0]
    assert "<code>seed</code></td><td>1</td><td>2</td>" in table
    assert "<code>runtime.model_sha256</code>" in table and "cd" * 32 in table
    assert "strategies[1].pool_seed" in table  # the pools were seeded differently
    assert "<code>python</code>" not in table
    same = client.get(reverse("experiment-compare") + f"?e={a.pk}&e={c.pk}").content.decode()
    assert 'id="manifest-same"' in same


def test_amending_keeps_the_runtime_facts_and_records_the_amendment(team: Any) -> None:
    from webapp.experiments import lifecycle

    experiment = make_experiment(team, n=2)
    run_without_model(experiment)
    manifest.record_runtime(experiment.pk, FACTS)
    amended = lifecycle.amend_experiment(experiment.pk, n_samples=4)
    assert amended.manifest["runtime"] == FACTS and amended.manifest["n_samples"] == 4
    [note] = amended.manifest["amendments"]
    assert note["n_samples"] == [2, 4] and note["added_strategies"] == []
