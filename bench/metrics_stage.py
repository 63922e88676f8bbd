"""Bench: the metrics stage as the worker runs it, before vs after, in one command.

Run: .venv/bin/python bench/metrics_stage.py  [--problems 500 --samples 100 --runs 3
     --baseline 1fd5a5e]   (quick check: --problems 50 --samples 20 --runs 1)
     At the size of repeated-sampling studies (1,000 samples per problem over the three
     pools): --problems 500 --pool-samples 500,250,250 --data /tmp/bench-data

Each side (the baseline revision, checked out with ``git worktree add --detach`` into a
temporary folder, and this checkout) builds the same seeded synthetic experiment in a
fresh SQLite database of its own, with ORM ``bulk_create`` of models whose schema is the
same in both revisions (Team, Dataset, Problem, Experiment, SamplePool, Strategy, Sample,
Verdict): a math dataset of P problems, three pools of N samples each (answers clustered
around the gold and a few distractors, about half correct, 5% without an answer;
verdicts stored as the verification task stores them: ``math`` with a 0/1 score, plus a
``self_eval`` score per sample), and four strategies: majority and best-of-majority on
one pool, best-of-N on the second, the oracle on the third. ``--pool-samples`` gives
each pool its own N (each strategy reads its pool's N; k runs over powers of two up to
the largest); ``--data`` keeps each side's built database in a folder and reuses it for
the same shape, since building 500,000 samples takes minutes.

A fresh process per side then times ``webapp.experiments.results.compute_results
(experiment_id, embed=None)``, exactly what ``workers.tasks.compute_metrics`` calls, but
with embeddings off (the worker passes a sentence-embedding model, which would time the
model rather than the stage); ``--embed`` passes the worker's own embedder
(``workers.runtime.embeddings.embed_texts``, loaded before the clock starts) instead.
It reports the median of ``--runs`` and the process's peak RSS (Django + the stage; the
data is built in another process), and dumps every ProblemResult and Metric row so that
both sides' results are compared exactly (where they differ, by which figures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = 0
K_VALUES = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # the app's DEFAULT_K_VALUES
VOCAB = [f"w{i}" for i in range(400)]
# (position, label, pool, selector): two strategies read pool 0, as in a typical experiment.
STRATEGIES = (
    (0, "majority", 0, "majority"),
    (1, "best of majority", 0, "best_of_majority"),
    (2, "best of N (self-eval)", 1, "best_of_n"),
    (3, "oracle", 2, "oracle"),
)
TEMPERATURES = (0.7, 1.0, 0.5)


def setup_django(root: str, db: str) -> None:
    """Point Django at the side's code (``root``) and database file, then set it up."""
    sys.path.insert(0, root)
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()


def build(problems: int, sizes: list[int]) -> int:
    """Store the synthetic experiment, pool j with ``sizes[j]`` samples per problem;
    return its id."""
    import numpy as np
    from django.core.management import call_command

    from webapp.datasets.models import Dataset, Problem
    from webapp.experiments.models import Experiment, Sample, SamplePool, Strategy, Verdict
    from webapp.teams.models import Team

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(SEED)
    team = Team.objects.create(name="Bench", slug="bench")
    dataset = Dataset.objects.create(team=team, name="bench", source=Dataset.Source.PROMPTS,
                                     kind=Dataset.Kind.MATH, content_key="bench")
    golds = rng.integers(10, 1000, size=problems)
    # Stored in shuffled order, so that ids do not follow indices (as after an upload).
    Problem.objects.bulk_create([
        Problem(dataset=dataset, index=i, prompt=f"Problem {i}: what is {golds[i] - 7} + 7?",
                answer=str(golds[i]))
        for i in rng.permutation(problems).tolist()
    ])
    problem_ids = list(Problem.objects.filter(dataset=dataset).order_by("index")
                       .values_list("pk", flat=True))
    experiment = Experiment.objects.create(
        team=team, name="bench", model_name="bench-model", dataset=dataset,
        n_samples=max(sizes), max_new_tokens=256, seed=SEED,
        k_values=[k for k in K_VALUES if k <= max(sizes)], verifier="math", self_eval=True,
        status=Experiment.Status.RUNNING,
    )
    pools = [
        SamplePool.objects.create(key=f"bench-pool-{j}", model_name="bench-model",
                                  prompt_scheme="direct", decoding={"temperature": t},
                                  seed=SEED)
        for j, t in enumerate(TEMPERATURES)
    ]
    for position, label, pool, selector in STRATEGIES:
        Strategy.objects.create(experiment=experiment, position=position, label=label,
                                temperature=TEMPERATURES[pool], selector=selector,
                                n=sizes[pool], pool=pools[pool])
    rate = rng.beta(1.0, 1.0, size=problems)  # difficulty: about half correct overall
    for pool, samples in zip(pools, sizes, strict=True):
        shape = (problems, samples)
        correct = rng.random(shape) < rate[:, None]
        offset = rng.choice([1, 2, 3, 5, 10, -1], p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05],
                            size=shape)
        answered = rng.random(shape) >= 0.05
        words = rng.integers(20, 60, size=shape)
        logprob = rng.normal(np.where(correct, -0.3, -0.5), 0.15, shape)
        seconds = rng.uniform(0.01, 0.1, shape)
        score = np.clip(np.round(rng.normal(np.where(correct, 0.6, 0.45), 0.15, shape), 2),
                        0, 1)
        rows, verdicts = [], []
        for p, problem_id in enumerate(problem_ids):
            gold = int(golds[p])
            for i in range(samples):
                answer = str(gold if correct[p, i] else gold + int(offset[p, i]))
                text = " ".join(VOCAB[w] for w in rng.integers(0, 400, size=int(words[p, i])))
                if answered[p, i]:
                    text += f". The answer is {answer}."
                tokens = int(words[p, i] * 1.3)
                rows.append(Sample(pool=pool, problem_id=problem_id, index=i, text=text,
                                   prompt_tokens=40, generated_tokens=tokens,
                                   logprob_sum=float(logprob[p, i] * tokens),
                                   finish_reason="eos", seconds=float(seconds[p, i])))
                passed = bool(answered[p, i] and correct[p, i])
                verdicts.append((answer if answered[p, i] else None, passed,
                                 float(score[p, i])))
        Sample.objects.bulk_create(rows, batch_size=2000)
        ids = Sample.objects.filter(pool=pool).order_by("problem__index", "index").values_list(
            "pk", flat=True)
        stored = []
        for sample_id, (answer, passed, self_score) in zip(ids, verdicts, strict=True):
            stored.append(Verdict(sample_id=sample_id, verifier="math", answer=answer,
                                  outcome=Verdict.Outcome.PASS if passed
                                  else Verdict.Outcome.FAIL, score=float(passed)))
            stored.append(Verdict(sample_id=sample_id, verifier="self_eval", score=self_score,
                                  outcome=Verdict.Outcome.UNJUDGED))
        Verdict.objects.bulk_create(stored, batch_size=4000)
    return experiment.pk


