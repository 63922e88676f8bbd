"""Column mappings: presets recognised on realistic samples, rows normalised, faults located."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from webapp.datasets.answers import boxed_answer, gsm8k_answer
from webapp.datasets.mapping import (
    ColumnMapping,
    NormalRow,
    content_hash,
    normalise,
    normalise_records,
    preview,
)
from webapp.datasets.parsers import ErrorLog, Record
from webapp.datasets.presets import detect

GSM8K = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as "
                 "many clips in May. How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = "
               "<<48+24=72>>72 clips altogether in April and May.\n#### 72"},
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
                 "babysitting. How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she "
               "earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"},
    {"question": "A shop sells 1,000 pens a day for 1.2 days. How many pens?",
     "answer": "1,000 * 1.2 = <<1000*1.2=1200>>1,200\n#### 1,200"},
]
MATH = [
    {"problem": "How many vertical asymptotes does the graph of $y=\\frac{2}{x^2+x-6}$ have?",
     "level": "Level 3", "type": "Algebra",
     "solution": "The denominator factors as $(x-2)(x+3)$, so there are $\\boxed{2}$ "
                 "vertical asymptotes."},
    {"problem": "What is the positive difference between $120\\%$ of 30 and $130\\%$ of 20?",
     "level": "Level 1", "type": "Algebra",
     "solution": "First $\\boxed{36}$, then $36-26=\\boxed{10}$."},
    {"problem": "Find $\\sin 60^\\circ$.", "level": "Level 2", "type": "Precalculus",
     "solution": "It is $\\boxed{\\frac{\\sqrt{3}}{2}}$."},
]
HUMANEVAL = [
    {"task_id": f"HumanEval/{n}",
     "prompt": f"from typing import List\n\n\ndef {name}(numbers: List[int]) -> int:\n"
               f"    \"\"\"{doc}\"\"\"\n",
     "canonical_solution": f"    return {body}\n",
     "test": f"\n\nMETADATA = {{}}\n\n\ndef check(candidate):\n"
             f"    assert candidate([1, 2, 3]) == {value}\n",
     "entry_point": name}
    for n, name, doc, body, value in [
        (0, "total", "Sum of the numbers.", "sum(numbers)", 6),
        (1, "largest", "The largest number.", "max(numbers)", 3),
        (2, "count", "How many numbers.", "len(numbers)", 3),
    ]
]
MBPP = [
    {"task_id": 2, "text": "Write a function to find the shared elements from the given two "
                           "lists.",
     "code": "def similar_elements(test_tup1, test_tup2):\n  res = tuple(set(test_tup1) & "
             "set(test_tup2))\n  return (res) ",
     "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
                   "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))"],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 3, "text": "Write a python function to identify non-prime numbers.",
     "code": "import math\ndef is_not_prime(n):\n    return any(n % i == 0 for i in "
             "range(2, int(math.sqrt(n)) + 1))",
     "test_list": ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True"],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 4, "text": "Write a function to find the largest integers from a list using "
                           "heap queue algorithm.",
     "code": "import heapq as hq\ndef heap_queue_largest(nums,n):\n  return hq.nlargest(n, nums)",
     "test_list": ["assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)"
                   "==[85, 75, 65]"],
     "test_setup_code": "", "challenge_test_list": []},
]
MMLU = [
    {"question": "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.",
     "subject": "abstract_algebra", "choices": ["0", "1", "2", "3"], "answer": 1},
    {"question": "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|.",
     "subject": "abstract_algebra",
     "choices": ["True, True", "False, False", "True, False", "False, True"], "answer": 1},
    {"question": "Find the degree for the given field extension Q(sqrt(2)) over Q.",
     "subject": "abstract_algebra", "choices": ["0", "4", "2", "6"], "answer": 2},
]
ARC = [
    {"id": "Mercury_7175875",
     "question": "An astronomer observes that a planet rotates faster after a meteorite impact. "
                 "Which is the most likely effect of this increase in rotation?",
     "choices": {"text": ["Planetary density will decrease.", "Planetary years will become "
                          "longer.", "Planetary days will become shorter.",
                          "Planetary gravity will become stronger."],
                 "label": ["A", "B", "C", "D"]},
     "answerKey": "C"},
    {"id": "Mercury_SC_409171",
     "question": "A group of engineers wanted to know how different building designs would "
                 "respond during an earthquake. Which would be the best method?",
     "choices": {"text": ["buildings will be built faster", "buildings will be made safer",
                          "building designs will look nicer"], "label": ["A", "B", "C"]},
     "answerKey": "B"},
    {"id": "NYSEDREGENTS_2015_4_8",
     "question": "Which object is the best conductor of electricity?",
     "choices": {"text": ["a wax crayon", "a plastic spoon", "a rubber eraser", "an iron nail"],
                 "label": ["1", "2", "3", "4"]},
     "answerKey": "4"},
]
LETTERED = [
    {"question": "What is the capital of France?", "A": "Berlin", "B": "Paris", "C": "Rome",
     "D": "Madrid", "answer": "B"},
    {"question": "2 + 2 = ?", "A": "3", "B": "5", "C": "4", "D": "22", "answer": "c"},
    {"question": "Which is a prime?", "A": "9", "B": "15", "C": "21", "D": "7", "answer": "3"},
]
PROMPT_ANSWER_NUMERIC = [
    {"prompt": "What is 17 * 3?", "answer": "51"},
    {"prompt": "What is 1,000 + 234?", "answer": "1,234"},
    {"prompt": "Half of 3?", "answer": 1.5},
]
PROMPT_ANSWER_TEXT = [
    {"prompt": "Capital of Italy?", "answer": "Rome"},
    {"prompt": "Opposite of hot?", "answer": "cold"},
    {"prompt": "How many legs has a spider?", "answer": "8"},
]
PROMPT_ONLY = [
    {"prompt": "Write a haiku about autumn.", "category": "poetry"},
    {"prompt": "Describe the taste of salt.", "category": "senses"},
    {"prompt": "Tell a short story about a robot.", "category": "fiction"},
]


def _detect(rows: list[dict[str, Any]]) -> Any:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    preset = detect(columns, rows)
    assert preset is not None
    return preset


def _normalise(mapping: ColumnMapping, rows: list[dict[str, Any]], name: str = "d.jsonl"
               ) -> tuple[list[NormalRow | None], ErrorLog]:
    errors = ErrorLog(name)
    return [normalise(mapping, Record(f"line {n}", row), errors)
            for n, row in enumerate(rows, start=1)], errors


# --- Presets ------------------------------------------------------------------------


def test_it_recognises_gsm8k_and_takes_the_answer_after_the_marks() -> None:
    preset = _detect(GSM8K)
    assert preset.name == "gsm8k"
    assert preset.mapping == ColumnMapping(kind="math", prompt="question", answer="answer",
                                           answer_format="gsm8k")
    rows, errors = _normalise(preset.mapping, GSM8K)
    assert not errors
    assert [row.answer for row in rows if row] == ["72", "10", "1200"]
    assert rows[0] == NormalRow(prompt=GSM8K[0]["question"], answer="72", metadata={})


def test_it_recognises_math_and_takes_the_last_boxed_answer() -> None:
    preset = _detect(MATH)
    assert preset.name == "math"
    assert preset.mapping == ColumnMapping(kind="math", prompt="problem", answer="solution",
                                           answer_format="boxed", metadata=("level", "type"))
    rows, errors = _normalise(preset.mapping, MATH)
    assert not errors
    assert [row.answer for row in rows if row] == ["2", "10", "\\frac{\\sqrt{3}}{2}"]
    assert rows[0] and rows[0].metadata == {"level": "Level 3", "type": "Algebra"}


def test_it_prefers_a_math_answer_column_when_there_is_one() -> None:
    rows = [{**row, "answer": "2", "unique_id": f"test/{n}.json"}
            for n, row in enumerate(MATH)]
    preset = _detect(rows)
    assert preset.mapping.answer == "answer" and preset.mapping.answer_format == "plain"
    assert preset.mapping.id == "unique_id"


def test_it_recognises_humaneval() -> None:
    preset = _detect(HUMANEVAL)
    assert preset.name == "humaneval"
    assert preset.mapping == ColumnMapping(kind="code", prompt="prompt", tests="test",
                                           entry_point="entry_point", id="task_id",
                                           canonical_solution="canonical_solution")
    rows, errors = _normalise(preset.mapping, HUMANEVAL)
    assert not errors
    row = rows[0]
    assert row == NormalRow(prompt=HUMANEVAL[0]["prompt"], answer="", metadata={
        "id": "HumanEval/0", "test": HUMANEVAL[0]["test"], "entry_point": "total",
        "canonical_solution": "    return sum(numbers)\n"})


def _run_check(row: NormalRow, solution: str) -> None:
    """Run a normalised code row's test against a solution (trusted test data only)."""
    namespace: dict[str, Any] = {}
    exec(solution, namespace)  # noqa: S102
    exec(row.metadata["test"], namespace)  # noqa: S102
    namespace["check"](namespace[row.metadata["entry_point"]])


