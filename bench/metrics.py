"""Bench: every metric and selector, vectorised vs a plain Python-loop reference.

Run: .venv/bin/python bench/metrics.py

Seeded synthetic data: 500 problems x 1,000 samples (answer class ids, -1 = None, gold = 0;
correctness; verifier scores rounded to 0.01 so ties occur, and for the selectors 2% of
them missing (NaN); mean log-probs), a (500, 32, 64) embedding batch and 50 prompts x 20
texts for the text metrics. The vectorised metrics and the vectorised selectors
(``strategies.select.batch``) are timed as the median of 5 repeats, except RPC (one
Weibull-mixture fit per problem, the same code as ``select_rpc``), which runs once and is
reported separately. The metric loop reference (written here, deliberately straightforward)
runs once (about 40 s) on all problems by default, or on the first SUBSET problems scaled
linearly. The selector loop runs the library's per-problem selectors (``select_<name>`` +
``selection_credit`` on ``Candidate`` lists) once on the first SELECT_SUBSET problems and
is scaled linearly to all 500 (the full run would take about 2-3 minutes, RPC included).
Every loop result is checked against the vectorised one on the same problems (selectors:
index and credit exactly equal).
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

# As in the app (webapp/settings.py): OpenBLAS threads beside one another on a small
# machine make scipy's optimiser (RPC's mixture fit) many times slower. Set before numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strategies.metrics.coverage import extrapolate, fit_power_law, log_grid  # noqa: E402
from strategies.metrics.diversity import (  # noqa: E402
    answer_entropy_array,
    distinct_n_scores,
    pairwise_embedding_distance,
    unique_answers_array,
)
from strategies.metrics.majk import majority_at_k_array  # noqa: E402
from strategies.metrics.passk import pass_at_k_array, pass_hat_k_array  # noqa: E402
from strategies.metrics.selfbleu import self_bleu  # noqa: E402
from strategies.metrics.selk import (  # noqa: E402
    best_of_n_curve,
    first_at_k,
    majority_vote_accuracy,
    oracle_at_k,
    oracle_gap,
)
from strategies.metrics.stats import bootstrap_ci, holm_bonferroni, paired_comparison  # noqa: E402
from strategies.select import batch  # noqa: E402
from strategies.select.adaptive import select_adaptive_consistency  # noqa: E402
from strategies.select.base import Selection, selection_credit  # noqa: E402
from strategies.select.best_of_majority import select_best_of_majority  # noqa: E402
from strategies.select.best_of_n import select_best_of_n  # noqa: E402
from strategies.select.first import select_first_candidate  # noqa: E402
from strategies.select.majority import select_majority  # noqa: E402
from strategies.select.mbr import MBRConfig, select_mbr  # noqa: E402
from strategies.select.oracle import select_oracle  # noqa: E402
from strategies.select.perplexity import select_lowest_perplexity  # noqa: E402
from strategies.select.random_choice import select_random  # noqa: E402
from strategies.select.rpc import select_rpc  # noqa: E402
from strategies.select.weighted import select_weighted_majority  # noqa: E402
from strategies.types import Candidate  # noqa: E402

P, N, SEED = 500, 1000, 0
MAJ_KS = (1, 2, 4, 8, 16, 32, 1000)  # maj@k: the exact DP costs ~k^3; 1000 = the whole pool
EMB_N, EMB_D, TEXT_PROMPTS, TEXT_N = 32, 64, 50, 20
B = 10_000  # bootstrap / sign-flip resamples
# Problems (and, in proportion, text prompts) the Python loop runs on: all of them, as the
# full loop takes about a minute; lower it to time a subset and scale linearly.
SUBSET = P
# Problems the per-problem selector loop runs on (scaled linearly to P): all 500 would take
# about 2-3 minutes (RPC's Weibull fits alone about 30-60 s).
SELECT_SUBSET = 100
MISSING_SCORES = 0.02  # fraction of verifier scores the selectors see as missing (NaN)
REPEATS = 5


def make_data() -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    rate = rng.beta(0.5, 1.5, size=P)  # heavy-tailed difficulty, some problems near 0
    correct = rng.random((P, N)) < rate[:, None]
    distractor = rng.choice(np.arange(1, 10), p=np.arange(9, 0, -1) / 45, size=(P, N))
    wrong = np.where(rng.random((P, N)) < 0.15, -1, distractor)
    ids = np.where(correct, 0, wrong).astype(np.int64)
    scores = np.round(rng.normal(np.where(correct, 0.6, 0.45), 0.15), 2)
    logprobs = rng.normal(np.where(correct, -0.3, -0.5), 0.2)
    embeddings = rng.normal(size=(P, EMB_N, EMB_D)) + rng.normal(size=(P, 1, EMB_D))
    vocab = [f"w{i}" for i in range(300)]
    zipf = 1.0 / np.arange(1, 301)
    words = rng.choice(vocab, p=zipf / zipf.sum(), size=(TEXT_PROMPTS, TEXT_N, 30))
    texts = [[" ".join(row) for row in prompt] for prompt in words]
    missing = np.random.default_rng(SEED + 1).random((P, N)) < MISSING_SCORES  # own stream
    return {
        "sel_scores": np.where(missing, np.nan, scores),
        "ids": ids,
        "gold": np.zeros(P, dtype=np.int64),
        "correct": correct,
        "scores": scores,
        "logprobs": logprobs,
        "embeddings": embeddings,
        "texts": texts,
    }


def vectorised(d: dict[str, Any]) -> dict[str, Any]:
    """Every metric, with the library's vectorised functions."""
    ids, gold, correct = d["ids"], d["gold"], d["correct"]
    p, n = ids.shape
    ns, cs = np.full(p, n), correct.sum(axis=1)
    grid = log_grid(n)
    out: dict[str, Any] = {
        "pass_at_k": {k: pass_at_k_array(ns, cs, k) for k in grid},
        "pass_hat_k": {k: pass_hat_k_array(ns, cs, k) for k in grid},
        "oracle_at_k": {k: oracle_at_k(correct, k) for k in grid},
        "first_at_k": first_at_k(correct, 1),
        "best_at_k": best_of_n_curve(d["scores"], correct, grid),
        "maj_at_k": {k: majority_at_k_array(ids, gold, k) for k in MAJ_KS if k <= n},
        "weighted_maj": majority_vote_accuracy(ids, gold, np.exp(d["logprobs"])),
        "entropy": answer_entropy_array(ids, include_none=True),
        "unique": unique_answers_array(ids)[0],
        "embedding": pairwise_embedding_distance(d["embeddings"]),
        "distinct": [distinct_n_scores(texts) for texts in d["texts"]],
        "self_bleu": [self_bleu(texts).self_bleu for texts in d["texts"]],
    }
    curve = {k: float(v.mean()) for k, v in out["pass_at_k"].items()}
    fit = fit_power_law(list(curve), list(curve.values()))
    out["fit"] = (fit.a, fit.b, fit.r2) if fit else None
    out["forecast"] = extrapolate(fit, 10.0 * n) if fit else math.nan
    out["gap"] = oracle_gap(out["pass_at_k"][n], out["best_at_k"][n])
    for name in ("first_at_k", "weighted_maj"):
        ci = bootstrap_ci(out[name], n_resamples=B)
        out[f"ci_{name}"] = (ci.mean, ci.low, ci.high)
    ci = bootstrap_ci(out["maj_at_k"][max(out["maj_at_k"])], n_resamples=B)
    out["ci_maj"] = (ci.mean, ci.low, ci.high)
    comparisons = [
        paired_comparison(out["best_at_k"][n], out["weighted_maj"], n_resamples=B),
        paired_comparison(
            out["weighted_maj"], out["maj_at_k"][max(out["maj_at_k"])], n_resamples=B
        ),
    ]
    out["paired"] = [(c.mean_diff, c.ci_low, c.ci_high, c.p_value_sign_flip) for c in comparisons]
    out["holm"] = holm_bonferroni([c.p_value_sign_flip for c in comparisons]).tolist()
    return out


