"""Read-only views of an experiment's results, shaped as plain data for templates."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.http import Http404
from django.utils.http import urlencode

from strategies.verify.structure import canonical_answer
from webapp.datasets.models import Problem
from webapp.experiments.code_verification import matrix_view
from webapp.experiments.models import (
    Comparison,
    Experiment,
    Metric,
    PassMatrix,
    ProblemResult,
    Sample,
    Strategy,
    Verdict,
)
from webapp.experiments.verification import CODE_VERIFIERS, verifier_for


@dataclass(frozen=True)
class Figure:
    value: float | None
    low: float | None = None
    high: float | None = None


def metric_figures(experiment: Experiment,
             labelled: bool = False) -> dict[int, dict[tuple[str, int], Figure]]:
    """Each strategy's figures by (name, k): the automatic ones, or those with the team's
    human labels."""
    out: dict[int, dict[tuple[str, int], Figure]] = defaultdict(dict)
    for m in Metric.objects.filter(strategy__experiment=experiment, labelled=labelled):
        out[m.strategy_id][(m.name, m.k)] = Figure(m.value, m.ci_low, m.ci_high)
    return out


def summary_rows(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per strategy: pass@k and sel@k per k (None where k > n), accuracy with
    its confidence interval, coverage forecast, diversity and cost."""
    strategies = list(experiment.strategies.select_related("pool"))
    metrics = metric_figures(experiment)
    shared: dict[int, int] = defaultdict(int)
    for s in strategies:
        shared[s.pool_id] += 1
    rows = []
    for s in strategies:
        values = metrics.get(s.pk, {})

        def get(name: str, k: int = 0, values: dict[tuple[str, int], Figure] = values) -> Figure:
            return values.get((name, k), Figure(None))

        forecast = next(((k, f) for (name, k), f in values.items()
                         if name == "coverage_forecast"), None)
        rows.append(
            {
                "strategy": s,
                "pass_at_k": [get("pass_at_k", k) if k <= s.n else None
                              for k in experiment.k_values],
                "sel_at_k": [get("sel_at_k", k) if k <= s.n else None
                             for k in experiment.k_values],
                "pass_hat_k": [get("pass_hat_k", k) if k <= s.n else None
                               for k in experiment.k_values],
                "accuracy": get("selected_accuracy"),
                "oracle_gap": get("oracle_gap"),
                "forecast": forecast,
                "fit_b": get("coverage_fit_b"),
                "fit_r2": get("coverage_fit_r2"),
                "distinct": [get("distinct_n", n) for n in (1, 2, 3)],
                "self_bleu": get("self_bleu_diversity"),
                "embedding": get("embedding_distance"),
                "embedded_problems": get("embedding_problems"),
                "texts_read": get("diversity_subsample"),
                "unique": get("unique_answers"),
                "entropy": get("answer_entropy"),
                "mean_tokens": get("mean_generated_tokens"),
                "prompt_tokens": get("mean_prompt_tokens"),
                "tokens": get("generated_tokens"),
                "seconds": get("generation_seconds"),
                "tokens_per_second": get("tokens_per_second"),
                "adaptive": get("adaptive_samples"),
                "adaptive_saved": get("adaptive_saved_fraction"),
                "shares_pool": shared[s.pool_id] > 1,
            }
        )
    return rows


