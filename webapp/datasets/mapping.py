"""Column mapping: how a file's columns become problems (prompt, reference, metadata).

A ``ColumnMapping`` is a small frozen config stored with a dataset (``presets.detect``
proposes one for common layouts); ``normalise`` applies it to one parsed ``Record``,
reporting every problem with the record's location and the field to blame. No Django
here: the services call it while streaming an upload.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import functools
import hashlib
import json
import keyword
import re
import string
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webapp.datasets.answers import boxed_answer, gsm8k_answer
from webapp.datasets.parsers import MAX_ERRORS, ErrorLog, Record, UploadError, iter_records

__all__ = [
    "ANSWER_FORMATS",
    "KINDS",
    "ColumnMapping",
    "NormalRow",
    "UniqueIds",
    "content_digest",
    "content_hash",
    "normalise",
    "normalise_records",
    "preview",
    "template_columns",
]

KINDS = ("math", "exact", "regex", "choice", "open", "code")
ANSWER_FORMATS = ("plain", "gsm8k", "boxed")
LETTERS = string.ascii_uppercase
_NEEDS_ANSWER = ("math", "exact", "regex")
_COLUMN_FIELDS = ("prompt", "answer", "answer_key", "tests", "entry_point", "id",
                  "canonical_solution", "test_setup")


@dataclass(frozen=True, kw_only=True)
class ColumnMapping:
    """Which columns hold the prompt, the reference and the rest, for one task kind.

    ``choices`` is one column holding a list (or an ARC ``{"text", "label"}`` dict), or
    one column per choice in order. ``canonical_solution`` and ``test_setup`` (code) are
    optional columns: a reference solution, and code (a string or a list such as MBPP's
    ``test_imports``) put before the tests.
    """

    kind: str
    prompt: str = ""
    template: str = ""
    answer: str = ""
    answer_format: str = "plain"
    choices: tuple[str, ...] = ()
    answer_key: str = ""
    tests: str = ""
    entry_point: str = ""
    id: str = ""
    metadata: tuple[str, ...] = ()
    canonical_solution: str = ""
    test_setup: str = ""

    def __post_init__(self) -> None:
        for name in ("choices", "metadata"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, value := tuple(value))
            if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"{name} must be a list of column names")
            if len(set(value)) != len(value):
                raise ValueError(f"{name} names a column more than once")
        for name in ("kind", "template", "answer_format", *_COLUMN_FIELDS):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string")
        if self.kind not in KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; choose one of: {', '.join(KINDS)}")
        if not self.prompt and not self.template:
            raise ValueError("choose the prompt column, or write a prompt template")
        if self.prompt and self.template:
            raise ValueError("choose a prompt column or a prompt template, not both")
        if self.template:
            template_columns(self.template)
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(f"unknown answer format {self.answer_format!r}; choose one of: "
                             f"{', '.join(ANSWER_FORMATS)}")
        if self.kind in _NEEDS_ANSWER and not self.answer:
            raise ValueError(f"a {self.kind} dataset needs the reference answer column")
        if self.answer_format != "plain" and not self.answer:
            raise ValueError(f"the {self.answer_format} answer format needs an answer column")
        if self.kind == "choice":
            if not self.choices:
                raise ValueError("a multiple-choice dataset needs the choices: one column "
                                 "holding a list, or one column per choice")
            if len(self.choices) > len(LETTERS):
                raise ValueError(f"at most {len(LETTERS)} choice columns")
            if not self.answer_key:
                raise ValueError("a multiple-choice dataset needs the answer key column")
        if self.kind == "code" and not self.tests:
            raise ValueError("a code dataset needs the tests column (a check(candidate) "
                             "program, or a list of asserts)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (lists for the tuples); ``from_dict`` reads it back."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnMapping:
        if not isinstance(data, Mapping):
            raise ValueError("a column mapping must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown column mapping keys: {', '.join(map(str, unknown))}")
        if "kind" not in data:
            raise ValueError("a column mapping needs a kind")
        return cls(**data)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the mapping reads, in a stable order (for the mapping page)."""
        used = [getattr(self, name) for name in _COLUMN_FIELDS]
        if self.template:
            used += template_columns(self.template)
        return tuple(dict.fromkeys(c for c in [*used, *self.choices, *self.metadata] if c))