def test_it_recognises_mbpp_and_builds_a_check_program() -> None:
    preset = _detect(MBPP)
    assert preset.name == "mbpp"
    mapping = preset.mapping
    assert (mapping.kind, mapping.tests, mapping.id, mapping.canonical_solution) == (
        "code", "test_list", "task_id", "code")
    rows, errors = _normalise(mapping, MBPP)
    assert not errors
    first = rows[0]
    assert first is not None
    assert first.prompt == (
        "Write a function to find the shared elements from the given two lists.\n"
        "Your code should pass these tests:\n" + "\n".join(MBPP[0]["test_list"]))
    assert first.metadata["entry_point"] == "similar_elements"
    assert first.metadata["test"] == (
        "def check(candidate):\n"
        "    assert set(candidate((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))\n"
        "    assert set(candidate((1, 2, 3, 4), (5, 4, 3, 7))) == set((3, 4))\n")
    assert first.metadata["id"] == "2"
    assert first.metadata["canonical_solution"] == MBPP[0]["code"]
    for row, source in zip(rows, MBPP, strict=True):
        assert row is not None
        _run_check(row, source["code"])
    assert [row.metadata["entry_point"] for row in rows if row] == [
        "similar_elements", "is_not_prime", "heap_queue_largest"]


def test_it_puts_mbpp_test_imports_before_the_check() -> None:
    rows = [{"task_id": 1, "prompt": "Write a function for the square root.",
             "code": "import math\ndef root(x):\n    return math.sqrt(x)",
             "test_imports": ["import math"],
             "test_list": ["assert math.isclose(root(4), 2)"]}]
    preset = _detect(rows)
    assert preset.name == "mbpp" and preset.mapping.test_setup == "test_imports"
    [row], errors = _normalise(preset.mapping, rows)
    assert not errors and row is not None
    assert row.metadata["test"] == (
        "import math\n\n\ndef check(candidate):\n    assert math.isclose(candidate(4), 2)\n")
    _run_check(row, rows[0]["code"])


