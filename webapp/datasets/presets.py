"""Common dataset layouts recognised from a file's columns and first rows: GSM8K, MATH,
HumanEval, MBPP, MMLU, ARC, one column per choice, prompt and answer, prompt only.
``detect`` proposes a ``ColumnMapping`` that the mapping page shows pre-filled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webapp.datasets.answers import looks_numeric
from webapp.datasets.mapping import LETTERS, ColumnMapping

__all__ = ["PRESETS", "Preset", "detect"]


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    mapping: ColumnMapping



_ID_COLUMNS = ("id", "task_id", "unique_id", "uid", "question_id", "qid", "problem_id")
_PROMPT_COLUMNS = ("prompt", "question", "input", "problem", "instruction", "query", "text")
_ANSWER_COLUMNS = ("answer", "target", "output", "reference", "expected", "label",
                   "ground_truth", "solution")
_KEY_COLUMNS = ("answer", "answerKey", "answer_key", "label", "target", "correct")
PRESETS = {
    "gsm8k": "GSM8K (question, answer ending in #### 42)",
    "math": "MATH (problem, solution with \\boxed{})",
    "humaneval": "HumanEval (prompt, test, entry_point)",
    "mbpp": "MBPP (text, test_list of asserts)",
    "mmlu": "MMLU (question, choices list, answer index)",
    "arc": "ARC (question, choices with labels, answerKey)",
    "lettered": "Multiple choice with one column per choice (A, B, C, D)",
    "prompt_answer": "Prompt and reference answer",
    "prompt_only": "Prompts only (open-ended)",
}


def _id_column(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """An id-like column whose sample values are present and distinct, or ""."""
    for column in _ID_COLUMNS:
        if column in columns:
            values = [row.get(column) for row in rows]
            if all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip()
                   for v in values) and len(set(map(str, values))) == len(values):
                return column
    return ""


def _first(candidates: Sequence[str], columns: Sequence[str]) -> str:
    return next((c for c in candidates if c in columns), "")


def _values(rows: Sequence[Mapping[str, Any]], column: str) -> list[Any]:
    return [row[column] for row in rows if row.get(column) not in (None, "")]


def _preset(name: str, **mapping: Any) -> Preset:
    return Preset(name=name, label=PRESETS[name], mapping=ColumnMapping(**mapping))


def detect(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Preset | None:
    """The preset a sample of a file looks like, with its mapping filled in, or None."""
    cols = list(columns)
    has = set(cols).issuperset
    row_id = _id_column(cols, rows)
    if has({"prompt", "test", "entry_point"}):
        return _preset("humaneval", kind="code", prompt="prompt", tests="test",
                       entry_point="entry_point", id=row_id,
                       canonical_solution="canonical_solution"
                       if "canonical_solution" in cols else "")
    text = _first(("text", "prompt", "question", "problem"), cols)
    if "test_list" in cols and text:
        setup = _first(("test_setup_code", "test_imports"), cols)
        if setup and not any(_values(rows, setup)):
            setup = ""
        return _preset("mbpp", kind="code", tests="test_list", id=row_id, test_setup=setup,
                       template=f"{{{text}}}\nYour code should pass these tests:\n{{test_list}}",
                       canonical_solution="code" if "code" in cols else "")
    if has({"question", "answer"}):
        answers = _values(rows, "answer")
        if answers and all(isinstance(a, str) and "####" in a for a in answers):
            return _preset("gsm8k", kind="math", prompt="question", answer="answer",
                           answer_format="gsm8k", id=row_id)
    if has({"problem", "solution"}):
        extra = tuple(c for c in ("level", "type", "subject") if c in cols)
        if "answer" in cols:
            return _preset("math", kind="math", prompt="problem", answer="answer",
                           id=row_id, metadata=extra)
        return _preset("math", kind="math", prompt="problem", answer="solution",
                       answer_format="boxed", id=row_id, metadata=extra)
    question = _first(("question", "question_stem", "prompt", "input", "stem"), cols)
    if question and "choices" in cols:
        samples = _values(rows, "choices")
        key = _first(_KEY_COLUMNS, cols)
        if key and samples and all(isinstance(s, dict) and "text" in s and "label" in s
                                   for s in samples):
            return _preset("arc", kind="choice", prompt=question, choices=("choices",),
                           answer_key=key, id=row_id)
        if key and all(isinstance(s, list) for s in samples):
            extra = ("subject",) if "subject" in cols else ()
            return _preset("mmlu", kind="choice", prompt=question, choices=("choices",),
                           answer_key=key, id=row_id, metadata=extra)
    letters = _lettered(cols)
    key = _first(_KEY_COLUMNS, cols)
    if question and letters and key:
        return _preset("lettered", kind="choice", prompt=question, choices=letters,
                       answer_key=key, id=row_id)
    prompt = _first(_PROMPT_COLUMNS, cols)
    if not prompt:
        return None
    answer = _first(_ANSWER_COLUMNS, [c for c in cols if c != prompt])
    if answer:
        answers = _values(rows, answer)
        kind = "math" if answers and all(map(looks_numeric, answers)) else "exact"
        return _preset("prompt_answer", kind=kind, prompt=prompt, answer=answer, id=row_id)
    return _preset("prompt_only", kind="open", prompt=prompt, id=row_id)


def _lettered(columns: Sequence[str]) -> tuple[str, ...]:
    """Columns "A", "B", ... (any case) in letter order, when at least A and B exist."""
    by_letter = {c.upper(): c for c in columns if len(c) == 1 and c.upper() in LETTERS}
    found = []
    for letter in LETTERS:
        if letter not in by_letter:
            break
        found.append(by_letter[letter])
    return tuple(found) if len(found) >= 2 else ()
