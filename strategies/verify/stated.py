"""A stated answer (a reviewer's "the answer is X") judged against the reference.

The text verifiers extract an answer from a model's output and compare it with the
reference; a person who reads the output states the answer instead, and it is compared
the same way each verifier compares its own extraction: ``math`` by equivalence (letters
and yes/no by their key, ALGORITHMS section 17), ``exact`` after the same normalisation,
``regex`` as text or as a number, ``choice`` by the letter. The verifiers that judge a
whole output rather than an answer (the model judge, unit tests) cannot judge a bare
answer: ``None``.

>>> stated_answer_passes("math", {}, "0.5", "1/2")
True
>>> stated_answer_passes("choice", {}, "(b)", "B")
True
>>> stated_answer_passes("unit_tests", {}, "42", "42") is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strategies.verify.choice import ChoiceConfig, _reference_letter
from strategies.verify.equivalence import is_equivalent
from strategies.verify.exact import ExactConfig, normalize_exact
from strategies.verify.math import MathAnswerConfig, _gold_answer
from strategies.verify.regex import RegexConfig, _same_number
from strategies.verify.short_text import reference_kind, short_answer_key

__all__ = ["STATED_ANSWER_VERIFIERS", "stated_answer_passes"]


def _math(answer: str, reference: str, config: MathAnswerConfig) -> bool:
    gold = _gold_answer(reference)
    kind = reference_kind(gold)
    if kind is not None:  # a letter or yes/no: compared by key, as verify_math does
        key = short_answer_key(answer, kind)
        return key is not None and key == short_answer_key(gold, kind)
    return is_equivalent(answer.strip(), gold, lenient=config.lenient,
                         symbolic=config.symbolic)


def _exact(answer: str, reference: str, config: ExactConfig) -> bool:
    return normalize_exact(answer, config) == normalize_exact(reference, config)


def _regex(answer: str, reference: str, config: RegexConfig) -> bool:
    left, right = " ".join(answer.split()), " ".join(reference.split())
    if not config.case_sensitive:
        left, right = left.casefold(), right.casefold()
    return left == right or (config.numeric and _same_number(answer, reference))


def _choice(answer: str, reference: str, config: ChoiceConfig) -> bool | None:
    gold = _reference_letter(reference, config.choices)
    if gold is None:  # verify_choice refuses such a reference
        return None
    return _reference_letter(answer, config.choices) == gold


_COMPARE: dict[str, tuple[type[Any], Callable[[str, str, Any], bool | None]]] = {
    "math": (MathAnswerConfig, _math),
    "exact": (ExactConfig, _exact),
    "regex": (RegexConfig, _regex),
    "choice": (ChoiceConfig, _choice),
}

#: The verifiers that can judge a stated answer.
STATED_ANSWER_VERIFIERS = tuple(_COMPARE)


def stated_answer_passes(verifier: str, config: Mapping[str, object], answer: str,
                         reference: str) -> bool | None:
    """Whether ``answer`` is right by ``verifier`` (with its stored ``config``); ``None``
    when that verifier cannot judge a bare answer, or when there is nothing to compare.

    >>> stated_answer_passes("math", {}, "x = 5", "5"), stated_answer_passes("math", {}, "6", "5")
    (True, False)
    >>> stated_answer_passes("exact", {"case_sensitive": True}, "Paris", "paris")
    False
    """
    entry = _COMPARE.get(verifier)
    if entry is None or not answer.strip() or not reference.strip():
        return None
    config_class, compare = entry
    return compare(answer, reference, config_class(**config))
