"""Shared parts of CodeT and B4: the pass matrix, its clusters and their ranking (§10)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection, rank_options
from strategies.types import Candidate

__all__ = [
    "ClusterRanking",
    "check_matrix",
    "check_test_budget",
    "cluster_rows",
    "rank_clusters",
    "select_cluster",
]


@dataclass(frozen=True)
class ClusterRanking:
    """Clusters of solution indices (identical pass rows), best first, with their scores."""

    clusters: tuple[tuple[int, ...], ...]
    scores: tuple[float, ...]


def check_matrix(matrix: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """Return the pass matrix as a 0/1 int array ``[n_solutions, n_tests]``; else ``ValueError``."""
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise ValueError(f"matrix must be 2-D [n_solutions, n_tests], got shape {array.shape}")
    if array.size and not np.all((array == 0) | (array == 1)):
        raise ValueError("matrix must hold only 0 and 1")
    return array.astype(np.int64)


def check_test_budget(test_samples: int, tests_per_sample: int) -> None:
    """``ValueError`` unless the generated-test budget is sensible (1..100 and 1..20)."""
    if not 1 <= test_samples <= 100:
        raise ValueError(f"test_samples must be between 1 and 100, got {test_samples!r}")
    if not 1 <= tests_per_sample <= 20:
        raise ValueError(f"tests_per_sample must be between 1 and 20, got {tests_per_sample!r}")


def cluster_rows(matrix: np.ndarray) -> list[tuple[int, ...]]:
    """Group solutions whose rows are identical, in order of first occurrence.

    >>> cluster_rows(np.array([[1, 0], [0, 1], [1, 0]]))
    [(0, 2), (1,)]
    """
    clusters: dict[bytes, list[int]] = {}
    for index, row in enumerate(matrix):
        clusters.setdefault(row.tobytes(), []).append(index)
    return [tuple(members) for members in clusters.values()]


def rank_clusters(clusters: Sequence[tuple[int, ...]], scores: Sequence[float]) -> ClusterRanking:
    """Sort clusters by score, best first; equal scores keep first-occurrence order."""
    order, _ = rank_options([(score,) for score in scores])
    return ClusterRanking(
        clusters=tuple(clusters[i] for i in order),
        scores=tuple(float(scores[i]) for i in order),
    )


def select_cluster(candidates: Sequence[Candidate], ranking: ClusterRanking) -> Selection:
    """Turn a cluster ranking into a ``Selection``.

    ``index`` is the top cluster's first member and ``tied`` all its members, so
    ``selection_credit`` is the fraction correct in the top cluster: the expected
    correctness of submitting a uniformly random member.
    """
    if len(ranking.clusters) == 0 or not ranking.clusters[0]:
        return Selection(index=None, answer=None, tied=())
    scores = [0.0] * len(candidates)
    for members, score in zip(ranking.clusters, ranking.scores, strict=True):
        for index in members:
            scores[index] = score
    top = ranking.clusters[0]
    return Selection(
        index=top[0],
        answer=candidates[top[0]].answer,
        tied=top,
        scores=tuple(scores),
        ranking=tuple(members[0] for members in ranking.clusters),
    )


def matrix_for(
    candidates: Sequence[Candidate], matrix: np.ndarray | Sequence[Sequence[int]] | None
) -> np.ndarray:
    """Check that a selector got a pass matrix with one row per candidate."""
    if matrix is None:
        raise ValueError("this selector needs matrix= (solutions x tests, 1 = passed)")
    array = check_matrix(matrix)
    if array.shape[0] != len(candidates):
        raise ValueError(
            f"matrix has {array.shape[0]} rows but there are {len(candidates)} candidates"
        )
    return array
