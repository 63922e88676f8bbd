"""CodeT: rank clusters of solutions by dual execution agreement (ALGORITHMS §10)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strategies.select.base import Selection
from strategies.select.clusters import (
    ClusterRanking,
    check_matrix,
    check_test_budget,
    cluster_rows,
    matrix_for,
    rank_clusters,
    select_cluster,
)
from strategies.types import Candidate

__all__ = ["CodeTConfig", "codet_rank", "select_codet"]


@dataclass(frozen=True, kw_only=True)
class CodeTConfig:
    """Cluster score ``|tests passed| × |solutions|^solution_exponent``.

    The paper uses exponent 1; the official code ``sqrt`` (0.5, the default).
    """

    solution_exponent: float = 0.5
    #: Generated-test samples per problem, and distinct assertions kept from each (the
    #: columns of the pass matrix; CodeT keeps at most 5 per sample).
    test_samples: int = 10
    tests_per_sample: int = 5

    def __post_init__(self) -> None:
        check_test_budget(self.test_samples, self.tests_per_sample)
        if not 0.0 <= self.solution_exponent <= 1.0:
            raise ValueError(f"solution_exponent must be in [0, 1], got {self.solution_exponent!r}")


def codet_rank(
    matrix: np.ndarray | Sequence[Sequence[int]], config: CodeTConfig | None = None
) -> ClusterRanking:
    """Cluster identical pass rows and rank them by CodeT score (zero tests: score 0).

    >>> codet_rank(np.array([[1, 1], [1, 1], [1, 0]]), CodeTConfig(solution_exponent=1.0))
    ClusterRanking(clusters=((0, 1), (2,)), scores=(4.0, 1.0))
    """
    config = config or CodeTConfig()
    array = check_matrix(matrix)
    clusters = cluster_rows(array)
    scores = [
        float(array[members[0]].sum()) * len(members) ** config.solution_exponent
        for members in clusters
    ]
    return rank_clusters(clusters, scores)


def select_codet(
    candidates: Sequence[Candidate],
    config: CodeTConfig | None = None,
    *,
    matrix: np.ndarray | Sequence[Sequence[int]] | None = None,
    rng: np.random.Generator | None = None,
) -> Selection:
    """CodeT behind the selector interface; ``matrix[i, j] = 1`` if candidate i passes test j.

    ``tied`` is the whole top cluster (credit: the fraction of it that is correct).

    >>> pool = [Candidate(text=t) for t in ("a", "b", "c")]
    >>> select_codet(pool, matrix=[[0, 1], [1, 1], [1, 1]]).tied
    (1, 2)
    """
    del rng  # deterministic
    return select_cluster(candidates, codet_rank(matrix_for(candidates, matrix), config))