@functools.lru_cache(maxsize=64)
def template_columns(template: str) -> tuple[str, ...]:
    """The columns a prompt template names; ``ValueError`` for a template that cannot work.

    >>> template_columns("Question: {question}\\nAnswer ({{short}}):")
    ('question',)
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"the prompt template is not valid ({exc}); write literal braces "
                         "as {{ and }}") from None
    names = []
    for _, name, spec, _ in parts:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError("each {} in the prompt template must name a column, as in "
                             "{question}; write literal braces as {{ and }}")
        if "." in name or "[" in name or "{" in (spec or ""):
            raise ValueError(f"{{{name}}} in the prompt template must be a plain column name")
        names.append(name)
    if not names:
        raise ValueError("the prompt template names no column, as in {question}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    mapping: ColumnMapping


@dataclass(frozen=True)
class NormalRow:
    """One problem as stored: prompt, reference answer ("" when none), metadata."""

    prompt: str
    answer: str
    metadata: dict[str, Any] = field(default_factory=dict)


# --- Normalising one record ---------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


class _Row:
    """One record being normalised: reads columns, reports problems against its location."""

    __slots__ = ("errors", "fields", "location", "ok")

    def __init__(self, record: Record, errors: ErrorLog) -> None:
        self.fields = record.fields
        self.location = record.location
        self.errors = errors
        self.ok = True

    def error(self, message: str, column: str | None = None) -> None:
        self.errors.add(self.location, message, column)
        self.ok = False

    def get(self, column: str) -> Any:
        """The column's value; reports and returns None when it is missing."""
        if column not in self.fields:
            self.error("is missing", column)
            return None
        return self.fields[column]

    def text(self, column: str, *, numbers: bool = False, required: bool = True) -> str | None:
        """A string column (numbers too when ``numbers``); None after reporting."""
        value = self.fields.get(column)
        if type(value) is str and (not required or (value and not value.isspace())):
            return value  # the usual case, first
        value = self.get(column)
        if value is None and column in self.fields:
            if not required:
                return ""
            self.error(f"must be a string{' or a number' if numbers else ''}, not null", column)
            return None
        if value is None:
            return None
        if isinstance(value, str):
            text = value
        elif numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = str(value)
        else:
            self.error(f"must be a string{' or a number' if numbers else ''}, "
                       f"not {_type_name(value)}", column)
            return None
        if required and not text.strip():
            self.error("is empty", column)
            return None
        return text