def measure(experiment_id: int, runs: int, dump: str, embed: bool) -> dict[str, Any]:
    """Time the stage ``runs`` times; dump its rows; return seconds and peak RSS."""
    from django.core.management import call_command

    from webapp.experiments import results
    from webapp.experiments.models import Metric, ProblemResult

    call_command("migrate", verbosity=0)  # a kept database may predate a migration
    embedder = None
    if embed:
        from workers.runtime.embeddings import embed_texts

        embed_texts(["load the model before the clock starts"])
        embedder = embed_texts
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        results.compute_results(experiment_id, embed=embedder)
        seconds.append(time.perf_counter() - start)
    rows = {
        "results": [list(r) for r in ProblemResult.objects.order_by(
            "strategy__position", "problem__index").values_list(
            "strategy__position", "problem__index", "n", "n_correct", "selected_index",
            "selected_answer", "selected_credit", "tied_answers")],
        "metrics": [list(m) for m in Metric.objects.order_by(
            "strategy__position", "name", "k").values_list(
            "strategy__position", "name", "k", "value", "ci_low", "ci_high")],
    }
    Path(dump).write_text(json.dumps(rows))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak_mb}


def pool_sizes(args: argparse.Namespace) -> list[int]:
    """Samples per problem in each pool: ``--pool-samples``, else ``--samples`` each."""
    if not args.pool_samples:
        return [args.samples] * len(TEMPERATURES)
    sizes = [int(size) for size in args.pool_samples.split(",")]
    if len(sizes) != len(TEMPERATURES) or min(sizes) < 1:
        sys.exit(f"--pool-samples takes {len(TEMPERATURES)} sizes >= 1, got "
                 f"{args.pool_samples!r}")
    return sizes


def child(args: argparse.Namespace) -> None:
    setup_django(args.root, args.db)
    if args.child == "build":
        print(json.dumps({"experiment_id": build(args.problems, pool_sizes(args))}))
    else:
        print(json.dumps(measure(args.experiment, args.runs, args.dump, args.embed)))


