r"""Structured answers (ALGORITHMS §17 steps 3-5): read an answer form into its shape.

``parse_structure`` turns an answer form (see ``normalize.answer_form``) into one of:

- ``("number", NumberValue)``; ``("text", words)`` (case-folded); ``("empty",)`` (the empty
  set, "no solution");
- ``("seq", open, close, elements)``: a tuple, point or interval (``(1,2)``, ``[0,1)``);
- ``("set", elements)``: a set ``\{..\}``, the two values of ``a \pm b``, a union of
  intervals; ``("list", elements)``: a bare list ``1, 2 and 3`` (unordered, like a set,
  but it may also stand for a point); ``("matrix", rows)``;
- ``("assign", name, value)``: ``x = 5``, ``f(x) = 2x``, ``width = 5``, and an inequality
  ``x < 3`` or ``x \in [1,2]`` as ``x`` in an interval; ``("system", ((name, value), ...))``
  for several assignments (``x = 1, y = 2``), sorted by name;
- ``("eq", lhs, rhs)`` for any other equation; ``("expr", form)`` for everything else.

Elements are answer forms again, compared by the full equivalence.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from strategies.verify.normalize import answer_form, fraction_key, read_number

__all__ = [
    "Structure",
    "canonical_answer",
    "equation_sides",
    "is_name",
    "matrix_cells",
    "name_key",
    "parse_structure",
    "sequence_parts",
    "split_top_level",
    "structure_key",
]

Structure = tuple[Any, ...]  # ("kind", ...) as listed in the module docstring
MAX_FORM_CHARS = 1000  # longer answers are compared as whole strings only

_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|smallmatrix)\}(.*)\\end\{\1\}$", re.DOTALL)
_ARRAY = re.compile(r"^\\begin\{array\}\{[^{}]*\}(.*)\\end\{array\}$", re.DOTALL)
_OPEN, _CLOSE = "([{", ")]}"
_EMPTY = frozenset({"\\emptyset", "\\varnothing", "\\{\\}", "{}", "\\O", "\\empty", "\\phi"})
_EMPTY_WORDS = frozenset(
    {
        "nosolution",
        "nosolutions",
        "norealsolution",
        "norealsolutions",
        "none",
        "noroots",
        "norealroots",
        "emptyset",
        "theemptyset",
        "nosuchvalue",
        "dne",
    }
)
_GREEK = (
    "alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu"
    "|nu|xi|rho|sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Sigma"
    "|Phi|Psi|Omega"
)
_NAME = re.compile(
    rf"(?:[A-Za-z]|\\(?:{_GREEK}))(?:_\{{?[A-Za-z0-9]+\}}?)?'*"
    r"|[A-Za-z]{2,}(?:_\{?[A-Za-z0-9]+\}?)?"
    r"|[A-Za-z]+(?:\^\{-1\})?\([A-Za-z, ]*\)"
)
_RELATION = re.compile(r"\\le(?![A-Za-z])|\\ge(?![A-Za-z])|<|>|\\in(?![A-Za-z])")
_TEXT = re.compile(r"[A-Za-z][A-Za-z' \-]*")
_TEXT_WORDS = frozenset({"yes", "no", "true", "false", "odd", "even"})
_LIST_SEPARATOR = re.compile(r",|;|\s(?:and|or)\s|\\text\{(?:and|or)\}|\\quad")
_UNION = re.compile(r"\\cup(?![A-Za-z])|\\bigcup(?![A-Za-z])")
_PM = re.compile(r"\\pm(?![A-Za-z])|\\mp(?![A-Za-z])")
_INFINITY = "\\infty"


def split_top_level(text: str, separator: str | re.Pattern[str] = ",") -> list[str] | None:
    """Split on ``separator`` outside brackets; ``None`` when the brackets do not balance.

    >>> split_top_level("(1,2),f(3,4),5")
    ['(1,2)', 'f(3,4)', '5']
    """
    pattern = re.compile(re.escape(separator)) if isinstance(separator, str) else separator
    parts: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(text):
        char = text[i]
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and (match := pattern.match(text, i)) is not None and match.end() > i:
            parts.append(text[start:i])
            start = i = match.end()
            continue
        i += 1
    if depth != 0:
        return None
    parts.append(text[start:])
    return [part.strip() for part in parts]


def sequence_parts(text: str) -> tuple[str, str, list[str]] | None:
    """Return (open, close, elements) of a bracketed tuple or interval with >= 2 elements.

    >>> sequence_parts("[1,\\\\frac{1}{2})")
    ('[', ')', ['1', '\\\\frac{1}{2}'])
    >>> sequence_parts("(x+1)(x-1)") is None
    True
    """
    text = text.strip()
    if len(text) < 2 or text[0] not in "([" or text[-1] not in ")]":
        return None
    if not _wraps_whole(text):
        return None
    parts = split_top_level(text[1:-1])
    if parts is None or len(parts) < 2 or not all(parts):
        return None
    return text[0], text[-1], parts


def _wraps_whole(text: str) -> bool:
    """True when the first bracket closes only at the very end: ``(a,b)`` but not ``(a)(b)``."""
    depth = 0
    for i, char in enumerate(text):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return False
    return depth == 0


def matrix_cells(text: str) -> list[list[str]] | None:
    r"""Return the cells of a ``pmatrix``/``bmatrix`` answer, row by row, or ``None``.

    >>> matrix_cells(r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}")
    [['1', '2'], ['3', '4']]
    """
    text = text.strip().strip("$").strip()
    match = _MATRIX.match(text)
    body = match.group(2) if match is not None else None
    if body is None and (array := _ARRAY.match(text)) is not None:
        body = array.group(1)
    if body is None:
        return None
    rows = [row for row in re.split(r"\\\\", body) if row.strip()]
    return [[cell.strip() for cell in row.split("&")] for row in rows] or None


def equation_sides(text: str) -> tuple[str, str] | None:
    """Return (lhs, rhs) of an answer with exactly one plain ``=``, or ``None``.

    >>> equation_sides("y = 2x + 1"), equation_sides("a <= b")
    (('y', '2x + 1'), None)
    """
    if text.count("=") != 1 or re.search(r"[<>!]=|==", text):
        return None
    lhs, rhs = (side.strip() for side in text.split("="))
    return (lhs, rhs) if lhs and rhs else None


def is_name(text: str) -> bool:
    r"""True for what may stand left of ``=`` as a name: ``x``, ``a_1``, ``\theta``,
    ``width``, ``f(x)``, ``f^{-1}(x)``.

    >>> is_name("x"), is_name("f(x)"), is_name("2x"), is_name("x+y")
    (True, True, False, False)
    """
    return _NAME.fullmatch(text) is not None


def _strip_outer_parens(text: str) -> str:
    """``(x+1)`` -> ``x+1``; ``(1,2)`` and ``(a)(b)`` stay."""
    while (
        len(text) >= 2
        and text[0] == "("
        and text[-1] == ")"
        and _wraps_whole(text)
        and split_top_level(text[1:-1]) == [text[1:-1].strip()]
    ):
        text = text[1:-1].strip()
    return text


def _interval(terms: list[str], relations: list[str]) -> tuple[str, str] | None:
    """Read ``a < x <= b`` / ``x > a`` / ``3 >= x`` as (variable, interval form)."""
    names = [i for i, term in enumerate(terms) if is_name(term) and term != _INFINITY]
    if len(names) != 1 or len(terms) > 3:
        return None
    at = names[0]
    low, high = f"-{_INFINITY}", _INFINITY
    low_open = high_open = True
    for i, relation in enumerate(relations):
        left, right = terms[i], terms[i + 1]
        strict = relation in "<>"
        increasing = relation in ("<", "\\le")
        if i + 1 == at:  # bound < x   or   bound > x
            if increasing:
                low, low_open = left, strict
            else:
                high, high_open = left, strict
        elif i == at:  # x < bound   or   x > bound
            if increasing:
                high, high_open = right, strict
            else:
                low, low_open = right, strict
        else:
            return None
    opening = "(" if low_open or low.endswith(_INFINITY) else "["
    closing = ")" if high_open or high.endswith(_INFINITY) else "]"
    return terms[at], f"{opening}{low},{high}{closing}"


def _relation(form: str) -> Structure | None:
    """An inequality chain or ``x \\in S`` as ``("assign", x, interval)``, else ``None``."""
    pieces = _RELATION.split(form)
    relations = _RELATION.findall(form)
    if not relations or any(not piece for piece in pieces):
        return None
    if relations == ["\\in"]:
        return ("assign", pieces[0], pieces[1]) if is_name(pieces[0]) else None
    if "\\in" in relations:
        return None
    read = _interval(pieces, relations)
    return None if read is None else ("assign", read[0], read[1])


def _list(form: str) -> Structure | None:
    """A top-level list (commas, "and", "or", semicolons, unions) as a set, system or assign."""
    union = split_top_level(form, _UNION)
    if union is not None and len(union) >= 2 and all(union):
        return ("set", tuple(union))
    parts = split_top_level(form, _LIST_SEPARATOR)
    if parts is None or len(parts) < 2:
        return None
    parts = [part for part in parts if part]
    if len(parts) < 2:
        return None
    parsed = [parse_structure(part) for part in parts]
    if all(p[0] == "assign" for p in parsed):
        names = [name_key(p[1]) for p in parsed]
        if len(set(names)) == 1:
            return ("assign", parsed[0][1], "\\{" + ",".join(p[2] for p in parsed) + "\\}")
        if len(set(names)) == len(names):
            pairs = sorted(zip(names, (p[2] for p in parsed), strict=True))
            return ("system", tuple(pairs))
    return ("list", tuple(parts))


def name_key(name: str) -> str:
    """A name without spacing and subscript braces: ``a_{1}`` and ``a_1`` are one name."""
    return re.sub(r"_\{(\w+)\}", r"_\1", name.replace(" ", ""))


@functools.lru_cache(maxsize=65536)
def parse_structure(form: str) -> Structure:
    r"""Read an answer form into its shape (see the module docstring).

    >>> parse_structure("x=5"), parse_structure(r"\{3,1\}")
    (('assign', 'x', '5'), ('set', ('3', '1')))
    >>> parse_structure("1<x\\le3"), parse_structure(r"2\pm\sqrt{3}")
    (('assign', 'x', '(1,3]'), ('set', ('2+\\sqrt{3}', '2-\\sqrt{3}')))
    """
    form = form.strip()
    if len(form) > MAX_FORM_CHARS:
        return ("expr", form)
    squashed = form.replace(" ", "").lower()
    if form in _EMPTY or squashed in _EMPTY_WORDS or squashed == "\\{\\}":
        return ("empty",)
    number = read_number(form)
    if number is not None:
        return ("number", number)
    if _TEXT.fullmatch(form) and (form.lower() in _TEXT_WORDS or " " in form or len(form) >= 3):
        return ("text", _text_key(form))
    cells = matrix_cells(form)
    if cells is not None:
        return ("matrix", tuple(tuple(row) for row in cells))
    inner = _strip_outer_parens(form)
    if inner != form:
        return parse_structure(inner)
    listed = _list(form)
    if listed is not None:
        return listed
    braced = _braced_set(form)
    if braced is not None:
        return ("set", braced) if braced else ("empty",)
    sequence = sequence_parts(form)
    if sequence is not None:
        return ("seq", sequence[0], sequence[1], tuple(sequence[2]))
    plus_minus = split_top_level(form, _PM)
    if plus_minus is not None and len(plus_minus) == 2:
        head, tail = plus_minus
        if not head:
            return ("set", (tail, _negated(tail)))
        if "=" in head and is_name(head.split("=")[0]):
            name, value = head.split("=", 1)
            return ("assign", name, _pm_set(value, tail))
        return ("set", (f"{head}+{tail}", f"{head}{_negated(tail)}"))
    if form.count("\\pm") == 1 and "\\mp" not in form:  # "\\frac{-1 \\pm \\sqrt{5}}{2}"
        return ("set", (form.replace("\\pm", "+"), form.replace("\\pm", "-")))
    if _RELATION.search(form):
        relation = _relation(form)
        if relation is not None:
            return relation
    sides = split_top_level(form, "=")
    if sides is not None and len(sides) >= 2 and all(sides):
        if is_name(sides[0]):
            return ("assign", sides[0], sides[-1])
        if len(sides) == 2 and is_name(sides[1]):
            return ("assign", sides[1], sides[0])
        if len(sides) == 2 and not re.search(r"[A-Za-z]", form.replace("\\frac", "")):
            return parse_structure(sides[1])  # "2+3=5": the value is on the right
        if len(sides) == 2:
            return ("eq", sides[0], sides[1])
        return parse_structure(sides[-1])
    return ("expr", form)


def _braced_set(form: str) -> tuple[str, ...] | None:
    """The elements of ``\\{a, b\\}`` (the braces around the whole form), else ``None``."""
    if not (form.startswith("\\{") and form.endswith("\\}")):
        return None
    inner = form[2:-2]
    if not _wraps_whole("{" + inner + "}"):
        return None
    parts = split_top_level(inner)
    return None if parts is None else tuple(part for part in parts if part)


def _negated(text: str) -> str:
    """``-text``, bracketed when ``text`` has a top-level sign."""
    return f"-({text})" if _needs_parens(text) else f"-{text}"


def _needs_parens(text: str) -> bool:
    """True when negating ``text`` needs brackets (it has a top-level + or -)."""
    parts = split_top_level(text, re.compile(r"[+-]"))
    return parts is None or len(parts) > 1


def _pm_set(head: str, tail: str) -> str:
    """The set form of ``head \\pm tail`` (``\\pm 2`` alone when ``head`` is empty)."""
    if not head:
        return f"\\{{{tail},{_negated(tail)}\\}}"
    return f"\\{{{head}+{tail},{head}{_negated(tail)}\\}}"


def _text_key(form: str) -> str:
    """Case-fold a text answer and drop a leading article."""
    words = form.lower().replace("-", " ").split()
    if len(words) > 1 and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


@functools.lru_cache(maxsize=65536)
def structure_key(form: str) -> str:
    r"""A voting key for an answer form: equal keys mean equivalent answers.

    >>> structure_key("18.0"), structure_key(r"\{2,1\}"), structure_key("Monday")
    ('18', '\\{1,2\\}', '\\text{monday}')
    """
    structure = parse_structure(form)
    kind = structure[0]
    if kind == "number":
        return fraction_key(structure[1].value)  # a % sign is dropped, as in normalize_answer
    if kind == "empty":
        return "\\emptyset"
    if kind == "text":
        return f"\\text{{{structure[1]}}}"
    if kind in ("set", "list"):
        keys = sorted({structure_key(part) for part in structure[1]})
        return "\\{" + ",".join(keys) + "\\}"
    if kind == "seq":
        _, opening, closing, parts = structure
        return opening + ",".join(structure_key(part) for part in parts) + closing
    if kind == "matrix":
        rows = ("&".join(structure_key(cell) for cell in row) for row in structure[1])
        return "\\begin{pmatrix}" + "\\\\".join(rows) + "\\end{pmatrix}"
    if kind == "assign":
        return f"{name_key(structure[1])}={structure_key(structure[2])}"
    if kind == "system":
        return ",".join(f"{name}={structure_key(value)}" for name, value in structure[1])
    return form


@functools.lru_cache(maxsize=65536)
def canonical_answer(answer: str | None) -> str | None:
    """Return a hashable voting key: equal for answers that are the same number.

    Numbers become their reduced exact value ("18", "18.0" and "18.00" give "18";
    "2/4", "0.5" and ``\\frac{1}{2}`` give "1/2"); a ``%`` sign is dropped, as in the
    string normalisation. Sets are sorted, text answers case-folded, anything else is
    its comparison form (``answer_form``). Empty answers give ``None``.

    >>> canonical_answer("18.00"), canonical_answer(r"\\dfrac{2}{4}"), canonical_answer("x + 1")
    ('18', '1/2', 'x+1')
    """
    if answer is None:
        return None
    form = answer_form(answer)
    if not form:
        return None
    return structure_key(form)
