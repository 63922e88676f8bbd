"""Finding what to look at: the experiment page's problem list, its filters with their
counts, its pages, and the review queue that walks one filter on the problem pages.

The list's state lives in the URL (``?filter=disagree&strategy=3&page=2``), so a link
shows a teammate the same view. Every filter reads the stored per-problem results (one
query for all problems: a few thousand rows for a large experiment); only the page shown
loads its problems and result rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator

from webapp.experiments.models import Experiment, ProblemResult, Strategy
from webapp.review.services import problems_with_comments, problems_with_labels

PAGE_SIZE = 100


@dataclass(frozen=True)
class Filter:
    key: str
    label: str
    title: str
    needs_strategy: bool = False


FILTERS = (
    Filter("all", "All problems", "every problem of the experiment"),
    Filter("disagree", "Strategies disagree",
           "the strategies' selections are not all equally right"),
    Filter("missed", "Oracle solved, a selector missed",
           "some strategy had a correct candidate but did not select it"),
    Filter("unsolved", "Nobody solved", "no strategy's pool holds a correct candidate"),
    Filter("solved", "Everybody solved", "every strategy selected a correct answer"),
    Filter("passed", "Passed", "the chosen strategy selected a correct answer",
           needs_strategy=True),
    Filter("failed", "Failed",
           "the chosen strategy selected a wrong answer (or a tie with a wrong one)",
           needs_strategy=True),
    Filter("commented", "Has comments", "a teammate commented on the problem or a candidate"),
    Filter("labelled", "Has human labels", "the team labelled one of its candidates"),
)
BY_KEY = {f.key: f for f in FILTERS}


@dataclass(frozen=True)
class ListState:
    """What the URL asks of the list: a filter, the strategy that passed or failed, a page."""

    filter: Filter
    strategy: Strategy | None
    page: int = 1

    @property
    def is_filtered(self) -> bool:
        return self.filter.key != "all"

    def params(self, page: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"filter": self.filter.key}
        if self.filter.needs_strategy and self.strategy is not None:
            params["strategy"] = self.strategy.pk
        if page and page > 1:
            params["page"] = page
        return params

    def query(self, page: int | None = None) -> str:
        return urlencode(self.params(page))

    @property
    def label(self) -> str:
        if self.filter.needs_strategy and self.strategy is not None:
            return f"{self.filter.label}: {self.strategy.label}"
        return self.filter.label


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def list_state(strategies: list[Strategy], params: Mapping[str, str]) -> ListState:
    """The state the query string asks for; anything unknown falls back to the default
    (all problems, the first strategy, page 1) rather than failing."""
    chosen = BY_KEY.get(params.get("filter", "") or "all", BY_KEY["all"])
    wanted = _int(params.get("strategy"))
    strategy = next((s for s in strategies if s.pk == wanted),
                    strategies[0] if strategies else None)
    if chosen.needs_strategy and strategy is None:
        chosen = BY_KEY["all"]
    return ListState(chosen, strategy, max(1, _int(params.get("page")) or 1))


@dataclass
class Facts:
    """Per problem (in index order) and strategy: selected credit and correct candidates
    (judged results only), plus the problems with comments and with labels."""

    order: list[int]
    cells: dict[int, dict[int, tuple[float, int | None]]] = field(default_factory=dict)
    commented: set[int] = field(default_factory=set)
    labelled: set[int] = field(default_factory=set)
    n_strategies: int = 0


def problem_facts(experiment: Experiment, strategies: list[Strategy]) -> Facts:
    order = list(experiment.problems.order_by("index").values_list("pk", flat=True))
    facts = Facts(order, n_strategies=len(strategies))
    for strategy_id, problem_id, credit, n_correct in ProblemResult.objects.filter(
        strategy__experiment=experiment, selected_credit__isnull=False,
    ).values_list("strategy_id", "problem_id", "selected_credit", "n_correct"):
        facts.cells.setdefault(problem_id, {})[strategy_id] = (credit, n_correct)
    facts.commented = problems_with_comments(experiment)
    facts.labelled = problems_with_labels(experiment, experiment.team)
    return facts


def matches(facts: Facts, key: str, strategy_id: int | None, problem_id: int) -> bool:
    """Whether the problem is in filter ``key`` (``strategy_id`` for passed/failed)."""
    cells = facts.cells.get(problem_id, {})
    credits = [credit for credit, _ in cells.values()]
    if key == "all":
        return True
    if key == "disagree":
        return len(set(credits)) > 1
    if key == "missed":
        return any(n_correct and credit < 1 for credit, n_correct in cells.values())
    if key == "unsolved":
        return bool(cells) and not any(n_correct for _, n_correct in cells.values())
    if key == "solved":
        return len(cells) == facts.n_strategies > 0 and all(c == 1 for c in credits)
    if key in ("passed", "failed"):
        cell = cells.get(strategy_id) if strategy_id is not None else None
        if cell is None:
            return False
        return cell[0] == 1 if key == "passed" else cell[0] < 1
    if key == "commented":
        return problem_id in facts.commented
    if key == "labelled":
        return problem_id in facts.labelled
    raise ValueError(f"unknown filter {key!r}")


def matching(facts: Facts, state: ListState) -> list[int]:
    """The problems in the state's filter, in index order."""
    strategy_id = state.strategy.pk if state.strategy is not None else None
    return [pk for pk in facts.order if matches(facts, state.filter.key, strategy_id, pk)]


