"""B4: choose the cluster of solutions with the highest Bayesian posterior (ALGORITHMS §10)."""

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
from strategies.select.numeric import betaln
from strategies.types import Candidate

__all__ = ["B4Config", "b4_rank", "b4_score", "select_b4"]


@dataclass(frozen=True, kw_only=True)
class B4Config:
    """Priors of B4: ``alpha_xy`` on the sizes of x and y, ``beta_0`` on wrong-passes-wrong.

    A large ``beta_0`` encodes "wrong code rarely passes wrong tests" (1e4 to 1e6).
    """

    alpha_xy: float = 1e3
    beta_0: float = 1e4
    #: Generated-test samples per problem and assertions kept from each (as CodeT's).
    test_samples: int = 10
    tests_per_sample: int = 5

    def __post_init__(self) -> None:
        check_test_budget(self.test_samples, self.tests_per_sample)
        if not self.alpha_xy > 0:
            raise ValueError(f"alpha_xy must be > 0, got {self.alpha_xy!r}")
        if not self.beta_0 > 0:
            raise ValueError(f"beta_0 must be > 0, got {self.beta_0!r}")


def b4_score(matrix: np.ndarray, members: Sequence[int], config: B4Config | None = None) -> float:
    """Return the log posterior of "``members`` are the correct solutions".

    ``x`` are the members, ``y`` the tests they pass; ``E1`` = wrong solutions × correct
    tests, ``E0`` = wrong solutions × wrong tests; empty submatrices need no special case.

    >>> round(b4_score(np.array([[1]]), [0], B4Config(alpha_xy=1.0, beta_0=1.0)), 6)  # 2 ln B(2, 1)
    -1.386294
    """
    config = config or B4Config()
    n, m = matrix.shape
    x = np.zeros(n, dtype=bool)
    x[list(members)] = True
    y = matrix[members[0]].astype(bool)
    n_x, n_y = int(x.sum()), int(y.sum())
    e1 = matrix[~x][:, y]
    e0 = matrix[~x][:, ~y]
    s1, s0 = float(e1.sum()), float(e0.sum())
    return (
        betaln(n_x + config.alpha_xy, n - n_x + 1)
        + betaln(n_y + config.alpha_xy, m - n_y + 1)
        + betaln(s1 + 1, e1.size - s1 + 1)
        + betaln(s0 + 1, e0.size - s0 + config.beta_0)
    )


def b4_rank(
    matrix: np.ndarray | Sequence[Sequence[int]], config: B4Config | None = None
) -> ClusterRanking:
    """Cluster identical pass rows and rank them by B4 log posterior.

    >>> b4_rank(np.array([[1, 1], [1, 1], [0, 1]])).clusters
    ((0, 1), (2,))
    """
    array = check_matrix(matrix)
    clusters = cluster_rows(array)
    return rank_clusters(clusters, [b4_score(array, members, config) for members in clusters])


def select_b4(
    candidates: Sequence[Candidate],
    config: B4Config | None = None,
    *,
    matrix: np.ndarray | Sequence[Sequence[int]] | None = None,
    rng: np.random.Generator | None = None,
) -> Selection:
    """B4 behind the selector interface; ``tied`` is the whole top cluster.

    >>> pool = [Candidate(text=t) for t in ("a", "b", "c")]
    >>> select_b4(pool, matrix=[[0, 1], [1, 1], [1, 1]]).tied
    (1, 2)
    """
    del rng  # deterministic
    return select_cluster(candidates, b4_rank(matrix_for(candidates, matrix), config))
