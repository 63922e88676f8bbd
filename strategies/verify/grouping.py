"""Group equivalent answers for majority voting (ALGORITHMS §7 "Grouping", §17).

Answers with the same voting key (``canonical_answer``) form one group at once; then
groups whose first answers are equivalent (``is_equivalent``, cached per pair) are merged
by union-find. Pairs that cannot be equal are never compared: two exact numbers with
different keys differ, and a text answer only meets text. The symbolic step's numeric
fingerprint rules out most other pairs before math-verify runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from strategies.verify.equivalence import is_equivalent
from strategies.verify.normalize import answer_form, read_number
from strategies.verify.structure import canonical_answer, parse_structure

__all__ = ["group_answers"]


def _kind(answer: str) -> str:
    """ "exact" (an exact number), "text", or "other" (anything else may equal anything)."""
    form = answer_form(answer)
    number = read_number(form)
    if number is not None:
        return "exact" if number.is_exact and not number.is_percent else "other"
    return "text" if parse_structure(form)[0] == "text" else "other"


def group_answers(
    answers: Sequence[str | None], *, lenient: bool = False, symbolic: bool = True
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Return each answer's group id (``-1`` for ``None``) and each group's first index.

    Groups are numbered in order of first occurrence.

    >>> ids, firsts = group_answers(["7", None, "x = 7", "8", "7.0", r"\\frac{16}{2}"])
    >>> ids.tolist(), firsts
    ([0, -1, 0, 1, 0, 1], (0, 3))
    """
    key_ids: dict[str, int] = {}
    members: list[int] = []  # first answer index of each distinct key
    kinds: list[str] = []
    key_of = np.full(len(answers), -1, dtype=np.int64)
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        key = canonical_answer(answer)
        if key is None:
            continue
        at = key_ids.get(key)
        if at is None:
            at = key_ids[key] = len(members)
            members.append(index)
            kinds.append(_kind(answer))
        elif kinds[at] == "exact" and _kind(answer) != "exact":
            kinds[at] = "other"  # "1/2" and "0.5" share a key; the decimal may meet 0.5000001
        key_of[index] = at
    parent = list(range(len(members)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j in range(1, len(members)):
        for i in range(j):
            if kinds[i] == kinds[j] == "exact" or (
                "text" in (kinds[i], kinds[j]) and kinds[i] != kinds[j]
            ):
                continue
            root_i, root_j = find(i), find(j)
            if root_i == root_j:
                continue
            if is_equivalent(
                answers[members[j]], answers[members[i]], lenient=lenient, symbolic=symbolic
            ):
                parent[max(root_i, root_j)] = min(root_i, root_j)
    group_of_root: dict[int, int] = {}
    firsts: list[int] = []
    key_group = np.empty(len(members), dtype=np.int64)
    for at in range(len(members)):
        root = find(at)
        if root not in group_of_root:
            group_of_root[root] = len(firsts)
            firsts.append(members[root])
        key_group[at] = group_of_root[root]
    ids = np.where(key_of >= 0, key_group[np.maximum(key_of, 0)] if len(members) else -1, -1)
    return ids.astype(np.int64), tuple(firsts)
