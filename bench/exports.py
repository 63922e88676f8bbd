"""Bench: exports stream in flat memory, against loading the rows whole, in one run.

Run: .venv/bin/python bench/exports.py  [--problems 1000 --samples 100 --runs 1]
     (quick check: --problems 100 --samples 20)

Builds, in a fresh SQLite database of its own, a math experiment of P problems and one
pool of N samples each (P x N samples, 100,000 by default) through the services the
worker uses: ``submit_experiment``, ``pools.record_samples`` per problem,
``verification.record_verdicts`` and ``results.compute_results`` (embeddings off). A
team label every 50th sample gives the label columns something to join.

Then, for each format, it consumes ``webapp.experiments.exports.export(experiment,
"samples", fmt)`` twice: once timed (rows/s, MB/s), once under ``tracemalloc`` (the
peak of Python allocations while the export ran). The baseline does what an export
without streaming would: ``list()`` of the same samples with their verdicts
(``values()``), then ``json.dumps`` of the whole list, timed and traced the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django(db: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()


def build(problems: int, samples: int) -> Any:
    """Store the experiment through the services; return it."""
    from django.contrib.auth import get_user_model

    from strategies.types import Candidate
    from webapp.datasets.services import PromptRow, ensure_prompt_dataset
    from webapp.experiments.models import Experiment, Sample
    from webapp.experiments.pools import record_samples
    from webapp.experiments.results import compute_results
    from webapp.experiments.services import submit_experiment
    from webapp.experiments.specs import ExperimentSpec, StrategySpec
    from webapp.experiments.verification import record_verdicts
    from webapp.review.models import HumanLabel
    from webapp.teams.services import ensure_team

    owner = get_user_model().objects.create_user("bench", password="bench-password-1")
    team = ensure_team("Bench", owner=owner)
    dataset = ensure_prompt_dataset(
        team, [PromptRow(f"Problem {i}: what is {i} + 7?", str(i + 7)) for i in range(problems)])
    spec = ExperimentSpec(
        name="Export bench", model_name="tiny-random", dataset=dataset, n_samples=samples,
        max_new_tokens=64, seed=0,
        strategies=[StrategySpec(temperature=0.7, selector="majority"),
                    StrategySpec(temperature=0.7, selector="first")],
    )
    experiment = submit_experiment(team, owner, spec)
    pool_id = experiment.strategies.first().pool_id
    ids = []
    for problem in experiment.problems.order_by("index"):
        gold = problem.index + 7
        record_samples(pool_id, problem.pk, {
            i: Candidate(
                text=f"Let me add {problem.index} and 7 step by step. {'First, ' * 12}"
                     f"the sum is {gold + (i % 3 == 0)}. The answer is {gold + (i % 3 == 0)}.",
                prompt_tokens=24, generated_tokens=48, logprob_sum=-17.25 - i / 100,
                finish_reason="eos", seconds=0.05)
            for i in range(samples)
        }, requested=samples)
        ids.append(problem.pk)
    record_verdicts(experiment, pool_id, ids)
    HumanLabel.objects.bulk_create([
        HumanLabel(team=team, sample_id=pk, outcome="fail", reason="checked by hand")
        for pk in Sample.objects.filter(pool_id=pool_id).values_list("pk", flat=True)[::50]
    ])
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    compute_results(experiment.pk, embed=None)
    experiment.refresh_from_db()
    return experiment


def baseline(experiment: Any) -> Callable[[], int]:
    """The samples loaded whole with their verdicts, then dumped as one JSON document."""
    import json

    from webapp.experiments.pools import experiment_samples

    def run() -> int:
        rows = list(experiment_samples(experiment).order_by("problem__index", "index").values(
            "problem_id", "problem__index", "pool_id", "index", "pk", "text",
            "verdicts__answer", "verdicts__outcome", "verdicts__score", "prompt_tokens",
            "generated_tokens", "logprob_sum", "finish_reason", "seconds"))
        return len(json.dumps(rows).encode())

    return run


def streamed(experiment: Any, fmt: str) -> Callable[[], int]:
    from webapp.experiments.exports import export

    def run() -> int:
        return sum(len(chunk) for chunk in export(experiment, "samples", fmt).chunks)

    return run


def measure(run: Callable[[], int], runs: int) -> tuple[float, int, int]:
    """(best seconds of ``runs``, bytes written, traced peak bytes of one more run)."""
    best = float("inf")
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        size = run()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return best, size, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratlab-bench-exports-") as work:
        setup_django(str(Path(work) / "bench.sqlite3"))
        from django.core.management import call_command
        from django.db import transaction

        call_command("migrate", verbosity=0)
        # One transaction, rolled back at the end: submitting enqueues on commit, and
        # this bench has no broker.
        with transaction.atomic():
            run_bench(args)
            transaction.set_rollback(True)


def run_bench(args: argparse.Namespace) -> None:
    from webapp.experiments.models import Sample

    start = time.perf_counter()
    experiment = build(args.problems, args.samples)
    rows = Sample.objects.filter(pool__strategies__experiment=experiment).distinct().count()
    print(f"built {rows:,} samples ({args.problems} problems x {args.samples}) "
          f"through the services in {time.perf_counter() - start:.1f} s")
    print(f"{'export':<34}{'seconds':>9}{'rows/s':>11}{'MB':>8}{'MB/s':>8}{'peak MiB':>10}")
    sides = [(f"samples {fmt} (streamed)", streamed(experiment, fmt))
             for fmt in ("csv", "json", "jsonl")]
    sides.append(("list(queryset) + json.dumps", baseline(experiment)))
    peaks = {}
    for name, run in sides:
        seconds, size, peak = measure(run, args.runs)
        peaks[name] = peak
        print(f"{name:<34}{seconds:>9.2f}{rows / seconds:>11,.0f}{size / 1e6:>8.1f}"
              f"{size / 1e6 / seconds:>8.1f}{peak / 2**20:>10.1f}")
    streamed_peak = max(peak for name, peak in peaks.items() if "streamed" in name)
    whole = peaks["list(queryset) + json.dumps"]
    print(f"peak memory: {streamed_peak / 2**20:.1f} MiB streamed (largest format) vs "
          f"{whole / 2**20:.1f} MiB loaded whole: {whole / streamed_peak:.1f}x less")

if __name__ == "__main__":
    main()
