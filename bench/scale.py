"""Bench: the metrics stage and the pages at the size of repeated-sampling studies.

Run: .venv/bin/python bench/scale.py  [--sizes 100k,500k --runs 3 --baseline REV
     --baseline-runs 1 --embed --page-n 1000]      (quick check: --sizes 10k --runs 1)

For each size this checkout builds one synthetic experiment through the real services,
as the tasks store it: a typed-prompts math dataset (``ensure_prompt_dataset``), the
experiment submitted with ``submit_experiment`` (its generation chunks really go to an
embedded Redis, which no worker reads), claimed, then for every generation chunk the
work the task computes (``generation.chunk_work``), the candidates stored by
``store_candidates`` with their self-evaluation scores (``record_scores``), and every
pool judged by ``verification.record_verdicts`` (the math verifier on every sample).
The model is replaced by a seeded generator of GSM8K-like texts: answers clustered
around the gold and a few distractors, about half right, 5% with no answer.

Shapes (three pools, four strategies, self-evaluation on, k at powers of two up to N):
greedy ``first`` (T=0, one sample), ``majority`` and ``best_of_majority`` on the T=0.7
pool, ``best_of_n`` by self-evaluation on the T=1.0 pool.

    10k   100 problems x N=50     10,100 samples  (a quick check)
    100k  500 problems x N=100   100,500 samples
    500k  500 problems x N=500   500,500 samples  (1,000 sampled per problem)

plus, for the problem page at N=1,000, a 20-problem experiment with one pool of N=1,000.

Each side (this checkout, and with ``--baseline REV`` that revision checked out by
``git worktree add --detach``) then runs on its own copy of the same database (for the
baseline, with this checkout's newer migrations unapplied), in fresh processes:
``results.compute_results(experiment_id, embed=None)`` (what
``workers.tasks.compute_metrics`` calls, embeddings off) ``--runs`` times, with the
process's peak RSS; then through Django's test client, as a team member, the experiment
page while it runs (stage progress), once finished (figures, comparisons, the problem
list), and a problem page: median server time of ``--runs`` requests after one warm-up,
SQL queries and response bytes. With ``--embed`` it also times this checkout's stage with
the worker's MiniLM embedder (``workers.runtime.embeddings.embed_texts``): the stage
with diversity by embeddings, less the stage without, is the embedding step.

Goals (issue: scale) are printed beside each figure. The last line gives the metrics
stage's seconds at the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = 0
SIZES = {"10k": (100, 50), "100k": (500, 100), "500k": (500, 500)}
PAGE_SHAPE = (20, 1000)  # the problem page at N=1,000: problems x N, one pool
VOCAB = ("so", "then", "we", "add", "the", "total", "is", "each", "of", "and", "which",
         "gives", "first", "next", "she", "has", "more", "left", "per", "day", "times")
GOALS = {"stage_500k": 20.0, "stage_rss_mb": 2048.0, "detail_ms": 300.0,
         "problem_ms": 300.0, "embed_s": 60.0}


def setup_django(root: str, db: str) -> None:
    """Point Django at the side's code (``root``) and database file, then set it up."""
    sys.path.insert(0, root)
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()


# --- Building, with this checkout's services -----------------------------------------


def synthetic_texts(rng: Any, gold: int, n: int, rate: float) -> list[tuple[str, float]]:
    """``n`` (text, self-evaluation score) for a problem whose answer is ``gold``."""
    correct = rng.random(n) < rate
    offsets = rng.choice([1, 2, 3, 5, 10, -1], p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05],
                         size=n)
    answered = rng.random(n) >= 0.05
    words = rng.integers(20, 60, size=n)
    scores = rng.normal(0.45 + 0.15 * correct, 0.15)
    out = []
    for i in range(n):
        body = " ".join(VOCAB[w] for w in rng.integers(0, len(VOCAB), size=int(words[i])))
        answer = gold if correct[i] else gold + int(offsets[i])
        text = f"{body} {answer - 7} + 7 = {answer}."
        if answered[i]:
            text += f" The answer is \\boxed{{{answer}}}."
        out.append((text, float(min(1.0, max(0.0, round(scores[i], 2))))))
    return out