def test_it_recognises_mmlu() -> None:
    preset = _detect(MMLU)
    assert preset.name == "mmlu"
    assert preset.mapping == ColumnMapping(kind="choice", prompt="question",
                                           choices=("choices",), answer_key="answer",
                                           metadata=("subject",))
    rows, errors = _normalise(preset.mapping, MMLU)
    assert not errors
    assert [row.answer for row in rows if row] == ["B", "B", "C"]
    assert rows[0] == NormalRow(
        prompt="Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3",
        answer="B", metadata={"subject": "abstract_algebra", "choices": ["0", "1", "2", "3"]})


def test_it_recognises_arc_with_letter_and_digit_labels() -> None:
    preset = _detect(ARC)
    assert preset.name == "arc"
    assert preset.mapping == ColumnMapping(kind="choice", prompt="question",
                                           choices=("choices",), answer_key="answerKey",
                                           id="id")
    rows, errors = _normalise(preset.mapping, ARC)
    assert not errors
    assert [row.answer for row in rows if row] == ["C", "B", "D"]
    assert rows[1] and rows[1].prompt.endswith(
        "\nA. buildings will be built faster\nB. buildings will be made safer\n"
        "C. building designs will look nicer")
    assert rows[2] and rows[2].metadata["id"] == "NYSEDREGENTS_2015_4_8"


