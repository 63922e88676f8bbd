"""The math verifier on a labelled corpus of realistic model outputs (issue 14, ALGORITHMS §17).

``math_corpus.jsonl`` holds hand-written (output, reference, expected verdict) cases, one
JSON object a line, in classes (``class``); ``near_miss`` marks wrong answers that are
close to the reference (off by one, tiny values, rounding, a flipped sign), which must
never be accepted. The test also reports how often plain math-verify agrees.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from strategies.verify.math import verify_math

CORPUS = Path(__file__).with_name("math_corpus.jsonl")
MIN_ACCURACY = 0.98


def load_corpus() -> list[dict[str, Any]]:
    """The corpus items, in file order."""
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]


def math_verify_alone(output: str, reference: str, *, wrap: bool = False) -> bool:
    """Plain math-verify: ``verify(parse(reference), parse(output))``; ``wrap`` hands it the
    reference as ``$reference$``, how a bare LaTeX gold is best given to its parser."""
    from math_verify import parse, verify

    return bool(verify(parse(f"${reference}$" if wrap else reference), parse(output)))


def test_it_has_a_large_corpus_of_every_class() -> None:
    items = load_corpus()
    assert len(items) >= 400
    assert all({"output", "reference", "expected", "class"} <= item.keys() for item in items)
    classes = Counter(item["class"] for item in items)
    assert len(classes) >= 40 and min(classes.values()) >= 4
    assert sum(1 for item in items if item.get("near_miss")) >= 40
    assert not any(item["expected"] for item in items if item.get("near_miss"))


def test_it_judges_the_corpus_at_98_percent_with_no_near_miss_accepted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = load_corpus()
    ours = [verify_math(item["output"], item["reference"])[1] for item in items]
    theirs = [math_verify_alone(item["output"], item["reference"]) for item in items]
    wrapped = [math_verify_alone(i["output"], i["reference"], wrap=True) for i in items]
    expected = [bool(item["expected"]) for item in items]
    wrong = [item for item, verdict in zip(items, ours, strict=True) if verdict != item["expected"]]
    near_miss_accepts = [item for item in wrong if item.get("near_miss")]
    accuracy = 1 - len(wrong) / len(items)
    their_accuracy = sum(t == e for t, e in zip(theirs, expected, strict=True)) / len(items)
    agreement = sum(o == t for o, t in zip(ours, theirs, strict=True)) / len(items)
    wrapped_agreement = sum(o == t for o, t in zip(ours, wrapped, strict=True)) / len(items)
    wrapped_accuracy = sum(t == e for t, e in zip(wrapped, expected, strict=True)) / len(items)
    their_near_miss = sum(
        1 for item, t in zip(items, theirs, strict=True) if item.get("near_miss") and t
    )
    with capsys.disabled():
        print(
            f"\nmath corpus: {len(items)} pairs; ours {accuracy:.1%} correct, "
            f"{len(near_miss_accepts)} near-miss accepts; math-verify alone "
            f"{their_accuracy:.1%} correct, {their_near_miss} near-miss accepts; "
            f"agreement with math-verify {agreement:.1%}; with the reference given as "
            f"$reference$ math-verify is {wrapped_accuracy:.1%} correct, agreement "
            f"{wrapped_agreement:.1%}"
        )
        for item in wrong:
            print(f"  wrong [{item['class']}] ref={item['reference']!r}: {item['output'][-90:]!r}")
    assert not near_miss_accepts
    assert accuracy >= MIN_ACCURACY