def counts(facts: Facts, strategies: list[Strategy]) -> tuple[dict[str, int],
                                                             dict[int, dict[str, int]]]:
    """How many problems each filter holds, and per strategy how many passed and failed."""
    plain = {f.key: sum(matches(facts, f.key, None, pk) for pk in facts.order)
             for f in FILTERS if not f.needs_strategy}
    per_strategy = {
        s.pk: {key: sum(matches(facts, key, s.pk, pk) for pk in facts.order)
               for key in ("passed", "failed")}
        for s in strategies
    }
    return plain, per_strategy


def problem_list(experiment: Experiment, params: Mapping[str, str]) -> dict[str, Any]:
    """The problem list as the URL asks: filters with counts and links, the strategy
    chooser, the page of rows (problem, each strategy's result, flags) and the pager."""
    strategies = list(experiment.strategies.all())
    state = list_state(strategies, params)
    facts = problem_facts(experiment, strategies)
    plain, per_strategy = counts(facts, strategies)
    chosen = state.strategy
    filters = []
    for f in FILTERS:
        option = ListState(f, chosen)
        count = (per_strategy.get(chosen.pk, {}).get(f.key, 0) if f.needs_strategy and chosen
                 else plain.get(f.key, 0))
        filters.append({"filter": f, "label": option.label, "count": count,
                        "query": option.query(), "active": f.key == state.filter.key})
    ids = matching(facts, state)
    page = Paginator(ids, PAGE_SIZE).get_page(state.page)
    page_ids = list(page.object_list)
    problems = experiment.problems.filter(pk__in=page_ids).in_bulk()
    results = {
        (r.strategy_id, r.problem_id): r
        for r in ProblemResult.objects.filter(strategy__in=strategies, problem_id__in=page_ids)
    }
    rows = []
    for pk in page_ids:
        credits = {credit for credit, _ in facts.cells.get(pk, {}).values()}
        rows.append({
            "problem": problems[pk],
            "cells": [results.get((s.pk, pk)) for s in strategies],
            "disagree": len(credits) > 1,
            "has_comments": pk in facts.commented,
            "has_labels": pk in facts.labelled,
        })
    return {
        "state": state,
        "filters": filters,
        "strategies": [{"strategy": s, **per_strategy[s.pk]} for s in strategies],
        "rows": rows,
        "total": len(ids),
        "page": page,
        "previous_query": state.query(page.previous_page_number())
        if page.has_previous() else None,
        "next_query": state.query(page.next_page_number()) if page.has_next() else None,
        "first_pk": ids[0] if ids else None,
        "review_query": state.query() if state.is_filtered else "",
    }


def review_position(experiment: Experiment, problem_pk: int,
                    params: Mapping[str, str]) -> dict[str, Any] | None:
    """Where the problem stands in the filter the problem page's URL carries (None when it
    carries none): "3 of 17" and the previous and next problems of that filter. A problem
    that has left the filter (a label changed it) still gets its neighbours in index
    order."""
    if not params.get("filter"):
        return None
    strategies = list(experiment.strategies.all())
    state = list_state(strategies, params)
    facts = problem_facts(experiment, strategies)
    ids = matching(facts, state)
    if problem_pk in ids:
        at = ids.index(problem_pk)
        position, before, after = at + 1, ids[:at], ids[at + 1:]
    else:
        rank = {pk: i for i, pk in enumerate(facts.order)}
        here = rank.get(problem_pk, -1)
        position = None
        before = [pk for pk in ids if rank[pk] < here]
        after = [pk for pk in ids if rank[pk] > here]
    return {
        "label": state.label,
        "query": state.query(),
        "position": position,
        "total": len(ids),
        "previous_pk": before[-1] if before else None,
        "next_pk": after[0] if after else None,
    }