def test_it_recognises_choices_as_lettered_columns() -> None:
    preset = _detect(LETTERED)
    assert preset.name == "lettered"
    assert preset.mapping == ColumnMapping(kind="choice", prompt="question",
                                           choices=("A", "B", "C", "D"), answer_key="answer")
    rows, errors = _normalise(preset.mapping, LETTERED, "d.csv")
    assert not errors
    assert [row.answer for row in rows if row] == ["B", "C", "D"]
    assert rows[0] and rows[0].metadata["choices"] == ["Berlin", "Paris", "Rome", "Madrid"]


def test_it_recognises_prompt_answer_as_math_when_answers_are_numbers() -> None:
    preset = _detect(PROMPT_ANSWER_NUMERIC)
    assert preset.name == "prompt_answer"
    assert preset.mapping == ColumnMapping(kind="math", prompt="prompt", answer="answer")
    rows, errors = _normalise(preset.mapping, PROMPT_ANSWER_NUMERIC)
    assert not errors and [row.answer for row in rows if row] == ["51", "1,234", "1.5"]


def test_it_recognises_prompt_answer_as_exact_otherwise() -> None:
    preset = _detect(PROMPT_ANSWER_TEXT)
    assert preset.mapping == ColumnMapping(kind="exact", prompt="prompt", answer="answer")


def test_it_recognises_prompts_only_as_open_ended() -> None:
    preset = _detect(PROMPT_ONLY)
    assert preset.name == "prompt_only"
    assert preset.mapping == ColumnMapping(kind="open", prompt="prompt")
    rows, errors = _normalise(ColumnMapping(kind="open", prompt="prompt",
                                            metadata=("category",)), PROMPT_ONLY)
    assert not errors
    assert rows[0] == NormalRow(prompt="Write a haiku about autumn.", answer="",
                                metadata={"category": "poetry"})


def test_it_recognises_nothing_without_a_prompt_column() -> None:
    assert detect(["foo", "bar"], [{"foo": 1, "bar": 2}]) is None


def test_it_skips_an_id_column_with_repeated_values() -> None:
    rows = [{"id": "a", "prompt": "p"}, {"id": "a", "prompt": "q"}]
    assert _detect(rows).mapping.id == ""


# --- Normalising: the failures -------------------------------------------------------


def test_it_reports_missing_and_wrongly_typed_fields() -> None:
    mapping = ColumnMapping(kind="exact", prompt="prompt", answer="answer", id="id")
    rows, errors = _normalise(mapping, [
        {"answer": "x", "id": "1"},
        {"prompt": 3, "answer": ["x"], "id": True},
        {"prompt": "  \n", "answer": None, "id": ""},
        {"prompt": "fine", "answer": 7, "id": 5},
    ])
    assert rows[:3] == [None, None, None]
    assert rows[3] == NormalRow(prompt="fine", answer="7", metadata={"id": "5"})
    assert errors.messages == [
        "d.jsonl, line 1, field 'prompt': is missing",
        "d.jsonl, line 2, field 'id': must be a non-empty string or an integer, not a boolean",
        "d.jsonl, line 2, field 'prompt': must be a string, not a number",
        "d.jsonl, line 2, field 'answer': must be a string or a number, not a list",
        "d.jsonl, line 3, field 'id': must be a non-empty string or an integer, not empty",
        "d.jsonl, line 3, field 'prompt': is empty",
        "d.jsonl, line 3, field 'answer': must be a string or a number, not null",
    ]


def test_it_reports_answers_without_the_expected_markers() -> None:
    gsm8k = ColumnMapping(kind="math", prompt="q", answer="a", answer_format="gsm8k")
    boxed = ColumnMapping(kind="math", prompt="q", answer="a", answer_format="boxed")
    _, errors = _normalise(gsm8k, [{"q": "x", "a": "42"}, {"q": "x", "a": "so #### "}])
    assert errors.messages == [
        "d.jsonl, line 1, field 'a': has no '####' before the final answer (GSM8K format)",
        "d.jsonl, line 2, field 'a': gives an empty answer",
    ]
    _, errors = _normalise(boxed, [{"q": "x", "a": "it is 2"}, {"q": "x", "a": "\\boxed{2"}])
    assert errors.messages == [
        "d.jsonl, line 1, field 'a': has no \\boxed{...} answer (MATH format)",
        "d.jsonl, line 2, field 'a': has no \\boxed{...} answer (MATH format)",
    ]