# --- the Python-loop reference ---------------------------------------------------------


def loop_pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1 - k / i
    return 1 - prod


def loop_pass_hat_k(n: int, c: int, k: int) -> float:
    prod = 1.0
    for i in range(k):
        prod *= max(c - i, 0) / (n - i)
    return prod


def loop_maj_at_k(answers: list[int], gold: int, k: int) -> float:
    if k == len(answers):  # one subset, the whole pool (the vectorised path does the same)
        return loop_vote(answers, gold, [1.0] * len(answers))
    counts: dict[int, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    c_star, none = counts.pop(gold, 0), counts.pop(-1, 0)
    n, total = len(answers), Fraction(0)
    for j in range(1, min(c_star, k) + 1):
        table = {(0, 0): 1}  # (items taken, classes at exactly j) -> ways
        for c, cap, counts_tie in [(none, k, False)] + [(c, j, True) for c in counts.values()]:
            new: dict[tuple[int, int], int] = {}
            for (t, m), ways in table.items():
                for s in range(min(c, cap, k - j - t) + 1):
                    key = (t + s, m + (counts_tie and s == j))
                    new[key] = new.get(key, 0) + ways * math.comb(c, s)
            table = new
        for (t, m), ways in table.items():
            if t == k - j:
                total += Fraction(math.comb(c_star, j) * ways, m + 1)
    return float(total / math.comb(n, k))


def loop_best_at_k(scores: list[float], right: list[bool], k: int) -> float:
    pairs = sorted(zip(scores, right, strict=True))
    n, value, lo = len(pairs), 0.0, 0
    while lo < n:
        hi = lo
        while hi < n and pairs[hi][0] == pairs[lo][0]:
            hi += 1
        hits = sum(r for _, r in pairs[lo:hi])
        value += (math.comb(hi, k) - math.comb(lo, k)) / math.comb(n, k) * hits / (hi - lo)
        lo = hi
    return value


def loop_vote(answers: list[int], gold: int, weights: list[float]) -> float:
    totals: dict[int, float] = {}
    for a, w in zip(answers, weights, strict=True):
        if a >= 0:
            totals[a] = totals.get(a, 0.0) + w
    if not totals:
        return 0.0
    top = max(totals.values())
    tied = [a for a, w in totals.items() if w == top]
    return 1 / len(tied) if gold in tied else 0.0


def loop_entropy(answers: list[int]) -> float:
    counts = Counter(answers)
    return -sum(c / len(answers) * math.log(c / len(answers)) for c in counts.values())


def loop_embedding(vectors: list[list[float]]) -> float:
    unit = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in vectors]
    dists = [
        1 - min(max(sum(a * b for a, b in zip(unit[i], unit[j], strict=True)), 0.0), 1.0)
        for i in range(len(unit))
        for j in range(i + 1, len(unit))
    ]
    return sum(dists) / len(dists)


