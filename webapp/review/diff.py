"""A side-by-side diff of two candidates as plain data (the template escapes every piece).

``difflib.HtmlDiff`` is not used: it writes markup itself and would have to be marked
safe. Here lines are paired with ``SequenceMatcher`` and a changed pair is split into
equal and changed runs of characters, each a plain string.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import zip_longest

#: Lines longer than this are compared as a whole (character matching is quadratic).
INTRALINE_LIMIT = 2_000


@dataclass(frozen=True)
class Piece:
    text: str
    changed: bool


@dataclass(frozen=True)
class DiffRow:
    """One row of the side-by-side table: a line on either side (or none) and whether
    the row is equal, changed, only on the left (deleted) or only on the right (added)."""

    kind: str  # "equal" | "replace" | "delete" | "insert"
    left_number: int | None
    left: tuple[Piece, ...]
    right_number: int | None
    right: tuple[Piece, ...]


def _intraline(a: str, b: str) -> tuple[tuple[Piece, ...], tuple[Piece, ...]]:
    if len(a) > INTRALINE_LIMIT or len(b) > INTRALINE_LIMIT:
        return (Piece(a, True),), (Piece(b, True),)
    left: list[Piece] = []
    right: list[Piece] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append(Piece(a[i1:i2], tag != "equal"))
        if j2 > j1:
            right.append(Piece(b[j1:j2], tag != "equal"))
    return tuple(left), tuple(right)


def side_by_side(a: str, b: str) -> list[DiffRow]:
    """Rows of a line diff of ``a`` (left) against ``b`` (right).

    >>> [(r.kind, r.left_number, r.right_number) for r in side_by_side("x\\ny", "x\\nz\\nw")]
    [('equal', 1, 1), ('replace', 2, 2), ('insert', None, 3)]
    """
    left_lines, right_lines = a.splitlines(), b.splitlines()
    rows: list[DiffRow] = []
    matcher = SequenceMatcher(None, left_lines, right_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                line = left_lines[i1 + offset]
                rows.append(DiffRow("equal", i1 + offset + 1, (Piece(line, False),),
                                    j1 + offset + 1, (Piece(line, False),)))
            continue
        pairs = zip_longest(range(i1, i2), range(j1, j2))
        for i, j in pairs:
            if i is not None and j is not None:
                left, right = _intraline(left_lines[i], right_lines[j])
                rows.append(DiffRow("replace", i + 1, left, j + 1, right))
            elif i is not None:
                rows.append(DiffRow("delete", i + 1, (Piece(left_lines[i], True),), None, ()))
            elif j is not None:
                rows.append(DiffRow("insert", None, (), j + 1, (Piece(right_lines[j], True),)))
    return rows


def parse_pair(values: list[str]) -> list[int]:
    """Candidate ids from ``?diff=a,b`` or ``?diff=a&diff=b`` (what a form of checkboxes
    sends), in order and without repeats; anything that is not a number is ignored.

    >>> parse_pair(["12,7"]), parse_pair(["3", "9"]), parse_pair(["x", "4,4"])
    ([12, 7], [3, 9], [4])
    """
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part.isdigit() and int(part) not in ids:
                ids.append(int(part))
    return ids
