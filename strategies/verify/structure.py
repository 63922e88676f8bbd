"""Structured answers (ALGORITHMS §17 steps 3-4): tuples, intervals, matrices, equations."""

from __future__ import annotations

import re
from collections.abc import Callable

from strategies.verify.normalize import normalize_answer

__all__ = [
    "equation_sides",
    "matrix_cells",
    "sequence_parts",
    "split_top_level",
    "structural_equal",
]

#: Compares two answer strings (the full equivalence, so elements may be anything).
EqualFn = Callable[[str, str], bool]
#: Compares two expressions symbolically; ``up_to_sign`` also accepts ``a == -b``.
SymbolicFn = Callable[[str, str, bool], bool]

_MATRIX = re.compile(r"^\$*\s*\\begin\{([pbvB]?matrix)\}(.*)\\end\{\1\}\s*\$*$", re.DOTALL)
_OPEN, _CLOSE = "([{", ")]}"


def split_top_level(text: str, separator: str = ",") -> list[str] | None:
    """Split on ``separator`` outside brackets; ``None`` when the brackets do not balance.

    >>> split_top_level("(1,2),f(3,4),5")
    ['(1,2)', 'f(3,4)', '5']
    """
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
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
    inner = text[1:-1]
    parts = split_top_level(inner)
    if parts is None or len(parts) < 2 or not all(parts):
        return None
    return text[0], text[-1], parts


def matrix_cells(text: str) -> list[list[str]] | None:
    r"""Return the cells of a ``pmatrix``/``bmatrix`` answer, row by row, or ``None``.

    >>> matrix_cells(r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}")
    [['1', '2'], ['3', '4']]
    """
    match = _MATRIX.match(text.strip())
    if match is None:
        return None
    rows = [row for row in re.split(r"\\\\", match.group(2)) if row.strip()]
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


def structural_equal(
    pred: str, gold: str, equal: EqualFn, symbolic: SymbolicFn | None
) -> bool | None:
    """Compare matrices, tuples/intervals and equations; ``None`` when neither is one.

    ``pred``/``gold`` are the raw answers: matrices and equations are read from them
    (normalisation would fold the ``\\`` row breaks and drop an ``x =``), tuples and
    intervals from their normalised forms.
    """
    m1, m2 = matrix_cells(pred), matrix_cells(gold)
    if m1 is not None or m2 is not None:
        if m1 is None or m2 is None or [len(r) for r in m1] != [len(r) for r in m2]:
            return False
        cells1 = [cell for row in m1 for cell in row]
        cells2 = [cell for row in m2 for cell in row]
        return all(equal(a, b) for a, b in zip(cells1, cells2, strict=True))
    s1, s2 = sequence_parts(normalize_answer(pred)), sequence_parts(normalize_answer(gold))
    if s1 is not None or s2 is not None:
        if s1 is None or s2 is None or s1[:2] != s2[:2] or len(s1[2]) != len(s2[2]):
            return False
        return all(equal(a, b) for a, b in zip(s1[2], s2[2], strict=True))
    e1, e2 = equation_sides(pred), equation_sides(gold)
    if e1 is not None and e2 is not None:
        if (equal(e1[0], e2[0]) and equal(e1[1], e2[1])) or (
            equal(e1[0], e2[1]) and equal(e1[1], e2[0])
        ):
            return True
        if symbolic is None:
            return False
        return symbolic(f"{e1[0]}-({e1[1]})", f"{e2[0]}-({e2[1]})", True)
    return None
