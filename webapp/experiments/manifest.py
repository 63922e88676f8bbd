"""The reproducibility manifest: what produced an experiment's figures.

``Experiment.manifest`` is a plain dict, written in two steps:

* at submit (and again when the experiment is amended), ``record_submitted``: the
  StratLab version (the git commit when the code runs from a checkout, else the package
  version), Python's version, the dataset's content hash (and the chosen subset), the
  model's name, N, max new tokens, the experiment's seed and how per-problem seeds
  derive from it, the verifier, and every strategy with its full configs (defaults
  filled in), its pool's key and seed;
* when a worker generates for it, ``record_runtime``: the facts only the worker knows
  (torch and transformers versions, device and dtype, the model file's sha256, the chat
  template's hash), computed in ``workers.runtime.facts``. A second worker reporting
  other facts (another GPU, a new driver) is kept too, under ``runtime_variants``.

An experiment whose samples were all reused generates nothing and records no runtime
facts of its own: its strategies' pool keys name the pools (and so the experiments)
whose runs produced them. ``manifest_diff`` lists what differs between two manifests
(the compare page shows it); exports carry the dict as it is.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import platform
import re
import subprocess
import tomllib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction

from strategies import registry
from webapp.experiments.models import Experiment, Strategy
from webapp.experiments.verification import verifier_for

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
#: How ``generation.problem_seed`` derives a problem's seed from its pool's.
PROBLEM_SEED_RULE = "(pool seed * 1000003 + problem index) mod (2**63 - 1)"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


# --- StratLab's own version -------------------------------------------------------------


def _git_commit() -> str | None:
    """The checkout's commit (``git rev-parse HEAD``), or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True,
            text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _COMMIT.match(commit) else None


def _package_version() -> str:
    """The installed distribution's version, else ``pyproject.toml``'s."""
    try:
        return importlib.metadata.version("stratlab")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with (settings.BASE_DIR / "pyproject.toml").open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


@functools.cache
def stratlab_version() -> dict[str, Any]:
    """{"version": the package version, "commit": the git commit or None}, once per
    process (the code does not change under a running process)."""
    return {"version": _package_version(), "commit": _git_commit()}


# --- Building --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-shaped: tuples become lists, anything unknown its string."""
    return json.loads(json.dumps(value, default=str))


def _full_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A registered component's whole config: the stored fields with every default."""
    try:
        built = registry.get(name).config_class(**config)
        return _plain(dataclasses.asdict(built))
    except (ValueError, TypeError):
        return _plain(dict(config))  # a stored config no longer valid: as stored


def _strategy_entry(strategy: Strategy) -> dict[str, Any]:
    pool = strategy.pool
    recipe = pool.recipe
    try:
        scheme_config, extras = recipe.user_config()
        prompt_config = {**dataclasses.asdict(scheme_config), **extras}
    except (ValueError, TypeError):
        prompt_config = dict(strategy.prompt_config)
    decoder = dict(pool.decoder)
    if recipe.is_beam:
        decoder["config"] = dataclasses.asdict(recipe.beam_config(strategy.n))
    elif recipe.is_adaptive:
        decoder["config"] = dataclasses.asdict(recipe.adaptive_config())
    return _plain({
        "position": strategy.position,
        "label": strategy.label,
        "prompt_scheme": strategy.prompt_scheme,
        "prompt_config": prompt_config,
        "decoding": dataclasses.asdict(recipe.decoding),
        "decoder": decoder,
        "selector": strategy.selector,
        "selector_config": _full_config(strategy.selector, strategy.selector_config),
        "n": strategy.n,
        "pool_key": pool.key,
        "pool_seed": pool.seed,
        "test_pool_key": strategy.test_pool.key if strategy.test_pool_id else None,
        "test_n": strategy.test_n,
    })