def chart_data(experiment: Experiment, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Plain data for the pass@k / sel@k chart (drawn by static/js/charts.js)."""
    series = []
    for row in rows:
        for metric in ("pass_at_k", "sel_at_k"):
            points = [
                {"k": k, "value": f.value}
                for k, f in zip(experiment.k_values, row[metric], strict=True)
                if f is not None and f.value is not None
            ]
            if points:
                series.append({
                    "label": f"{row['strategy'].label} · {metric.replace('_at_', '@')}",
                    "metric": metric,
                    "points": points,
                })
    return {"k_values": list(experiment.k_values), "series": series}


def comparisons(experiment: Experiment, labelled: bool = False) -> list[Comparison]:
    """Each strategy against the first one on the same problems (paired, per problem), as
    the metrics stage stored them, or with the team's labels as their recompute did. None
    stored means none to show (a single strategy, too few judged problems): a view never
    resamples."""
    return list(Comparison.objects.filter(strategy__experiment=experiment, labelled=labelled)
                .select_related("strategy", "baseline"))


def pool_names(experiment: Experiment) -> dict[int, str]:
    """A short name per pool of the experiment ("A", "B", ...) in strategy order; a
    candidate is called by its pool's name and index ("A#3")."""
    names: dict[int, str] = {}
    for pool_id in experiment.strategies.values_list("pool_id", flat=True):
        if pool_id not in names:
            i = len(names)
            names[pool_id] = chr(ord("A") + i) if i < 26 else f"P{i + 1}"
    return names


#: Outputs longer than this collapse on the problem page behind their first lines.
LONG_OUTPUT_CHARS = 1200
LONG_OUTPUT_LINES = 24
PREVIEW_LINES = 10


def _preview(text: str) -> str | None:
    """The first lines of a long output (shown collapsed), or None for a short one."""
    lines = text.splitlines()
    if len(text) <= LONG_OUTPUT_CHARS and len(lines) <= LONG_OUTPUT_LINES:
        return None
    return "\n".join(lines[:PREVIEW_LINES])[: LONG_OUTPUT_CHARS // 2]


def _pool_title(strategies: list[Strategy]) -> str:
    """What the pool's samples are, from its first strategy's label without the selector."""
    label = strategies[0].label
    return label.rsplit(" + ", 1)[0] if " + " in label else label


def _cluster_key(answer: str | None, is_code: bool) -> str | None:
    """Answers that vote alike share a key: canonical for text (``canonical_answer``, as
    majority vote groups them), the normalised program itself for code."""
    if answer is None or not answer.strip():
        return None
    return answer if is_code else canonical_answer(answer)


def _test_views(strategies: list[Strategy], problem: Problem) -> list[dict[str, Any]]:
    """The pass matrices the pool's CodeT/B4 strategies read, one per (test pool, test
    samples read), each with the generated tests and how many each candidate passed."""
    views: dict[tuple[int, int, int], dict[str, Any]] = {}
    for strategy in strategies:
        if strategy.test_pool_id is None:
            continue
        key = (strategy.test_pool_id, strategy.test_n, strategy.n)
        if key in views:
            views[key]["labels"].append(strategy.label)
            continue
        matrix = PassMatrix.objects.filter(
            solution_pool_id=strategy.pool_id, test_pool_id=strategy.test_pool_id,
            problem=problem,
        ).first()
        if matrix is None:
            continue
        array, executed = matrix_view(matrix, strategy.n, strategy.test_n)
        keep = [j for j, t in enumerate(matrix.column_samples) if t < strategy.test_n]
        views[key] = {
            "labels": [strategy.label],
            "tests": [matrix.tests[matrix.columns[j]] for j in keep],
            "passed": {i: int(array[row].sum()) for row, i in enumerate(executed)},
            "n": strategy.n,
        }
    return list(views.values())


#: Candidates of one answer group per page of the problem page; "more" asks for the next.
GROUP_PAGE = 20
#: Candidate texts a pool's column renders at first, over all its groups (each group
#: shows its first page while this lasts); the groups after it show their heading and a
#: link, so a pool of 1,000 never puts 1,000 outputs in one response.
COLUMN_TEXTS = 60
#: Answers the histogram of a pool lists; the rest are summed in one row.
HISTOGRAM_ROWS = 25


@dataclass(frozen=True)
class GroupPage:
    """One page of one answer group of one pool: ``?pool=<id>&group=<n>&page=<p>``
    (``group`` counts the pool's groups from 1, in the order the page lists them)."""

    pool_id: int
    group: int
    page: int

    PARAMS = ("pool", "group", "page")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> GroupPage | None:
        """The page asked for, None when none is; a malformed one is 404 (a broken link)."""
        if not any(params.get(name) for name in cls.PARAMS):
            return None
        try:
            pool_id, group, page = (int(params.get(name) or "1") for name in cls.PARAMS)
        except ValueError as exc:
            raise Http404("No such page of candidates") from exc
        if min(pool_id, group, page) < 1:
            raise Http404("No such page of candidates")
        return cls(pool_id, group, page)

    def query(self, params: Mapping[str, str]) -> str:
        """The page's query string, keeping the other parameters (the review filter)."""
        kept = {k: v for k, v in params.items() if k not in self.PARAMS and k != "diff"}
        return urlencode({**kept, "pool": self.pool_id, "group": self.group,
                          "page": self.page})


def _clusters(candidates: list[dict[str, Any]], readers: list[dict[str, Any]],
              reference_key: str | None, is_code: bool) -> list[dict[str, Any]]:
    """The pool's candidates grouped by answer: each cluster with its count, share and
    marks, largest first; then the candidates without an answer and those not verified
    yet."""
    groups: dict[tuple[bool, str | None], list[dict[str, Any]]] = {}
    for candidate in candidates:
        pending = candidate["verdict"] is None
        groups.setdefault((pending, candidate["key"]), []).append(candidate)
    clusters = []
    for (pending, key), members in groups.items():
        first = members[0]["verdict"]
        n_pass = sum(1 for c in members if c["verdict"] and c["verdict"].outcome == "pass")
        share = len(members) / len(candidates)
        clusters.append({
            "key": key,
            "is_pending": pending,
            "answer": first.answer if key is not None and first is not None else None,
            "spellings": sorted({c["verdict"].answer for c in members
                                 if key is not None and c["verdict"] is not None}),
            "count": len(members),
            "share": share,
            "percent": round(100 * share),
            "n_pass": n_pass,
            "is_reference": key is not None and (
                key == reference_key or (n_pass == len(members) and not is_code)),
            "passes_tests": is_code and key is not None and n_pass == len(members),
            "selected_by": sorted({label for c in members for label in c["selected_by"]}),
            "tied_for": [r["strategy"].label for r in readers
                         if key is not None and key in r["tied_keys"]],
            "candidates": members,
        })
    # Stable: equal counts keep the order in which their answers first appeared.
    clusters.sort(key=lambda c: (c["is_pending"], c["key"] is None, -c["count"]))
    for number, cluster in enumerate(clusters, start=1):
        cluster["name"] = f"program {number}" if is_code and cluster["key"] else None
        cluster["number"] = number
    return clusters


def _paginate(pool_id: int, clusters: list[dict[str, Any]], asked: GroupPage | None,
              params: Mapping[str, str]) -> None:
    """Choose which candidates of each group the page shows (``shown``): the asked page
    of the asked group; the first page of the others while ``COLUMN_TEXTS`` lasts, and
    none after it (a link shows them). Each group gets its links to the next page (and,
    past the first, back to the first)."""
    budget = COLUMN_TEXTS
    for cluster in clusters:
        count = cluster["count"]
        pages = math.ceil(count / GROUP_PAGE)
        if asked is not None and asked.pool_id == pool_id and asked.group == cluster["number"]:
            page = min(asked.page, pages)
        else:
            page = 1 if budget > 0 else 0
        start = (page - 1) * GROUP_PAGE if page else 0
        shown = cluster["candidates"][start:start + GROUP_PAGE] if page else []
        budget -= len(shown)
        upcoming = page + 1 if page < pages else None

        def link(number: int, cluster: dict[str, Any] = cluster) -> str:
            return GroupPage(pool_id, cluster["number"], number).query(params)

        cluster.update(
            page=page, pages=pages, shown=shown, start=start + 1, end=start + len(shown),
            next_query=link(upcoming) if upcoming else "",
            next_count=min(GROUP_PAGE, count - page * GROUP_PAGE) if upcoming else 0,
            remaining=count - start - len(shown),
            first_query=link(1) if page > 1 else "",
        )


class SampleRef(NamedTuple):
    """A candidate the page does not show, as far as grouping and links need it (a
    tuple of plain values, which the garbage collector stops tracking)."""

    pk: int
    index: int
    problem_id: int


class VerdictRef(NamedTuple):
    """A verdict as grouping reads it: the extracted answer and the outcome."""

    answer: str | None
    outcome: str


#: ``selected_by`` of the candidates no strategy selected (shared: most are).
NOBODY: tuple[str, ...] = ()


def _describe_shown(clusters: list[dict[str, Any]], strategies: list[Strategy],
                    tests: list[dict[str, Any]]) -> None:
    """Which strategies read each shown candidate and how it fared on the generated
    tests; only the shown ones, so that a pool of 10,000 allocates 10,000 small dicts and
    no lists (the collector's passes over them cost more than building them)."""
    for cluster in clusters:
        for candidate in cluster["shown"]:
            index = candidate["sample"].index
            candidate["read_by"] = [s.label for s in strategies if index < s.n]
            candidate["tests"] = [
                {"passed": t["passed"].get(index), "total": len(t["tests"]),
                 "labels": t["labels"]}
                for t in tests if index < t["n"]
            ]


def _load_shown(candidates: list[dict[str, Any]], verifier: str) -> None:
    """Read the samples and verdicts of the candidates the page shows, outputs included
    (with the collapsed preview of a long one); the others stay ``SampleRef`` and
    ``VerdictRef``, so a pool of 10,000 builds no 10,000 model instances."""
    ids = [c["sample"].pk for c in candidates]
    samples = Sample.objects.in_bulk(ids)
    verdicts = {v.sample_id: v for v in Verdict.objects.filter(sample_id__in=ids,
                                                               verifier=verifier)}
    for candidate in candidates:
        sample = samples[candidate["sample"].pk]
        candidate["sample"] = sample
        candidate["verdict"] = verdicts.get(sample.pk)
        candidate["preview"] = _preview(sample.text)
        candidate["lines"] = sample.text.count("\n") + 1


def shown_candidates(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates the page renders, over every column and group."""
    return [c for column in columns for cl in column["clusters"] for c in cl["shown"]]


def problem_columns(experiment: Experiment, problem: Problem, asked: GroupPage | None = None,
                    params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One column per sample pool for one problem: its candidates grouped by extracted
    answer (clusters with count and share, largest first, "no answer" last), with the
    strategies reading the pool marked on the candidates they selected and the answers
    they tied on. Each group shows a page of its candidates (``_paginate``; ``asked``
    names the page wanted of one group, ``params`` the query its links keep); only the
    shown candidates' outputs are read. A page of a pool or group the problem does not
    have is 404."""
    params = params or {}
    verifier = verifier_for(experiment)
    is_code = experiment.verifier in CODE_VERIFIERS
    reference_key = None if is_code else _cluster_key(problem.answer, is_code=False)
    by_pool: dict[int, list[Strategy]] = defaultdict(list)
    for strategy in experiment.strategies.select_related("pool"):
        by_pool[strategy.pool_id].append(strategy)
    results = {
        r.strategy_id: r
        for r in ProblemResult.objects.filter(strategy__experiment=experiment, problem=problem)
    }
    names = pool_names(experiment)
    keys: dict[str | None, str | None] = {}  # answers repeat: each is canonicalised once
    columns = []
    for pool_id, strategies in by_pool.items():
        size = max(s.n for s in strategies)
        in_pool = {"pool_id": pool_id, "problem": problem, "index__lt": size}
        verdicts = {
            sample_id: VerdictRef(answer, outcome)
            for sample_id, answer, outcome in Verdict.objects.filter(
                verifier=verifier, **{f"sample__{k}": v for k, v in in_pool.items()},
            ).values_list("sample_id", "answer", "outcome")
        }
        tests = _test_views(strategies, problem)
        readers = [
            {"strategy": s, "result": results.get(s.pk),
             "tied_keys": {_cluster_key(a, is_code) for a in
                           (results[s.pk].tied_answers if s.pk in results else [])}}
            for s in strategies
        ]
        chosen: dict[int, list[str]] = defaultdict(list)
        for reader in readers:
            if reader["result"] is not None and reader["result"].selected_index is not None:
                chosen[reader["result"].selected_index].append(reader["strategy"].label)
        candidates = []
        for pk, index in (Sample.objects.filter(**in_pool).order_by("index")
                          .values_list("pk", "index")):
            verdict = verdicts.get(pk)
            answer = verdict.answer if verdict is not None else None
            if answer not in keys:
                keys[answer] = _cluster_key(answer, is_code)
            selected_by = chosen.get(index, NOBODY)
            candidates.append({
                "sample": SampleRef(pk, index, problem.pk),
                "verdict": verdict,
                "key": keys[answer],
                "selected_by": selected_by,
                "is_selected": bool(selected_by),
            })
        clusters = _clusters(candidates, readers, reference_key, is_code)
        _paginate(pool_id, clusters, asked, params)
        _describe_shown(clusters, strategies, tests)
        for reader in readers:
            chosen = reader["result"].selected_index if reader["result"] else None
            reader["selected"] = next(
                (c for c in candidates if c["sample"].index == chosen), None)
            reader["selected_query"] = _page_of(pool_id, clusters, reader["selected"], params)
        columns.append({
            "pool": strategies[0].pool,
            "name": names[pool_id],
            "title": _pool_title(strategies),
            "readers": readers,
            "size": size,
            "tests": tests,
            "candidates": candidates,
            "clusters": clusters,
            "histogram": clusters[:HISTOGRAM_ROWS],
            "histogram_rest": _rest(clusters[HISTOGRAM_ROWS:]),
        })
    if asked is not None and not any(
            column["pool"].pk == asked.pool_id and asked.group <= len(column["clusters"])
            for column in columns):
        raise Http404("No such group of candidates on this problem")
    _load_shown(shown_candidates(columns), verifier)
    return columns


def _rest(clusters: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The histogram's last row: the answers past ``HISTOGRAM_ROWS``, summed."""
    if not clusters:
        return None
    return {"answers": len(clusters), "count": sum(c["count"] for c in clusters),
            "percent": round(100 * sum(c["share"] for c in clusters))}


def _page_of(pool_id: int, clusters: list[dict[str, Any]], candidate: dict[str, Any] | None,
             params: Mapping[str, str]) -> str:
    """The query of the group page that shows ``candidate``, or "" when this page
    already shows it (or there is none)."""
    if candidate is None:
        return ""
    for cluster in clusters:
        if any(c is candidate for c in cluster["shown"]):
            return ""
        if any(c is candidate for c in cluster["candidates"]):
            position = next(i for i, c in enumerate(cluster["candidates"]) if c is candidate)
            return GroupPage(pool_id, cluster["number"], position // GROUP_PAGE + 1).query(params)
    return ""