def loop_distinct(texts: list[str], n: int) -> float:
    grams = [
        tuple(w[i : i + n])
        for t in texts
        for w in [t.lower().split()]
        for i in range(len(w) - n + 1)
    ]
    return len(set(grams)) / len(grams)


def loop_bleu(hyp: list[str], refs: list[list[str]]) -> float:
    logs = []
    for n in range(1, 5):
        grams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
        best: Counter[tuple[str, ...]] = Counter()
        for ref in refs:
            best |= Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        clipped = sum(min(c, best[g]) for g, c in grams.items())
        if n == 1 and clipped == 0:
            return 0.0
        logs.append(math.log((clipped or 0.1) / max(1, sum(grams.values()))))
    r = min((abs(len(x) - len(hyp)), len(x)) for x in refs)[1]
    penalty = 1.0 if len(hyp) > r else math.exp(1 - r / len(hyp))
    return penalty * math.exp(sum(logs) / 4)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    return ordered[low] + (ordered[min(low + 1, len(ordered) - 1)] - ordered[low]) * (pos - low)


def loop_ci(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    rng, n = random.Random(seed), len(values)
    means = [sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(B)]
    return sum(values) / n, quantile(means, 0.025), quantile(means, 0.975)


def loop_paired(a: list[float], b: list[float]) -> tuple[float, float, float, float]:
    diff = [x - y for x, y in zip(a, b, strict=True)]
    mean, low, high = loop_ci(diff)
    rng, observed, hits = random.Random(1), abs(mean), 0
    for _ in range(B):
        flipped = sum(x if rng.random() < 0.5 else -x for x in diff) / len(diff)
        hits += abs(flipped) >= observed - 1e-12
    return mean, low, high, (1 + hits) / (1 + B)


def loop_holm(p_values: list[float]) -> list[float]:
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def python_loop(d: dict[str, Any]) -> dict[str, Any]:
    """The same metrics with plain Python loops over problems and samples."""
    ids, correct = d["ids"].tolist(), d["correct"].tolist()
    scores, weights = d["scores"].tolist(), np.exp(d["logprobs"]).tolist()
    gold = d["gold"].tolist()
    p, n = len(ids), len(ids[0])
    grid = log_grid(n)
    cs = [sum(row) for row in correct]
    out: dict[str, Any] = {
        "pass_at_k": {k: [loop_pass_at_k(n, c, k) for c in cs] for k in grid},
        "pass_hat_k": {k: [loop_pass_hat_k(n, c, k) for c in cs] for k in grid},
        "first_at_k": [c / n for c in cs],
        "best_at_k": {
            k: [loop_best_at_k(scores[i], correct[i], k) for i in range(p)] for k in grid
        },
        "maj_at_k": {k: [loop_maj_at_k(ids[i], gold[i], k) for i in range(p)] for k in MAJ_KS},
        "weighted_maj": [loop_vote(ids[i], gold[i], weights[i]) for i in range(p)],
        "entropy": [loop_entropy(row) for row in ids],
        "unique": [len({a for a in row if a >= 0}) for row in ids],
        "embedding": [loop_embedding(e) for e in d["embeddings"].tolist()],
        "distinct": [{m: loop_distinct(t, m) for m in (1, 2, 3)} for t in d["texts"]],
        "self_bleu": [
            statistics.mean(
                loop_bleu(t.split(), [r.split() for j, r in enumerate(texts) if j != i])
                for i, t in enumerate(texts)
            )
            for texts in d["texts"]
        ],
    }
    out["oracle_at_k"] = out["pass_at_k"]
    top_maj = out["maj_at_k"][max(MAJ_KS)]
    out["ci_first_at_k"] = loop_ci(out["first_at_k"])
    out["ci_weighted_maj"] = loop_ci(out["weighted_maj"])
    out["ci_maj"] = loop_ci(top_maj)
    out["paired"] = [
        loop_paired(out["best_at_k"][n], out["weighted_maj"]),
        loop_paired(out["weighted_maj"], top_maj),
    ]
    out["holm"] = loop_holm([c[3] for c in out["paired"]])
    return out


# --- selectors: vectorised fast paths vs the per-problem library selectors ---------------

SELECTORS = (
    "first",
    "random",
    "majority",
    "weighted_majority",
    "lowest_perplexity",
    "best_of_n",
    "best_of_majority",
    "oracle",
    "adaptive_consistency",
    "mbr",
    "rpc",
)
MBR_ANSWER = MBRConfig(similarity="answer", max_references=None)  # what batch_select_mbr does


def batch_selectors(d: dict[str, Any]) -> dict[str, Callable[[], batch.BatchSelection]]:
    """Every selector, vectorised over all problems (strategies.select.batch), as calls.

    RPC is vectorised except its Weibull-mixture fit, which runs once per problem.
    """
    ids, correct, logprobs, scores = d["ids"], d["correct"], d["logprobs"], d["sel_scores"]
    return {
        "first": lambda: batch.batch_select_first(correct),
        "random": lambda: batch.batch_select_random(correct, seed=SEED),
        "majority": lambda: batch.batch_select_majority(ids, correct),
        "weighted_majority": lambda: batch.batch_select_weighted_majority(ids, correct, logprobs),
        "lowest_perplexity": lambda: batch.batch_select_lowest_perplexity(ids, correct, logprobs),
        "best_of_n": lambda: batch.batch_select_best_of_n(ids, correct, scores, logprobs),
        "best_of_majority": lambda: batch.batch_select_best_of_majority(
            ids, correct, scores, logprobs
        ),
        "oracle": lambda: batch.batch_select_oracle(correct),
        "adaptive_consistency": lambda: batch.batch_select_adaptive_consistency(ids, correct),
        "mbr": lambda: batch.batch_select_mbr(ids, correct),
        "rpc": lambda: batch.batch_select_rpc(ids, correct, logprobs),
    }


def timed_selectors(
    d: dict[str, Any],
) -> tuple[dict[str, float], dict[str, batch.BatchSelection]]:
    """Median seconds of each vectorised selector (RPC: one run) and its result."""
    seconds, results = {}, {}
    for name, call in batch_selectors(d).items():
        times = []
        for _ in range(1 if name == "rpc" else REPEATS):
            start = time.perf_counter()
            results[name] = call()
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
    return seconds, results


def loop_selectors(
    d: dict[str, Any], problems: int
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
    """The library's per-problem selectors on ``Candidate`` lists: (index, credit) and seconds.

    Building the candidates is timed too, and shared out evenly between the selectors.
    """
    rng = np.random.default_rng(SEED)  # shared in problem order, as batch_select_random
    selectors: dict[str, Callable[[list[Candidate]], Selection]] = {
        "first": select_first_candidate,
        "random": lambda pool: select_random(pool, rng=rng),
        "majority": select_majority,
        "weighted_majority": select_weighted_majority,
        "lowest_perplexity": select_lowest_perplexity,
        "best_of_n": select_best_of_n,
        "best_of_majority": select_best_of_majority,
        "oracle": select_oracle,
        "adaptive_consistency": select_adaptive_consistency,
        "mbr": lambda pool: select_mbr(pool, MBR_ANSWER),
        "rpc": select_rpc,
    }
    results: dict[str, list[tuple[int, float]]] = {name: [] for name in selectors}
    seconds = dict.fromkeys(selectors, 0.0)
    for i in range(problems):
        start = time.perf_counter()
        pool = [
            Candidate(
                text=f"sample {j}",
                answer=None if a < 0 else str(a),
                is_correct=right,
                score=None if math.isnan(score) else score,
                generated_tokens=1,
                logprob_sum=logprob,
            )
            for j, (a, right, score, logprob) in enumerate(
                zip(
                    d["ids"][i].tolist(),
                    d["correct"][i].tolist(),
                    d["sel_scores"][i].tolist(),
                    d["logprobs"][i].tolist(),
                    strict=True,
                )
            )
        ]
        build = (time.perf_counter() - start) / len(selectors)
        for name, select in selectors.items():
            start = time.perf_counter()
            selection = select(pool)
            credit = selection_credit(selection, pool)
            seconds[name] += time.perf_counter() - start + build
            index = -1 if selection.index is None else selection.index
            results[name].append((index, float(credit if credit is not None else math.nan)))
    return results, seconds


def check_selectors(
    fast: dict[str, batch.BatchSelection], slow: dict[str, list[tuple[int, float]]]
) -> list[str]:
    """Names of the selectors whose index or credit differ on any looped problem."""
    mismatches = []
    for name, pairs in slow.items():
        index = fast[name].index[: len(pairs)].tolist()
        credit = fast[name].credit[: len(pairs)].tolist()
        if list(zip(index, credit, strict=True)) != pairs:
            mismatches.append(name)
    return mismatches


def subset(d: dict[str, Any], problems: int, prompts: int) -> dict[str, Any]:
    small = {k: v[:problems] for k, v in d.items() if k != "texts"}
    small["texts"] = d["texts"][:prompts]
    return small


def check(fast: dict[str, Any], slow: dict[str, Any]) -> list[str]:
    """Exact parts must agree to 1e-9; bootstrap and sign-flip parts within Monte Carlo error."""
    problems: list[str] = []

    def close(name: str, a: Any, b: Any, tol: float) -> None:
        if not np.allclose(np.asarray(a, float), np.asarray(b, float), atol=tol, rtol=0):
            problems.append(name)

    for name in ("pass_at_k", "pass_hat_k", "oracle_at_k", "best_at_k", "maj_at_k"):
        for k in slow[name]:
            close(f"{name}@{k}", fast[name][k], slow[name][k], 1e-9)
    for name in ("first_at_k", "weighted_maj", "entropy", "unique", "embedding", "self_bleu"):
        close(name, fast[name], slow[name], 1e-9)
    for a, b in zip(fast["distinct"], slow["distinct"], strict=True):
        close("distinct", list(a.values()), list(b.values()), 1e-12)
    for name in ("ci_first_at_k", "ci_weighted_maj", "ci_maj"):
        close(name, fast[name], slow[name], 0.015)
    for a, b in zip(fast["paired"], slow["paired"], strict=True):
        close("paired", a[:3], b[:3], 0.015)
        close("sign-flip p", a[3], b[3], 0.02)
    close("holm", fast["holm"], slow["holm"], 0.04)
    return problems


def timed(
    function: Callable[[dict[str, Any]], dict[str, Any]], data: dict[str, Any], repeats: int
) -> tuple[float, dict[str, Any]]:
    times, result = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    data = make_data()
    fast_time, fast = timed(vectorised, data, REPEATS)
    prompts = TEXT_PROMPTS * SUBSET // P
    small = subset(data, SUBSET, prompts)
    slow_time, slow = timed(python_loop, small, 1)
    fast_small = fast if SUBSET == P else timed(vectorised, small, 1)[1]
    scaled = slow_time * P / SUBSET
    mismatches = check(fast_small, slow)
    print(
        f"data: {P} problems x {N} samples, embeddings {P}x{EMB_N}x{EMB_D}, "
        f"texts {TEXT_PROMPTS}x{TEXT_N}; maj@k for k in {MAJ_KS}; bootstrap B={B}"
    )
    print(
        f"coverage fit (a, b, R2) = {tuple(round(v, 4) for v in fast['fit'])}, "
        f"coverage@{N} = {fast['pass_at_k'][N].mean():.4f}, forecast @{10 * N} = "
        f"{fast['forecast']:.4f}, oracle gap (best-of-n@{N}) = {fast['gap']:.4f}"
    )
    print("maj@k: " + ", ".join(f"{k}: {v.mean():.4f}" for k, v in fast["maj_at_k"].items()))
    print(
        f"pass@1 CI {tuple(round(v, 4) for v in fast['ci_first_at_k'])}, weighted maj@N CI "
        f"{tuple(round(v, 4) for v in fast['ci_weighted_maj'])}, paired best-of-n vs weighted "
        f"(diff, low, high, p) {tuple(round(v, 4) for v in fast['paired'][0])}"
    )
    print(f"vectorised, full size: {fast_time:.3f} s (median of {REPEATS})")
    if SUBSET == P:
        print(f"python loop, full size: {slow_time:.2f} s (1 run, all problems and prompts)")
    else:
        print(
            f"python loop: {slow_time:.2f} s on {SUBSET} of {P} problems and {prompts} of "
            f"{TEXT_PROMPTS} prompts (1 run), scaled x{P / SUBSET:g} (linear) to {scaled:.1f} s"
        )
    print(
        "results agree (exact parts to 1e-9, bootstrap/sign-flip within MC error): "
        + ("yes" if not mismatches else f"NO: {mismatches}")
    )
    sel_time, sel_fast = timed_selectors(data)
    with np.errstate(all="ignore"):  # RPC's Weibull fit overflows harmlessly on some problems
        sel_slow, sel_loop = loop_selectors(data, SELECT_SUBSET)
    sel_mismatches = check_selectors(sel_fast, sel_slow)
    per = P / SELECT_SUBSET
    print(
        "selector mean credit: "
        + ", ".join(f"{name} {sel_fast[name].credit.mean():.4f}" for name in SELECTORS)
    )
    print(
        f"selectors vectorised, full size (ms; median of {REPEATS}, RPC 1 run): "
        + ", ".join(f"{name} {1000 * sel_time[name]:.1f}" for name in SELECTORS)
    )
    print(
        f"selectors python loop (select_<name> + selection_credit): {sum(sel_loop.values()):.2f}"
        f" s on {SELECT_SUBSET} of {P} problems (1 run), scaled x{per:g} (linear) to "
        f"{sum(sel_loop.values()) * per:.1f} s; per selector (s, scaled): "
        + ", ".join(f"{name} {sel_loop[name] * per:.1f}" for name in SELECTORS)
    )
    print(
        f"selectors agree (index and credit exactly, {SELECT_SUBSET} problems): "
        + ("yes" if not sel_mismatches else f"NO: {sel_mismatches}")
    )
    rpc_fast, rpc_slow = sel_time["rpc"], sel_loop["rpc"] * per
    fast_no_rpc = fast_time + sum(sel_time.values()) - rpc_fast
    slow_all = scaled + sum(sel_loop.values()) * per
    print(
        f"vectorised total (metrics + selectors), full size: {fast_no_rpc:.3f} s without RPC, "
        f"{fast_no_rpc + rpc_fast:.3f} s with RPC (RPC alone {rpc_fast:.2f} s: one Weibull fit "
        f"per problem)"
    )
    print(
        f"python-loop total (metrics + selectors, scaled): {slow_all - rpc_slow:.1f} s without "
        f"RPC, {slow_all:.1f} s with RPC; speed ratio without RPC: "
        f"{(slow_all - rpc_slow) / fast_no_rpc:.2f}, metrics only: {scaled / fast_time:.2f}"
    )
    print(f"metrics vectorised/python-loop speed ratio: {slow_all / (fast_no_rpc + rpc_fast):.2f}")


if __name__ == "__main__":
    main()