def build_manifest(experiment: Experiment) -> dict[str, Any]:
    """What the experiment was asked to run, with the code that runs it (no runtime
    facts: see ``record_runtime``)."""
    dataset = experiment.dataset
    problem_indices = sorted(experiment.problems.values_list("index", flat=True))
    strategies = experiment.strategies.select_related("pool", "test_pool").order_by("position")
    return {
        "manifest_version": MANIFEST_VERSION,
        "stratlab": stratlab_version(),
        "python": platform.python_version(),
        "dataset": {
            "name": dataset.name,
            "version": dataset.version,
            "kind": dataset.kind,
            "content_hash": dataset.content_key,
            "problems": len(problem_indices),
            "subset": _plain(dict(experiment.subset)),
            # The problems run on, by their index in the dataset.
            "problems_sha256": hashlib.sha256(
                json.dumps(problem_indices).encode()).hexdigest(),
        },
        "model": experiment.model_name,
        "n_samples": experiment.n_samples,
        "max_new_tokens": experiment.max_new_tokens,
        "seed": experiment.seed,
        "problem_seed_rule": PROBLEM_SEED_RULE,
        "k_values": list(experiment.k_values),
        "verifier": {"name": experiment.verifier, "key": verifier_for(experiment),
                     "config": _full_config(experiment.verifier, experiment.verifier_config)},
        "self_eval": experiment.self_eval,
        "strategies": [_strategy_entry(s) for s in strategies],
    }


def record_submitted(experiment: Experiment, *, note: Mapping[str, Any] | None = None) -> None:
    """Store ``build_manifest`` in the experiment, keeping runtime facts already recorded
    and the history of amendments (``note`` adds one)."""
    with transaction.atomic():
        stored = (Experiment.objects.select_for_update().filter(pk=experiment.pk)
                  .values_list("manifest", flat=True).first()) or {}
        manifest = build_manifest(experiment)
        for kept in ("runtime", "runtime_variants", "amendments"):
            if kept in stored:
                manifest[kept] = stored[kept]
        if note:
            manifest["amendments"] = [*manifest.get("amendments", []), _plain(dict(note))]
        Experiment.objects.filter(pk=experiment.pk).update(manifest=manifest)
    experiment.manifest = manifest


def record_runtime(experiment_id: int, facts: Mapping[str, Any]) -> bool:
    """Add a worker's runtime facts (``workers.runtime.facts.runtime_facts``) to the
    manifest: the first become ``runtime``, different later ones join
    ``runtime_variants``. True when the manifest changed."""
    facts = _plain(dict(facts))
    with transaction.atomic():
        stored = (Experiment.objects.select_for_update().filter(pk=experiment_id)
                  .values_list("manifest", flat=True).first())
        if stored is None:
            return False  # deleted meanwhile
        manifest = dict(stored)
        if "runtime" not in manifest:
            manifest["runtime"] = facts
        elif manifest["runtime"] != facts and facts not in manifest.get("runtime_variants", []):
            manifest["runtime_variants"] = [*manifest.get("runtime_variants", []), facts]
        else:
            return False
        Experiment.objects.filter(pk=experiment_id).update(manifest=manifest)
    return True


# --- Reading ---------------------------------------------------------------------------


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value and any(
            isinstance(item, (Mapping, list)) for item in value):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", out)
    else:
        out[path] = value


def flatten(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Every leaf of a manifest by its path, e.g. ``strategies[1].selector_config.k``;
    lists of plain values (k values, a subset's ids) are one leaf.

    >>> flatten({"seed": 0, "strategies": [{"n": 4}], "k_values": [1, 2]})
    {'k_values': [1, 2], 'seed': 0, 'strategies[0].n': 4}
    """
    out: dict[str, Any] = {}
    _flatten(dict(manifest), "", out)
    return out


def manifest_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, object, object]]:
    """(path, value in a, value in b) for every leaf that differs; a leaf missing on one
    side reads None there. Sorted by path.

    >>> manifest_diff({"seed": 0, "python": "3.12"}, {"seed": 1, "python": "3.12"})
    [('seed', 0, 1)]
    """
    left, right = flatten(a), flatten(b)
    return [(path, left.get(path), right.get(path))
            for path in sorted(set(left) | set(right))
            if left.get(path) != right.get(path)]


def manifest_json(manifest: Mapping[str, Any]) -> str:
    """The manifest as indented JSON, for the page (escaped there like any text)."""
    return json.dumps(dict(manifest), indent=2, sort_keys=True)