def test_it_reports_bad_choices_and_answer_keys() -> None:
    mapping = ColumnMapping(kind="choice", prompt="q", choices=("c",), answer_key="k")
    rows, errors = _normalise(mapping, [
        {"q": "x", "c": "not a list", "k": 0},
        {"q": "x", "c": ["a", {"b": 1}], "k": 0},
        {"q": "x", "c": ["only"], "k": 0},
        {"q": "x", "c": ["a", "b"], "k": 2},
        {"q": "x", "c": ["a", "b"], "k": "C"},
        {"q": "x", "c": ["a", "b"], "k": "maybe"},
        {"q": "x", "c": ["a", "b"], "k": True},
        {"q": "x", "c": {"text": ["a", "b"], "label": ["A"]}, "k": "A"},
        {"q": "x", "c": {"text": ["a", "b"], "label": ["A", "B"]}, "k": "Z"},
        {"q": "x", "c": '["a", "b"]', "k": "1"},
    ])
    assert rows[:-1] == [None] * 9
    assert rows[-1] == NormalRow(prompt="x\nA. a\nB. b", answer="B",
                                 metadata={"choices": ["a", "b"]})
    assert errors.messages == [
        "d.jsonl, line 1, field 'c': must be a list of strings, not a string",
        "d.jsonl, line 2, field 'c': must be a list of strings",
        "d.jsonl, line 3, field 'c': has 1 choices; a question needs 2 to 26",
        "d.jsonl, line 4, field 'k': is 2, but there are only 2 choices",
        "d.jsonl, line 5, field 'k': is 'C', but there are only 2 choices",
        "d.jsonl, line 6, field 'k': must be a letter (A, B, ...) or a 0-based index, "
        "not 'maybe'",
        "d.jsonl, line 7, field 'k': must be a letter (A, B, ...) or a 0-based index, "
        "not a boolean",
        "d.jsonl, line 8, field 'c': must hold 'text' and 'label' lists of the same length",
        "d.jsonl, line 9, field 'k': is 'Z', which is not one of the choice labels "
        "['A', 'B']",
    ]


def test_it_reports_a_missing_choice_column() -> None:
    mapping = ColumnMapping(kind="choice", prompt="q", choices=("A", "B", "C"), answer_key="k")
    _, errors = _normalise(mapping, [{"q": "x", "A": "1", "B": "2", "k": "A"}], "d.csv")
    assert errors.messages == ["d.csv, line 1, field 'C': is missing"]


def test_it_reports_code_tests_that_cannot_work() -> None:
    mapping = ColumnMapping(kind="code", prompt="prompt", tests="test",
                            entry_point="entry_point")
    good = HUMANEVAL[0]
    rows, errors = _normalise(mapping, [
        {**good, "test": "def check(candidate):\n    assert candidate(1) ==\n"},
        {**good, "test": "def test_it():\n    assert True\n"},
        {**good, "entry_point": "not a name"},
        {**good, "entry_point": "class"},
        {**good, "test": 42},
        {**good, "test": ""},
    ])
    assert rows == [None] * 6
    assert errors.messages == [
        "d.jsonl, line 1, field 'test': is not valid Python (its line 2: invalid syntax)",
        "d.jsonl, line 2, field 'test': defines no check(candidate) function",
        "d.jsonl, line 3, field 'entry_point': 'not a name' is not a Python function name",
        "d.jsonl, line 4, field 'entry_point': 'class' is not a Python function name",
        "d.jsonl, line 5, field 'test': must be a test program (a string) or a list of "
        "asserts, not a number",
        "d.jsonl, line 6, field 'test': is empty",
    ]


