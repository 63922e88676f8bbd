"""Answer extraction from model output (ALGORITHMS §17)."""

from __future__ import annotations

import pytest

from strategies.verify.extract import extract_answer, last_boxed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GSM8K "#### x", with clean-up of "," and "$" and a trailing "."
        ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72"),
        ("#### 1,200.", "1200"),
        ("The total is $5.\n#### $5", "5"),
        ("#### -3", "-3"),
        # "The answer is X", case-insensitive, the last one wins
        ("47 + 38 = 85. The answer is 85.", "85"),
        ("the answer is 12 apples", "12"),
        ("The answer is 3. Wait, no. The answer is 4.", "4"),
        ("THE ANSWER IS: -7", "-7"),
        ("The answer is 1,234,567.", "1234567"),
        ("The answer is 3/4.", "3/4"),
        ("The answer is 2.5", "2.5"),
        ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
        ("The answer is $\\boxed{17}$.", "17"),
        ("The answer is x = 5.", "x = 5"),  # the name is kept: x = 5 is not y = 5
        ("The answer is **42**.", "42"),
        ("The answer is 12.\nQuestion: What is 3 + 4?", "12"),
        # the last \boxed{}, brace-matched
        ("so we get \\boxed{\\frac{\\sqrt{2}}{2}} finally", "\\frac{\\sqrt{2}}{2}"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\fbox{9}", "9"),
        ("$\\boxed 5$", "5"),
        ("\\boxed{(1, 2)}", "(1, 2)"),
        # the last number
        ("I think 3 and then 1,000 more", "1000"),
        ("It drops to -12 degrees", "-12"),
        ("x is 0.75.", "0.75"),
        ("a = 7, b = 8,", "8"),
    ],
)
def test_it_extracts_the_final_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text", ["", "I do not know.", "The answer is the number of apples.", "\\boxed{"]
)
def test_it_returns_none_without_a_number(text: str) -> None:
    assert extract_answer(text) is None


def test_it_keeps_a_short_word_answer() -> None:
    assert extract_answer("The answer is (C).") == "(C)"


def test_it_prefers_gsm8k_over_later_numbers() -> None:
    assert extract_answer("#### 18\nQuestion 2: 7 + 9 = 16") == "18"


def test_it_falls_through_an_empty_answer_phrase() -> None:
    assert extract_answer("5 + 5 = 10 so the answer is") == "10"


def test_it_matches_nested_braces_in_boxes() -> None:
    assert last_boxed("\\boxed{{a}{b{c}}}") == "{a}{b{c}}"


def test_it_gives_none_for_an_unbalanced_box() -> None:
    assert last_boxed("\\boxed{\\frac{1}{2}") is None
    assert last_boxed("no box here") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the last final-answer marker wins (ALGORITHMS §17)
        (
            "So the answer is 10. Oops, I forgot the 2 extra boxes: 10 + 2 = 12.\n$\\boxed{12}$",
            "12",
        ),
        ("Adding gives $\\boxed{34}$. Wait, the corner was counted twice: $\\boxed{33}$.", "33"),
        ("Answer: 36 cookies. Then 12 are eaten and 6 given away.\n#### 18", "18"),
        # a marker whose value is prose is passed over
        ("The answer is $\\boxed{15}$. Check: 15 * 4 = 60, so the answer is consistent.", "15"),
        # GSM8K's #### is read to the end of its line; a new question after it is cut off
        ("12 * 52 = 624.\n#### 624\n\nQuestion: John has 5 apples.\nThe answer is 3.", "624"),
        # the last-number fallback reads fractions, percentages and signed currency
        ("Of 8 slices 3 have ham, so the probability is 3/8.", "3/8"),
        ("An increase of 20 on 80 is 25%.", "25%"),
        ("He spent $45 and $25 of his $50, a balance of -$20.", "-20"),
        ("The sum is 1{,}000 and not less.", "1000"),
        ("She used 3 1/2 cups.", "3 1/2"),
        # a number after "not" is passed over; a point or matrix is read whole
        ("The number we want is 27, not 72.", "27"),
        ("The lines meet at (3, -4).", "(3, -4)"),
        (
            "So $A^2 = \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$.",
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        ),
        # math delimiters are stripped; names and equations are kept
        ("The answer is \\(\\frac{3}{4}\\).", "\\frac{3}{4}"),
        ("Final answer: \\( y = -\\frac{1}{2} \\)", "y = -\\frac{1}{2}"),
        ("The answer is $x^2 + y^2 = 25$.", "x^2 + y^2 = 25"),
        ("The answer is 3 \\times 4 = 12.", "12"),
        ("The final answer is $a = 4$, $b = 5$.", "a = 4, b = 5"),
        # number forms kept as written where math-verify loses them
        ("\\boxed{42.}", "42"),
        ("The answer is \\$5.", "5"),
        ("The answer is 1.5e3.", "1.5e3"),
        ("The answer is 0.333...", "0.333..."),
        ("The answer is five.", "five"),
        ("The answer is 5!.", "5!"),
        ("The answer is (-\\infty, -3] \\cup [3, \\infty).", "(-\\infty, -3] \\cup [3, \\infty)"),
        ("It ends at \u22125.", "-5"),
    ],
)
def test_it_reads_what_the_issue_lists(text: str, expected: str) -> None:
    assert extract_answer(text) == expected