def _render(value: Any) -> str | None:
    """A column's value as template text: scalars as text, lists one item per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return "\n".join(map(str, value))
    return None


def _prompt(mapping: ColumnMapping, row: _Row) -> str | None:
    if mapping.prompt:
        return row.text(mapping.prompt)
    values = {}
    for column in template_columns(mapping.template):
        value = row.get(column)
        if value is None:
            if column in row.fields:
                row.error("is empty (null), but the prompt template uses it", column)
            continue
        text = _render(value)
        if text is None:
            row.error(f"is {_type_name(value)}, which the prompt template cannot show", column)
            continue
        values[column] = text
    if not row.ok:
        return None
    try:
        prompt = mapping.template.format_map(values)
    except (ValueError, TypeError) as exc:
        row.error(f"the prompt template cannot be applied: {exc}")
        return None
    if not prompt.strip():
        row.error("the prompt template gives an empty prompt")
        return None
    return prompt


def _answer(mapping: ColumnMapping, row: _Row) -> str:
    if not mapping.answer:
        return ""
    required = mapping.kind in _NEEDS_ANSWER
    text = row.text(mapping.answer, numbers=True, required=required)
    if not text:
        return ""
    if mapping.answer_format == "gsm8k":
        answer = gsm8k_answer(text)
        if answer is None:
            row.error("has no '####' before the final answer (GSM8K format)", mapping.answer)
            return ""
    elif mapping.answer_format == "boxed":
        answer = boxed_answer(text)
        if answer is None:
            row.error("has no \\boxed{...} answer (MATH format)", mapping.answer)
            return ""
    else:
        answer = text.strip()
    if required and not answer:
        row.error("gives an empty answer", mapping.answer)
    return answer


def _choice_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _choices(mapping: ColumnMapping, row: _Row) -> tuple[list[str], list[str] | None] | None:
    """The choice texts and, for ARC-style dicts, their labels."""
    labels = None
    if len(mapping.choices) == 1:
        column = mapping.choices[0]
        value = row.get(column)
        if value is None:
            if column in row.fields:
                row.error("must be a list of strings, not null", column)
            return None
        if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
            with contextlib.suppress(ValueError, RecursionError):  # a CSV cell holding JSON
                value = json.loads(value)
        if isinstance(value, dict):
            items, labels = value.get("text"), value.get("label")
            if not (isinstance(items, list) and isinstance(labels, list)
                    and len(items) == len(labels)
                    and all(isinstance(label, str) for label in labels)):
                row.error("must hold 'text' and 'label' lists of the same length", column)
                return None
        elif isinstance(value, list):
            items = value
        else:
            row.error(f"must be a list of strings, not {_type_name(value)}", column)
            return None
        texts = [_choice_text(item) for item in items]
        if any(text is None for text in texts):
            row.error("must be a list of strings", column)
            return None
    else:
        texts = []
        for column in mapping.choices:
            text = row.text(column, numbers=True, required=False)
            if text is None:
                return None
            texts.append(text)
    if not 2 <= len(texts) <= len(LETTERS):
        row.error(f"has {len(texts)} choices; a question needs 2 to {len(LETTERS)}",
                  mapping.choices[0])
        return None
    return [t for t in texts if t is not None], labels


def _key_index(value: Any, count: int, labels: list[str] | None) -> int | str:
    """The 0-based index of the right choice, or the message saying why there is none."""
    if labels is not None:
        key = str(value).strip() if isinstance(value, (str, int)) else None
        if key in labels:
            return labels.index(key)
        return f"is {value!r}, which is not one of the choice labels {labels}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = value.strip() if isinstance(value, str) else value
    if isinstance(key, int) and not isinstance(key, bool):
        index = key
    elif isinstance(key, str) and key.isdecimal() and key.isascii():
        index = int(key)
    elif isinstance(key, str) and len(key) == 1 and key.upper() in LETTERS:
        index = LETTERS.index(key.upper())
    else:
        shown = repr(value) if isinstance(value, str) else _type_name(value)
        return f"must be a letter (A, B, ...) or a 0-based index, not {shown}"
    if not 0 <= index < count:
        return f"is {value!r}, but there are only {count} choices"
    return index


def _choice(mapping: ColumnMapping, row: _Row, prompt: str
            ) -> tuple[str, str, list[str]] | None:
    found = _choices(mapping, row)
    key = row.get(mapping.answer_key)
    if found is None or key is None:
        if key is None and mapping.answer_key in row.fields:
            row.error("must be a letter or an index, not null", mapping.answer_key)
        return None
    texts, labels = found
    index = _key_index(key, len(texts), labels)
    if isinstance(index, str):
        row.error(index, mapping.answer_key)
        return None
    lines = "".join(f"\n{LETTERS[i]}. {text}" for i, text in enumerate(texts))
    return prompt + lines, LETTERS[index], texts


# --- Code ---------------------------------------------------------------------------

_DEF = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_BUILTINS = frozenset(dir(builtins))


class _CallCandidate(ast.NodeTransformer):
    """Rename the function under test to ``candidate`` (HumanEval's check signature)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == self.name:
            return ast.copy_location(ast.Name(id="candidate", ctx=node.ctx), node)
        return node


def _called_function(tree: ast.AST) -> str | None:
    """The first function a test calls that is not a builtin (``assert f(x) == 1``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id not in _BUILTINS:
            return node.func.id
    return None


def _parse(source: str, row: _Row, column: str, prefix: str = "") -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        where = f" (its line {exc.lineno}: {exc.msg})" if isinstance(exc, SyntaxError) else ""
        row.error(f"{prefix}is not valid Python{where}", column)
        return None


def _asserts_program(mapping: ColumnMapping, row: _Row, asserts: list[Any],
                     entry_point: str | None, setup: str) -> tuple[str, str] | None:
    """An MBPP test list as a ``check(candidate)`` program, and the entry point."""
    column = mapping.tests
    if not asserts:
        row.error("has no tests", column)
        return None
    if not all(isinstance(item, str) for item in asserts):
        row.error("must be a list of strings (assert statements)", column)
        return None
    trees = []
    for number, source in enumerate(asserts, start=1):
        tree = _parse(source, row, column, f"test {number} ")
        if tree is None:
            return None
        trees.append(tree)
    if entry_point is None:
        entry_point = _called_function(trees[0])
        if entry_point is None:
            row.error("the first test calls no function: map an entry point column", column)
            return None
    try:
        body = "\n".join(ast.unparse(_CallCandidate(entry_point).visit(tree))
                         for tree in trees)
    except RecursionError:
        row.error("holds a test nested too deeply", column)
        return None
    head = f"{setup.rstrip()}\n\n\n" if setup.strip() else ""
    return f"{head}def check(candidate):\n{textwrap.indent(body, '    ')}\n", entry_point


def _code(mapping: ColumnMapping, row: _Row, prompt: str) -> dict[str, Any] | None:
    entry_point = None
    if mapping.entry_point:
        entry_point = row.text(mapping.entry_point)
        if entry_point is not None:
            entry_point = entry_point.strip()
            if not entry_point.isidentifier() or keyword.iskeyword(entry_point):
                row.error(f"{entry_point!r} is not a Python function name", mapping.entry_point)
                entry_point = None
    setup = ""
    if mapping.test_setup and mapping.test_setup in row.fields:
        value = row.fields[mapping.test_setup]
        rendered = "" if value is None else _render(value)
        if rendered is None:
            row.error("must be code (a string or a list of lines)", mapping.test_setup)
        elif rendered.strip() and _parse(rendered, row, mapping.test_setup):
            setup = rendered
    tests = row.get(mapping.tests)
    if isinstance(tests, str) and tests.lstrip().startswith("["):
        with contextlib.suppress(ValueError, RecursionError):  # a CSV cell holding JSON
            tests = json.loads(tests)
    canonical = ""
    if mapping.canonical_solution:
        canonical = row.text(mapping.canonical_solution, required=False) or ""
    if not row.ok or tests is None:
        if tests is None and mapping.tests in row.fields:
            row.error("must be a test program or a list of asserts, not null", mapping.tests)
        return None
    if isinstance(tests, list):
        built = _asserts_program(mapping, row, tests, entry_point, setup)
        if built is None:
            return None
        test, entry_point = built
    elif isinstance(tests, str):
        if not tests.strip():
            row.error("is empty", mapping.tests)
            return None
        tree = _parse(tests, row, mapping.tests)
        if tree is None:
            return None
        if not any(isinstance(node, ast.FunctionDef) and node.name == "check"
                   for node in tree.body):
            row.error("defines no check(candidate) function", mapping.tests)
            return None
        test = f"{setup.rstrip()}\n\n\n{tests}" if setup.strip() else tests
        if entry_point is None:
            defined = _DEF.findall(prompt)
            if not defined:
                row.error("names no entry point and the prompt defines no function: map "
                          "an entry point column", mapping.tests)
                return None
            entry_point = defined[-1]
    else:
        row.error(f"must be a test program (a string) or a list of asserts, not "
                  f"{_type_name(tests)}", mapping.tests)
        return None
    meta: dict[str, Any] = {"test": test, "entry_point": entry_point}
    if canonical.strip():
        meta["canonical_solution"] = canonical
    return meta


# --- The public functions -----------------------------------------------------------


def normalise(mapping: ColumnMapping, record: Record, errors: ErrorLog) -> NormalRow | None:
    """The problem ``record`` stands for under ``mapping``; None after reporting each fault."""
    row = _Row(record, errors)
    metadata: dict[str, Any] = ({column: row.fields.get(column) for column in mapping.metadata}
                                if mapping.metadata else {})
    if mapping.id:
        value = row.get(mapping.id)
        if isinstance(value, str) and value.strip():
            metadata["id"] = value.strip()
        elif isinstance(value, int) and not isinstance(value, bool):
            metadata["id"] = str(value)
        elif mapping.id in row.fields:
            row.error(f"must be a non-empty string or an integer, not "
                      f"{'empty' if value == '' else _type_name(value)}", mapping.id)
    prompt = _prompt(mapping, row)
    if prompt is None:
        # Still check the other columns, so that one pass shows every fault of the row.
        prompt = ""
    answer = ""
    if mapping.kind == "choice":
        chosen = _choice(mapping, row, prompt)
        if chosen is not None:
            prompt, answer, metadata["choices"] = chosen
    elif mapping.kind == "code":
        meta = _code(mapping, row, prompt)
        if meta is not None:
            metadata.update(meta)
    else:
        answer = _answer(mapping, row)
    if not row.ok:
        return None
    return NormalRow(prompt=prompt, answer=answer, metadata=metadata)


class UniqueIds:
    """Reports a row whose id was seen before, naming where it was first."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}

    def check(self, row: NormalRow, location: str, errors: ErrorLog, column: str) -> bool:
        key = row.metadata.get("id")
        if key is None:
            return True
        if key not in self._first:
            self._first[key] = location
            return True
        errors.add(location, f"repeats the id {key!r} (first on {self._first[key]})", column)
        return False


def normalise_records(mapping: ColumnMapping, records: Iterable[Record], errors: ErrorLog
                      ) -> Iterator[NormalRow]:
    """``normalise`` over a stream, also rejecting repeated ids (each one is listed)."""
    ids = UniqueIds()
    for record in records:
        row = normalise(mapping, record, errors)
        if row is not None and (not mapping.id
                                or ids.check(row, record.location, errors, mapping.id)):
            yield row


def content_digest(mapping: ColumnMapping, kind: str) -> Any:
    """A sha256 that has read the kind and the mapping: every content key starts so."""
    digest = hashlib.sha256()
    digest.update(_canonical({"kind": kind, "mapping": mapping.to_dict()}))
    return digest


def content_hash(rows: Iterable[NormalRow], mapping: ColumnMapping, kind: str) -> str:
    """sha256 of the kind, the mapping and each row as canonical JSON, streamed.
    (``columns.columnar_content_hash`` writes the same rows a column at a time.)"""
    digest = content_digest(mapping, kind)
    for row in rows:
        digest.update(b"\n")
        digest.update(_canonical([row.prompt, row.answer, row.metadata]))
    return digest.hexdigest()


# What json.dumps(value, sort_keys=True, ...) builds on each call, built once.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def _canonical(value: Any) -> bytes:
    # JSON escapes newlines, so "\n" separates rows unambiguously.
    return _CANONICAL.encode(value).encode("utf-8", "surrogatepass")


def preview(path: Path | str, file_name: str, fmt: str, *, rows: int = 10
            ) -> tuple[list[str], list[dict[str, Any]], ErrorLog]:
    """The columns (first seen first) and first ``rows`` good rows, and the errors met
    on the way; stops there (or at the error cap), so the file is never read whole."""
    errors = ErrorLog(file_name, stop_after=MAX_ERRORS)
    columns: dict[str, None] = {}
    found: list[dict[str, Any]] = []
    records = iter_records(Path(path), file_name, fmt, errors, max_rows=2**62)
    try:
        for record in records:
            columns.update(dict.fromkeys(record.fields))
            found.append(record.fields)
            if len(found) >= rows:
                break
    except UploadError:
        pass
    finally:
        records.close()
    return list(columns), found, errors