def test_it_reports_mbpp_tests_that_cannot_work() -> None:
    mapping = ColumnMapping(kind="code", prompt="text", tests="test_list")
    rows, errors = _normalise(mapping, [
        {"text": "t", "test_list": []},
        {"text": "t", "test_list": ["assert f(1) ==", "assert f(2)"]},
        {"text": "t", "test_list": ["assert True"]},
        {"text": "t", "test_list": [1]},
    ])
    assert rows == [None] * 4
    assert errors.messages == [
        "d.jsonl, line 1, field 'test_list': has no tests",
        "d.jsonl, line 2, field 'test_list': test 1 is not valid Python (its line 1: "
        "invalid syntax)",
        "d.jsonl, line 3, field 'test_list': the first test calls no function: map an entry "
        "point column",
        "d.jsonl, line 4, field 'test_list': must be a list of strings (assert statements)",
    ]


def test_it_takes_the_entry_point_from_the_prompt_when_unmapped() -> None:
    mapping = ColumnMapping(kind="code", prompt="prompt", tests="test")
    [row], errors = _normalise(mapping, [HUMANEVAL[1]])
    assert not errors and row and row.metadata["entry_point"] == "largest"


def test_it_fills_a_template_from_several_columns() -> None:
    mapping = ColumnMapping(kind="exact", template="Context: {context}\nQ: {question} {{x}}",
                            answer="answer")
    rows, errors = _normalise(mapping, [
        {"context": "Sky", "question": "Colour?", "answer": "blue"},
        {"context": ["a", "b"], "question": 3, "answer": "x"},
        {"context": "c", "answer": "x"},
        {"context": {"k": 1}, "question": "q", "answer": "x"},
    ])
    assert rows[0] == NormalRow(prompt="Context: Sky\nQ: Colour? {x}", answer="blue",
                                metadata={})
    assert rows[1] and rows[1].prompt == "Context: a\nb\nQ: 3 {x}"
    assert rows[2:] == [None, None]
    assert errors.messages == [
        "d.jsonl, line 3, field 'question': is missing",
        "d.jsonl, line 4, field 'context': is an object, which the prompt template cannot "
        "show",
    ]


def test_it_rejects_repeated_ids_listing_each() -> None:
    mapping = ColumnMapping(kind="open", prompt="p", id="id")
    records = [Record(f"line {n}", {"p": "x", "id": key})
               for n, key in enumerate(["a", "b", "a", 7, "7", "a"], start=1)]
    errors = ErrorLog("d.jsonl")
    rows = list(normalise_records(mapping, records, errors))
    assert [row.metadata["id"] for row in rows] == ["a", "b", "7"]
    assert errors.messages == [
        "d.jsonl, line 3, field 'id': repeats the id 'a' (first on line 1)",
        "d.jsonl, line 5, field 'id': repeats the id '7' (first on line 4)",
        "d.jsonl, line 6, field 'id': repeats the id 'a' (first on line 1)",
    ]


def test_it_keeps_missing_metadata_columns_as_null() -> None:
    mapping = ColumnMapping(kind="open", prompt="p", metadata=("m",))
    [row], _ = _normalise(mapping, [{"p": "x"}])
    assert row == NormalRow(prompt="x", answer="", metadata={"m": None})


