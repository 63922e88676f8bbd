"""A subset of a dataset's problems for one experiment: the first k, a seeded random k,
or listed ids. Problems keep their ids, so a subset reads the same sample pools as the
whole dataset does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from webapp.datasets.models import Dataset

MODES = ("all", "first", "random", "ids")


def parse_ids(text: str) -> list[str]:
    """Ids listed one per line or separated by commas or spaces, in order, once each."""
    seen: dict[str, None] = {}
    for part in text.replace(",", " ").split():
        seen.setdefault(part, None)
    return list(seen)


def subset_spec(mode: str, *, k: int | None = None, seed: int | None = None,
                ids: Sequence[str] = ()) -> dict[str, Any]:
    """The stored form of a choice ({} for every problem); ``ValueError`` when incomplete."""
    if mode not in MODES:
        raise ValueError(f"unknown subset {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "all":
        return {}
    if mode in ("first", "random"):
        if k is None or k < 1:
            raise ValueError("Say how many problems to take (at least 1).")
        spec: dict[str, Any] = {"mode": mode, "k": int(k)}
        if mode == "random":
            spec["seed"] = int(seed or 0)
        return spec
    if not ids:
        raise ValueError("List at least one problem id.")
    return {"mode": "ids", "ids": list(ids)}


def choose_problems(dataset: Dataset, subset: Mapping[str, Any]) -> list[int]:
    """The primary keys of the chosen problems, in dataset order; ``ValueError`` naming
    what does not fit (k larger than the dataset, ids it does not have)."""
    mode = subset.get("mode")
    rows = dataset.problems.order_by("index")
    if not subset:
        return list(rows.values_list("pk", flat=True))
    size = rows.count()
    if mode in ("first", "random"):
        k = int(subset["k"])
        if k > size:
            raise ValueError(f"{dataset.name} has {size} problems; cannot take {k}.")
        if mode == "first":
            return list(rows.values_list("pk", flat=True)[:k])
        keys = list(rows.values_list("pk", flat=True))
        picked = np.random.default_rng(int(subset.get("seed", 0))).choice(size, k, replace=False)
        return [keys[i] for i in sorted(int(i) for i in picked)]
    wanted = [str(i) for i in subset.get("ids", [])]
    found: dict[str, int] = {}
    for pk, index, metadata in rows.values_list("pk", "index", "metadata"):
        key = str(metadata.get("id", index)) if isinstance(metadata, dict) else str(index)
        if key in wanted:
            found[key] = pk
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20
                                           else "")
        raise ValueError(f"{dataset.name} has no problem with id {shown}.")
    chosen = set(found.values())
    return [pk for pk in rows.values_list("pk", flat=True) if pk in chosen]
