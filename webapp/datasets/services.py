"""Dataset creation. Identical content reuses the stored dataset (and its pools)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from strategies.data.arithmetic import ArithmeticConfig, generate_arithmetic
from webapp.datasets.models import Dataset
from webapp.teams.models import Team

ANSWER_SEPARATOR = "|||"
MAX_PROMPT_LINES = 1000


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
    existing = Dataset.objects.filter(team=team, content_key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                team=team, name=name, source=source, kind=kind, params=params, content_key=key
            )
            dataset.problems.bulk_create(
                [
                    dataset.problems.model(
                        dataset=dataset, index=i, prompt=prompt, answer=answer, metadata=meta
                    )
                    for i, (prompt, answer, meta) in enumerate(rows)
                ]
            )
    except IntegrityError:
        # Another request stored the same content first: use theirs.
        return Dataset.objects.get(team=team, content_key=key)
    return dataset


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