def build(problems: int, n: int, greedy: bool) -> dict[str, Any]:
    """Submit and store one synthetic experiment as the tasks would; its ids."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from strategies.types import Candidate
    from webapp.datasets.services import PromptRow, ensure_prompt_dataset
    from webapp.experiments import generation, services, verification
    from webapp.experiments.models import Experiment, Sample
    from webapp.experiments.specs import ExperimentSpec, StrategySpec
    from webapp.teams.services import ensure_team

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench-password")
    team = ensure_team("Bench", owner=user)
    rng = np.random.default_rng(SEED)
    golds = rng.integers(10, 1000, size=problems)
    dataset = ensure_prompt_dataset(team, [
        PromptRow(f"Problem {i}: Tom has {g - 7} apples and buys 7 more. How many?",
                  str(g)) for i, g in enumerate(golds)])
    rows = [StrategySpec(temperature=0.7, selector="majority"),
            StrategySpec(temperature=0.7, selector="best_of_majority"),
            StrategySpec(temperature=1.0, selector="best_of_n")]
    if greedy:
        rows.insert(0, StrategySpec(temperature=0.0, selector="first"))
    spec = ExperimentSpec(name=f"Scale {problems}x{n}", model_name="tiny-random",
                          dataset=dataset, n_samples=n, max_new_tokens=128, seed=SEED,
                          strategies=rows if greedy else rows[:1], self_eval=True)
    experiment = services.submit_experiment(team, user, spec)
    experiment.refresh_from_db()
    if experiment.status != Experiment.Status.QUEUED:
        raise SystemExit(f"the submitted experiment is {experiment.status}: "
                         f"{experiment.error}")
    services.claim_experiment(experiment.pk)
    rate = rng.beta(1.0, 1.0, size=problems)  # difficulty: about half right overall
    index_of = dict(experiment.problems.values_list("pk", "index"))
    started = time.perf_counter()
    for chunk in services.generation_chunks(experiment):
        for model_work in generation.chunk_work(experiment.pk, chunk.demands,
                                                chunk.problem_ids):
            for work in model_work.lacking:
                p = index_of[work.problem_id]
                size = 1 if work.recipe.is_greedy else work.n - work.first
                drawn = synthetic_texts(rng, int(golds[p]), size, float(rate[p]))
                generation.store_candidates(work, [
                    Candidate(text=t, prompt_tokens=30, generated_tokens=len(t) // 4,
                              logprob_sum=-0.02 * len(t), finish_reason="eos",
                              seconds=0.002) for t, _ in drawn])
                pending = generation.unscored(work)
                generation.record_scores(work, pending, [s for _, s in drawn][
                    :len(pending)] + [0.5] * max(0, len(pending) - len(drawn)))
    stored = time.perf_counter() - started
    started = time.perf_counter()
    ids = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    for pool_id in experiment.strategies.values_list("pool_id", flat=True).distinct():
        for first in range(0, len(ids), 50):
            verification.record_verdicts(experiment, pool_id, ids[first:first + 50])
    verified = time.perf_counter() - started
    problem = experiment.problems.order_by("index").first()
    return {"experiment": experiment.pk, "problem": problem.pk if problem else 0,
            "samples": Sample.objects.filter(pool__strategies__experiment=experiment)
            .distinct().count(), "store_s": stored, "verify_s": verified}


# --- Measuring, with the side's code -------------------------------------------------


def stage(experiment_id: int, runs: int, embed: bool) -> dict[str, Any]:
    """Time the metrics stage as the worker calls it."""
    from webapp.experiments import results

    embedder = None
    if embed:
        from workers.runtime.embeddings import embed_texts

        embedder = embed_texts
        embed_texts(["warm up"])  # load the model outside the timing
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        results.compute_results(experiment_id, embed=embedder)
        seconds.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak_mb}


def page(client: Any, url: str, runs: int, headers: dict[str, str] | None = None,
         ) -> dict[str, Any]:
    """Median server time of ``runs`` GETs after one warm-up, queries and bytes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url, **(headers or {}))
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code}")
    seconds, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url, **(headers or {}))
            seconds.append(time.perf_counter() - start)
        queries = len(captured)
    return {"ms": 1000 * statistics.median(seconds), "queries": queries,
            "bytes": len(response.content)}


