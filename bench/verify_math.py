"""Bench: StratLab's math verifier against math-verify alone, and majority-vote clustering.

Run: .venv/bin/python bench/verify_math.py [--pairs 100000] [--problems 200] [--seed 14]

1. Judging. ``--pairs`` (output, reference) pairs are drawn with replacement (seeded)
   from the labelled corpus ``tests/strategies/verify/math_corpus.jsonl`` and judged by
   ``verify_math`` (extraction + equivalence, caches cleared first) and by math-verify
   alone, ``verify(parse(reference), parse(output))``, in the same run. Printed: pairs/s
   for both, their ratio, how often they agree, and each one's accuracy on the draw.
   A cold pass (each distinct corpus pair once, our caches cleared) is printed too,
   because the drawn pairs repeat and our pairwise caches make repeats cheap.
2. Clustering. ``--problems`` problems of 1,000 sampled answers each (integers, money,
   fractions, surds, expressions, points, intervals, sets, letters; several spellings
   of the right answer, wrong answers, a long tail and ``None``) are clustered by
   today's majority vote (the exact-key vote over ``canonical_answer`` of commit
   29ce553, loaded with ``git show``) and by the new ``majority_vote`` (union-find over
   the §17 equivalence, caches cleared first). Printed: both times per problem and the
   ratio (the issue's bound is 2.00), and in how many problems each vote's winner is a
   spelling of the right answer (or equivalent to one).

The last line is ``math verifier/math-verify pairs-per-second ratio: X.XX``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from strategies.select.majority import majority_vote  # noqa: E402
from strategies.verify.equivalence import clear_caches  # noqa: E402
from strategies.verify.math import is_equivalent, verify_math  # noqa: E402

CORPUS = ROOT / "tests" / "strategies" / "verify" / "math_corpus.jsonl"
TODAY = "29ce55394c2dbc232c9179c4d2cfe971b26348f5"  # last commit of the old normalize.py
SAMPLES = 1000


def math_verify_alone(output: str, reference: str) -> bool:
    """math-verify on its own, as its README shows: ``verify(parse(gold), parse(answer))``."""
    from math_verify import parse, verify

    return bool(verify(parse(reference), parse(output)))


def judge(pairs: Sequence[dict], function: Callable[[str, str], bool]) -> tuple[float, list[bool]]:
    """(seconds, verdicts) of ``function(output, reference)`` over ``pairs``."""
    started = time.perf_counter()
    verdicts = [function(p["output"], p["reference"]) for p in pairs]
    return time.perf_counter() - started, verdicts


def ours(output: str, reference: str) -> bool:
    """StratLab's math verifier."""
    return verify_math(output, reference)[1]


def section_judging(corpus: list[dict], n_pairs: int, rng: np.random.Generator) -> float:
    """Time both verifiers on the same drawn pairs; return the pairs-per-second ratio."""
    ours(corpus[0]["output"], corpus[0]["reference"])  # imports and regexes, for both
    math_verify_alone(corpus[0]["output"], corpus[0]["reference"])
    clear_caches()
    cold_ours, _ = judge(corpus, ours)
    cold_theirs, _ = judge(corpus, math_verify_alone)
    print(
        f"cold pass over the {len(corpus)} distinct corpus pairs (our caches cleared): "
        f"ours {len(corpus) / cold_ours:,.0f} pairs/s, math-verify "
        f"{len(corpus) / cold_theirs:,.0f} pairs/s"
    )
    drawn = [corpus[i] for i in rng.integers(0, len(corpus), size=n_pairs)]
    clear_caches()
    seconds_ours, verdicts_ours = judge(drawn, ours)
    seconds_theirs, verdicts_theirs = judge(drawn, math_verify_alone)
    expected = [bool(p["expected"]) for p in drawn]
    rate_ours, rate_theirs = n_pairs / seconds_ours, n_pairs / seconds_theirs
    agreement = np.mean([a == b for a, b in zip(verdicts_ours, verdicts_theirs, strict=True)])
    right_ours = np.mean([a == e for a, e in zip(verdicts_ours, expected, strict=True)])
    right_theirs = np.mean([a == e for a, e in zip(verdicts_theirs, expected, strict=True)])
    print(
        f"{n_pairs:,} drawn pairs: math verifier {rate_ours:,.0f} pairs/s "
        f"({seconds_ours:.1f} s, {right_ours:.1%} correct); math-verify alone "
        f"{rate_theirs:,.0f} pairs/s ({seconds_theirs:.1f} s, {right_theirs:.1%} correct)"
    )
    print(f"agreement with math-verify: {agreement:.1%}")
    return rate_ours / rate_theirs


