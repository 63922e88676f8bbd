"""The side-by-side diff as plain data: lines paired, changed characters marked."""

from __future__ import annotations

from webapp.review.diff import INTRALINE_LIMIT, Piece, parse_pair, side_by_side


def test_it_pairs_changed_lines_and_marks_the_changed_characters() -> None:
    rows = side_by_side("same\nthe answer is 4\ngone", "same\nthe answer is 5")
    assert [r.kind for r in rows] == ["equal", "replace", "delete"]
    changed = rows[1]
    assert changed.left == (Piece("the answer is ", False), Piece("4", True))
    assert changed.right == (Piece("the answer is ", False), Piece("5", True))
    assert (rows[2].left_number, rows[2].right_number, rows[2].right) == (3, None, ())


def test_it_keeps_markup_as_plain_text_for_the_template_to_escape() -> None:
    [row] = side_by_side("<b>x</b>", "<i>x</i>")
    assert "".join(p.text for p in row.left) == "<b>x</b>"
    assert "".join(p.text for p in row.right) == "<i>x</i>"


def test_it_compares_very_long_lines_whole() -> None:
    a, b = "a" * (INTRALINE_LIMIT + 1), "b" * 10
    [row] = side_by_side(a, b)
    assert row.left == (Piece(a, True),) and row.right == (Piece(b, True),)


def test_identical_and_empty_texts() -> None:
    assert side_by_side("", "") == []
    assert all(r.kind == "equal" for r in side_by_side("a\nb", "a\nb"))
    assert [r.kind for r in side_by_side("", "new")] == ["insert"]


def test_it_reads_both_ways_of_naming_two_candidates() -> None:
    assert parse_pair(["4,9"]) == [4, 9]
    assert parse_pair(["4", "9"]) == [4, 9]
    assert parse_pair(["", "x,-1", "7"]) == [7]