def pages(experiment_id: int, problem_id: int, runs: int, finish: bool) -> dict[str, Any]:
    """The experiment page (running, or finished with ``finish``) and a problem page."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from webapp.experiments import services

    client = Client(SERVER_NAME="localhost")
    client.force_login(get_user_model().objects.get(username="bench"))
    detail = reverse("experiment-detail", args=[experiment_id])
    if not finish:
        return {"running": page(client, detail, runs)}
    services.finish_experiment(experiment_id)
    out = {"finished": page(client, detail, runs),
           "problems_page_2": page(client, f"{detail}?page=2", runs,
                                   {"HTTP_HX_REQUEST": "true",
                                    "HTTP_HX_TARGET": "problem-list"})}
    if problem_id:
        out["problem"] = page(client, reverse("experiment-problem",
                                              args=[experiment_id, problem_id]), runs)
    return out


def child(args: argparse.Namespace) -> None:
    if args.child == "build":
        # The submission really enqueues its generation chunks: on an embedded Redis.
        sys.path.insert(0, args.root)
        from webapp.embedded_redis import EmbeddedRedis, free_port

        broker = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="scale-redis-")),
                               free_port()).start()
        os.environ["REDIS_URL"] = broker.url
        try:
            setup_django(args.root, args.db)
            problems, n = (int(v) for v in args.shape.split("x"))
            out = build(problems, n, greedy=problems != PAGE_SHAPE[0])
        finally:
            broker.stop()
        print(json.dumps(out))
        return
    setup_django(args.root, args.db)
    if args.child == "stage":
        out = stage(args.experiment, args.runs, args.embed)
    else:
        out = pages(args.experiment, args.problem, args.runs, args.child == "finished")
    print(json.dumps(out))


# --- The parent: sides, sizes, report ------------------------------------------------


def call(root: Path, db: Path, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, str(Path(__file__).resolve()), "--root", str(root),
               "--db", str(db), *extra]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"{root}: {' '.join(extra)} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure_side(root: Path, built: Path, work: Path, ids: dict[str, Any], runs: int,
                 embed: bool) -> dict[str, Any]:
    """Stage and pages on a fresh copy of the built database, with ``root``'s code."""
    db = work / "side.sqlite3"
    shutil.copyfile(built, db)
    if root != ROOT:
        migrate_back(root, db)
    experiment = str(ids["experiment"])
    out: dict[str, Any] = {}
    out.update(call(root, db, "--child", "running", "--experiment", experiment,
                    "--runs", str(runs)))
    out["stage"] = call(root, db, "--child", "stage", "--experiment", experiment,
                        "--runs", str(runs))
    if embed:
        out["stage_embed"] = call(root, db, "--child", "stage", "--experiment", experiment,
                                  "--runs", "1", "--embed")
    out.update(call(root, db, "--child", "finished", "--experiment", experiment,
                    "--problem", str(ids["problem"]), "--runs", str(runs)))
    return out