def run_side(root: Path, work: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build (or, with ``--data``, reuse) and measure in fresh processes whose code is
    ``root``'s."""
    dump = work / "rows.json"
    shape = f"{args.problems}x{'-'.join(map(str, pool_sizes(args)))}"
    data = Path(args.data) if args.data else work
    data.mkdir(parents=True, exist_ok=True)
    db, built_id = data / f"{name}-{shape}.sqlite3", data / f"{name}-{shape}.json"
    env = {**os.environ, "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    env.pop("DATABASE_URL", None)

    def call(*extra: str) -> dict[str, Any]:
        command = [sys.executable, str(Path(__file__).resolve()), "--root", str(root),
                   "--db", str(db), "--problems", str(args.problems), "--samples",
                   str(args.samples), "--pool-samples", args.pool_samples, "--runs",
                   str(args.runs), *(["--embed"] if args.embed else []), *extra]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            sys.exit(f"{root}: {' '.join(extra)} failed:\n{done.stderr[-4000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    start = time.perf_counter()
    if not built_id.exists():
        db.unlink(missing_ok=True)
        built_id.write_text(json.dumps(call("--child", "build")))
    experiment = json.loads(built_id.read_text())["experiment_id"]
    built = time.perf_counter() - start
    measured = call("--child", "measure", "--experiment", str(experiment), "--dump", str(dump))
    measured["build_seconds"] = built
    measured["rows"] = json.loads(dump.read_text())
    return measured


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Whether both sides wrote exactly the same rows (floats compared exactly); else
    how many results differ and which figures (by name) differ or are new or gone."""
    differ = [
        name for name in ("results", "metrics")
        if before["rows"][name] != after["rows"][name]
    ]
    if not differ:
        counts = ", ".join(f"{len(after['rows'][n])} {n}" for n in ("results", "metrics"))
        return f"identical ({counts} rows)"
    lines = []
    if "results" in differ:
        pairs = zip(before["rows"]["results"], after["rows"]["results"], strict=False)
        bad = [(b, a) for b, a in pairs if b != a]
        lines.append(f"results: {len(bad)} differ, sizes {len(before['rows']['results'])} vs "
                     f"{len(after['rows']['results'])}; first: {bad[:3]}")
    if "metrics" in differ:
        old, new = ({tuple(m[:3]): m[3:] for m in side["rows"]["metrics"]}
                    for side in (before, after))
        gaps: dict[str, float] = {}
        for key in old.keys() & new.keys():
            if old[key] != new[key]:
                gaps[key[1]] = max(gaps.get(key[1], 0.0), *(
                    abs(a - b) if a is not None and b is not None else float("inf")
                    for a, b in zip(old[key], new[key], strict=True)))
        changed = [f"{name} (by up to {gap:.1e})" for name, gap in sorted(gaps.items())]
        lines.append(f"metrics: values differ in {changed or 'none'}, only after "
                     f"{sorted({key[1] for key in new.keys() - old.keys()}) or 'none'}, "
                     f"only before {sorted({key[1] for key in old.keys() - new.keys()}) or 'none'}"
                     f"; identical: {sorted({k[1] for k in old} - set(gaps))}")
    return "DIFFERENT: " + "; ".join(lines)


def describe(name: str, side: dict[str, Any], runs: int) -> str:
    times = ", ".join(f"{s:.2f}" for s in side["seconds"])
    return (f"{name}: median {statistics.median(side['seconds']):.2f} s of {runs} run(s) "
            f"[{times}], peak RSS {side['peak_rss_mb']:.0f} MiB "
            f"(data built in {side['build_seconds']:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--pool-samples", default="",
                        help="samples per problem of each of the three pools, e.g. "
                             "500,250,250 (default: --samples each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="1fd5a5e",
                        help="revision to compare with (empty: time this checkout only)")
    parser.add_argument("--data", default="",
                        help="folder that keeps each side's built database for reuse")
    parser.add_argument("--embed", action="store_true",
                        help="pass the worker's sentence embedder, as compute_metrics does")
    parser.add_argument("--child", choices=("build", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--experiment", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = pool_sizes(args)
    size = f"{args.problems}x{'+'.join(map(str, sizes))}"
    print(f"metrics stage: compute_results(experiment_id, "
          f"embed={'embed_texts' if args.embed else 'None'}), {args.problems} problems x "
          f"{'+'.join(map(str, sizes))} samples ({args.problems * sum(sizes)} in all), "
          f"3 pools, {len(STRATEGIES)} strategies "
          f"({', '.join(f'{s[3]} on pool {s[2]}' for s in STRATEGIES)})", flush=True)
    with tempfile.TemporaryDirectory(prefix="stratlab-bench-") as tmp:
        work = Path(tmp)
        after_dir = work / "after"
        after_dir.mkdir()
        after = run_side(ROOT, after_dir, "after", args)
        print(describe("after (this checkout)", after, args.runs), flush=True)
        if not args.baseline:
            print(f"metrics stage {size}: after {statistics.median(after['seconds']):.1f} s")
            return
        tree, before_dir = work / "baseline", work / "before"
        before_dir.mkdir()
        commit = subprocess.run(["git", "rev-parse", "--short=12", args.baseline], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), commit],
                       cwd=ROOT, check=True)
        try:
            before = run_side(tree, before_dir, f"before-{commit}", args)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=False)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    print(describe(f"before ({args.baseline})", before, args.runs))
    print(f"results before vs after: {compare(before, after)}")
    slow, fast = statistics.median(before["seconds"]), statistics.median(after["seconds"])
    print(f"peak RSS: before {before['peak_rss_mb']:.0f} MiB, after "
          f"{after['peak_rss_mb']:.0f} MiB")
    print(f"metrics stage {size}: before {slow:.1f} s, after {fast:.1f} s, "
          f"speed-up {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