def load_today() -> types.ModuleType:
    """Today's ``strategies/verify/normalize.py`` (commit ``TODAY``) as a module."""
    source = subprocess.run(
        ["git", "show", f"{TODAY}:strategies/verify/normalize.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("normalize_today")
    exec(compile(source, "normalize_today.py", "exec"), module.__dict__)  # noqa: S102
    return module


def vote_today(
    answers: Sequence[str | None], canonical: Callable[[str | None], str | None]
) -> str | None:
    """Today's ``majority_vote``: an exact-key dict over ``canonical_answer``; the winner."""
    spelling: dict[str, str] = {}
    counts: dict[str, int] = {}
    for answer in answers:
        key = canonical(answer)
        if key is None or answer is None:
            continue
        if key not in spelling:
            spelling[key] = answer
            counts[key] = 0
        counts[key] += 1
    if not counts:
        return None
    top = max(counts.values())
    return spelling[next(key for key, count in counts.items() if count == top)]


def problem_pool(rng: np.random.Generator, index: int) -> tuple[list[str | None], set[str]]:
    """1,000 sampled answers to one synthetic problem (spellings of the right answer,
    plausible wrong answers, some in two spellings, a long tail, and ``None``) and the
    right answer's spellings."""
    kind = index % 10
    n = int(rng.integers(10, 90))
    if kind < 5:  # GSM8K-style integers and money
        gold = [f"{n * 7}", f"{n * 7}.0", f"${n * 7}", f"{n * 7}.00"]
        wrong = [[f"{n * 7 + d}"] for d in (1, -1, 7, -7, 10)] + [[f"{n * 14}", f"{n * 14}.0"]]
        tail = [f"{int(v)}" for v in rng.integers(1, 5000, size=40)]
    elif kind == 5:  # fractions
        gold = [
            f"\\frac{{{n}}}{{{n + 3}}}",
            f"\\dfrac{{{n}}}{{{n + 3}}}",
            f"{n}/{n + 3}",
            f"\\frac{{{2 * n}}}{{{2 * n + 6}}}",
        ]
        wrong = [[f"\\frac{{{n + d}}}{{{n + 3}}}", f"{n + d}/{n + 3}"] for d in (1, 2, -1)]
        tail = [f"\\frac{{{int(a)}}}{{{int(b)}}}" for a, b in rng.integers(1, 99, size=(30, 2))]
    elif kind == 6:  # surds and pi
        gold = [f"{n}\\sqrt{{3}}", f"{n}\\sqrt3", f"{n} \\sqrt{{3}}", f"\\sqrt{{{3 * n * n}}}"]
        wrong = [
            [f"{n}\\sqrt{{2}}"],
            [f"{n + 1}\\sqrt{{3}}"],
            [f"{n}\\pi", f"{n} \\pi"],
            [f"\\frac{{{n}\\sqrt{{3}}}}{{2}}"],
        ]
        tail = [f"{int(a)}\\sqrt{{{int(b)}}}" for a, b in rng.integers(2, 40, size=(25, 2))]
    elif kind == 7:  # polynomials
        gold = [f"x^2+{n}x", f"x^2 + {n}x", f"x(x+{n})", f"{n}x+x^2"]
        wrong = [[f"x^2-{n}x"], [f"x^2+{n + 1}x"], [f"x^2+{n}"], [f"(x+{n})^2"]]
        tail = [f"x^2+{int(a)}x+{int(b)}" for a, b in rng.integers(1, 60, size=(20, 2))]
    elif kind == 8:  # points, intervals, sets
        gold = [
            f"({n}, {n + 2})",
            f"({n},{n + 2})",
            f"x = {n}, y = {n + 2}",
            f"\\left({n}, {n + 2}\\right)",
        ]
        wrong = [
            [f"({n + 2}, {n})"],
            [f"[{n}, {n + 2}]"],
            [f"\\{{{n}, {n + 2}\\}}", f"{n}, {n + 2}"],
            [f"({n}, {n + 3})"],
        ]
        tail = [f"({int(a)}, {int(b)})" for a, b in rng.integers(-20, 60, size=(30, 2))]
    else:  # letters and yes/no
        gold = ["B", "(B)", "B", "\\text{B}"]
        wrong = [["A"], ["C", "(C)"], ["D"], ["E"]]
        tail = ["yes", "no", "A", "F"]
    weights = rng.dirichlet(np.ones(len(wrong))) * 0.35
    answers: list[str | None] = []
    for _ in range(SAMPLES):
        roll = rng.random()
        if roll < 0.45:
            answers.append(gold[int(rng.integers(0, len(gold)))])
        elif roll < 0.80:
            group = wrong[int(rng.choice(len(wrong), p=weights / weights.sum()))]
            answers.append(group[int(rng.integers(0, len(group)))])
        elif roll < 0.92:
            answers.append(tail[int(rng.integers(0, len(tail)))])
        else:
            answers.append(None)
    return answers, set(gold)


def _is_right(winner: str | None, gold: set[str]) -> bool:
    """The winner is a spelling of the right answer, or equivalent to one (by §17)."""
    return winner is not None and (winner in gold or any(is_equivalent(winner, g) for g in gold))


def section_clustering(n_problems: int, rng: np.random.Generator) -> None:
    """Time today's exact-key vote and the new equivalence vote on the same pools."""
    today = load_today()
    pools, golds = zip(*(problem_pool(rng, i) for i in range(n_problems)), strict=True)
    majority_vote(["1", "x+1", "(1, 2)"])  # imports, math-verify's regexes
    vote_today(["1"], today.canonical_answer)
    clear_caches()
    started = time.perf_counter()
    winners_today = [vote_today(pool, today.canonical_answer) for pool in pools]
    seconds_today = time.perf_counter() - started
    started = time.perf_counter()
    winners_new = [majority_vote(pool).answer for pool in pools]
    seconds_new = time.perf_counter() - started
    right_today = sum(_is_right(w, gold) for w, gold in zip(winners_today, golds, strict=True))
    right_new = sum(_is_right(w, gold) for w, gold in zip(winners_new, golds, strict=True))
    per_today = 1000 * seconds_today / n_problems
    per_new = 1000 * seconds_new / n_problems
    print(
        f"majority vote over {SAMPLES:,} samples x {n_problems} problems: today "
        f"{per_today:.2f} ms/problem, new {per_new:.2f} ms/problem; the winner is the right "
        f"answer in {right_today} (today) and {right_new} (new) problems"
    )
    print(f"clustering time new/today: {seconds_new / seconds_today:.2f} (bound 2.00)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="pairs drawn from the corpus")
    parser.add_argument("--problems", type=int, default=200, help="voting problems of 1,000")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    rng = np.random.default_rng(args.seed)
    print("== 1. judging (corpus pairs) ==")
    ratio = section_judging(corpus, args.pairs, rng)
    print("== 2. clustering (majority voting) ==")
    section_clustering(args.problems, rng)
    print(f"math verifier/math-verify pairs-per-second ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