def migrate_back(root: Path, db: Path) -> None:
    """Unapply, with this checkout's migrations, those the baseline ``root`` lacks, so
    that its code runs on the same data in its own schema."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}",
           "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    for folder in sorted((root / "webapp").glob("*/migrations")):
        names = sorted(p.stem for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))
        ours = sorted(p.stem for p in (ROOT / folder.relative_to(root)).glob(
            "[0-9][0-9][0-9][0-9]_*.py"))
        if names and ours != names:
            subprocess.run([sys.executable, "manage.py", "migrate", folder.parent.name,
                            names[-1], "--verbosity", "0"], cwd=ROOT, env=env, check=True)


def worktree(revision: str, work: Path) -> Path:
    path = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), revision], cwd=ROOT,
                   check=True, capture_output=True)
    return path


def fmt_page(name: str, figure: dict[str, Any] | None, goal: float | None) -> str:
    if not figure:
        return f"  {name:<22} -"
    text = (f"  {name:<22} {figure['ms']:8.1f} ms  {figure['queries']:4d} queries  "
            f"{figure['bytes'] / 1024:8.1f} KiB")
    if goal is not None:
        text += f"   goal < {goal:.0f} ms: {'met' if figure['ms'] < goal else 'NOT met'}"
    return text


def report(size: str, ids: dict[str, Any], sides: dict[str, dict[str, Any]],
           largest: bool) -> None:
    print(f"\n== {size}: {ids['samples']:,} samples "
          f"(stored in {ids['store_s']:.1f} s, verified in {ids['verify_s']:.1f} s)")
    for name, side in sides.items():
        st = side["stage"]
        median = statistics.median(st["seconds"])
        runs = ", ".join(f"{s:.2f}" for s in st["seconds"])
        goal = ""
        if largest:
            goal = (f"   goal < {GOALS['stage_500k']:.0f} s: "
                    f"{'met' if median < GOALS['stage_500k'] else 'NOT met'}")
        print(f" {name}: metrics stage median {median:.2f} s [{runs}], peak RSS "
              f"{st['peak_rss_mb']:.0f} MiB (goal < {GOALS['stage_rss_mb']:.0f}){goal}")
        if "stage_embed" in side:
            with_embed = side["stage_embed"]["seconds"][0]
            step = with_embed - median
            print(f"  with MiniLM embeddings {with_embed:.2f} s: embedding step {step:.1f} s"
                  f"   goal < {GOALS['embed_s']:.0f} s: "
                  f"{'met' if step < GOALS['embed_s'] else 'NOT met'}")
        print(fmt_page("page while running", side.get("running"), GOALS["detail_ms"]))
        print(fmt_page("results page", side.get("finished"), GOALS["detail_ms"]))
        print(fmt_page("problem list, page 2", side.get("problems_page_2"), None))
        print(fmt_page("problem page", side.get("problem"), None))
    if len(sides) == 2:
        (a, before), (b, after) = sides.items()
        ratio = (statistics.median(before["stage"]["seconds"])
                 / statistics.median(after["stage"]["seconds"]))
        print(f" metrics stage {a} / {b}: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100k,500k")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="")
    parser.add_argument("--baseline-runs", type=int, default=0,
                        help="metrics-stage runs of the baseline (default: --runs)")
    parser.add_argument("--embed", action="store_true")
    parser.add_argument("--page-n", type=int, default=PAGE_SHAPE[1])
    parser.add_argument("--root", default=str(ROOT))
    parser.add_argument("--db", default="")
    parser.add_argument("--child", default="")
    parser.add_argument("--shape", default="")
    parser.add_argument("--experiment", type=int, default=0)
    parser.add_argument("--problem", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    print(f"load: {os.getloadavg()[0]:.2f} (1-min average) on {os.cpu_count()} cores; "
          f"medians of {args.runs}")
    with tempfile.TemporaryDirectory(prefix="stratlab-scale-") as tmp:
        work = Path(tmp)
        base = worktree(args.baseline, work) if args.baseline else None
        try:
            stage_seconds = 0.0
            for size in sizes:
                problems, n = SIZES[size]
                built = work / f"{size}.sqlite3"
                ids = call(ROOT, built, "--child", "build", "--shape", f"{problems}x{n}")
                sides: dict[str, dict[str, Any]] = {}
                if base is not None:
                    sides[f"before ({args.baseline})"] = measure_side(
                        base, built, work, ids, args.baseline_runs or args.runs,
                        embed=False)
                sides["after (this checkout)"] = measure_side(
                    ROOT, built, work, ids, args.runs, args.embed)
                report(size, ids, sides, largest=size == sizes[-1])
                stage_seconds = statistics.median(
                    sides["after (this checkout)"]["stage"]["seconds"])
            problems, n = PAGE_SHAPE[0], args.page_n
            built = work / "page.sqlite3"
            ids = call(ROOT, built, "--child", "build", "--shape", f"{problems}x{n}")
            db = work / "page-side.sqlite3"
            shutil.copyfile(built, db)
            call(ROOT, db, "--child", "stage", "--experiment", str(ids["experiment"]),
                 "--runs", "1")
            figure = call(ROOT, db, "--child", "finished", "--experiment",
                          str(ids["experiment"]), "--problem", str(ids["problem"]),
                          "--runs", str(args.runs))["problem"]
            print(f"\n== problem page at N={n} ({ids['samples']:,} samples)")
            print(fmt_page("problem page", figure, GOALS["problem_ms"]))
        finally:
            if base is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)],
                               cwd=ROOT, check=False, capture_output=True)
    print(f"metrics stage at {sizes[-1]}: {stage_seconds:.2f} s")


if __name__ == "__main__":
    main()