# --- The mapping itself -------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "poetry", "prompt": "p"}, "unknown task kind 'poetry'"),
    ({"kind": "open"}, "choose the prompt column, or write a prompt template"),
    ({"kind": "open", "prompt": "p", "template": "{p}"}, "not both"),
    ({"kind": "math", "prompt": "p"}, "a math dataset needs the reference answer column"),
    ({"kind": "exact", "prompt": "p"}, "needs the reference answer column"),
    ({"kind": "regex", "prompt": "p"}, "needs the reference answer column"),
    ({"kind": "choice", "prompt": "p", "answer_key": "k"}, "needs the choices"),
    ({"kind": "choice", "prompt": "p", "choices": ("c",)}, "needs the answer key column"),
    ({"kind": "code", "prompt": "p"}, "a code dataset needs the tests column"),
    ({"kind": "math", "prompt": "p", "answer": "a", "answer_format": "latex"},
     "unknown answer format 'latex'"),
    ({"kind": "open", "template": "Q: {}"}, "must name a column"),
    ({"kind": "open", "template": "Q: {q.__class__}"}, "must be a plain column name"),
    ({"kind": "open", "template": "Q: {q"}, "write literal braces as {{ and }}"),
    ({"kind": "open", "template": "no columns"}, "names no column"),
    ({"kind": "open", "prompt": "p", "metadata": ("m", "m")}, "more than once"),
    ({"kind": "open", "prompt": "p", "metadata": "m"}, "must be a list of column names"),
])
def test_it_validates_the_mapping(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", "\\{").replace("(", "\\(")
                       .replace(")", "\\)").replace(".", "\\.")):
        ColumnMapping(**kwargs)


def test_it_round_trips_through_json() -> None:
    mapping = ColumnMapping(kind="choice", template="Q: {q}", choices=("A", "B"),
                            answer_key="k", id="id", metadata=("subject",))
    data = json.loads(json.dumps(mapping.to_dict()))
    assert data["choices"] == ["A", "B"]
    assert ColumnMapping.from_dict(data) == mapping
    with pytest.raises(ValueError, match="unknown column mapping keys: colour"):
        ColumnMapping.from_dict({**data, "colour": "red"})
    with pytest.raises(ValueError, match="needs a kind"):
        ColumnMapping.from_dict({"prompt": "p"})


def test_it_lists_the_columns_a_mapping_reads() -> None:
    mapping = ColumnMapping(kind="choice", template="{q} ({subject})", choices=("A", "B"),
                            answer_key="k", id="id", metadata=("subject",))
    assert mapping.columns == ("k", "id", "q", "subject", "A", "B")


def test_it_extracts_answers() -> None:
    assert gsm8k_answer("a #### 1 #### 2,500,000 ") == "2500000"
    assert gsm8k_answer("no marks") is None
    assert boxed_answer("\\boxed{1} then \\boxed{\\{a\\} \\cup {b}}") == "\\{a\\} \\cup {b}"
    assert boxed_answer("\\fbox{7}") == "7"


# --- Hash and preview ---------------------------------------------------------------


def test_it_hashes_the_same_content_the_same_way() -> None:
    mapping = ColumnMapping(kind="math", prompt="q", answer="a")
    rows = [NormalRow("q1", "1", {"b": 1, "a": [1, 2]}), NormalRow("q2", "2", {})]
    same = [NormalRow("q1", "1", {"a": [1, 2], "b": 1}), NormalRow("q2", "2", {})]
    first = content_hash(iter(rows), mapping, "math")
    assert first == content_hash(same, mapping, "math")
    assert len(first) == 64
    assert first != content_hash(rows[:1], mapping, "math")
    assert first != content_hash(rows, mapping, "exact")
    assert first != content_hash([NormalRow("q1\nq2", "1", {}), NormalRow("", "2", {})],
                                 mapping, "math")
    assert first != content_hash(rows, ColumnMapping(kind="math", prompt="q", answer="b"),
                                 "math")


def test_it_previews_columns_and_first_rows_without_reading_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"q": f"q{n}", "a": n} if n % 2 else {"q": f"q{n}", "extra": True})
             for n in range(20)]
    path.write_bytes("\n".join(lines).encode() + b"\n" + b"\xff broken\n" * 10_000)
    columns, rows, errors = preview(path, "d.jsonl", "jsonl", rows=5)
    assert columns == ["q", "extra", "a"]
    assert rows == [{"q": "q0", "extra": True}, {"q": "q1", "a": 1}, {"q": "q2", "extra": True},
                    {"q": "q3", "a": 3}, {"q": "q4", "extra": True}]
    assert not errors


def test_it_previews_a_bad_file_with_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"q,a\n1,2,3\n4,5\n")
    columns, rows, errors = preview(path, "d.csv", "csv")
    assert columns == ["q", "a"] and rows == [{"q": "4", "a": "5"}]
    assert errors.messages == ["d.csv, record 1 (line 2): has 3 cells but the header has 2 "
                               "columns"]
    path.write_bytes(b"")
    assert preview(path, "d.csv", "csv")[2].messages == ["d.csv: has no rows"]


def test_it_stops_a_preview_of_garbage_at_the_error_cap(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"nope\n" * 100_000)
    _, rows, errors = preview(path, "d.jsonl", "jsonl")
    assert rows == [] and errors.stopped and errors.total == 50


def test_normalised_code_tests_parse() -> None:
    rows, _ = _normalise(_detect(MBPP).mapping, MBPP)
    for row in rows:
        assert row is not None
        ast.parse(row.metadata["test"])
