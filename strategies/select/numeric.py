"""Small typed wrappers around the scipy functions the selectors use (scipy has no stubs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize, sparse, special  # type: ignore[import-untyped]

__all__ = ["betainc", "betaln", "gamma", "minimize_bounded", "shared_counts"]


def betaln(a: float, b: float) -> float:
    """Return ``ln B(a, b)`` (``scipy.special.betaln``).

    >>> betaln(1.0, 1.0)
    0.0
    """
    return float(special.betaln(a, b))


def betainc(a: float, b: float, x: float) -> float:
    """Return the regularised incomplete beta function ``I_x(a, b)``.

    >>> betainc(1.0, 1.0, 0.25)
    0.25
    """
    return float(special.betainc(a, b, x))


def gamma(x: float) -> float:
    """Return ``Γ(x)``.

    >>> gamma(5.0)
    24.0
    """
    return float(special.gamma(x))


def minimize_bounded(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: Sequence[float],
    bounds: Sequence[tuple[float | None, float | None]],
) -> tuple[np.ndarray, float]:
    """Minimise ``fun`` (returning value and gradient) within ``bounds`` by L-BFGS-B.

    Returns ``(x, fun(x))``.

    >>> x, value = minimize_bounded(lambda v: (float((v[0] - 2) ** 2), 2 * (v - 2)), [0.0],
    ...                             [(None, 1.5)])
    >>> round(float(x[0]), 6), round(value, 6)
    (1.5, 0.25)
    """
    result = optimize.minimize(
        fun, np.asarray(x0, dtype=np.float64), jac=True, bounds=list(bounds), method="L-BFGS-B"
    )
    return np.asarray(result.x, dtype=np.float64), float(result.fun)


def shared_counts(rows: Sequence[np.ndarray], n_columns: int) -> np.ndarray:
    """Return the ``[N, N]`` matrix of column ids each pair of rows has in common.

    Row ``i`` lists distinct column ids in ``[0, n_columns)``; one sparse product counts
    the overlaps of every pair at once.

    >>> shared_counts([np.array([0, 1]), np.array([1, 2]), np.array([3])], 4).tolist()
    [[2, 1, 0], [1, 2, 0], [0, 0, 1]]
    """
    lengths = [len(row) for row in rows]
    row_ids = np.repeat(np.arange(len(rows)), lengths)
    columns = np.concatenate([*rows, np.zeros(0, dtype=np.int64)]).astype(np.int64)
    data = np.ones(len(columns), dtype=np.int64)
    matrix = sparse.csr_matrix((data, (row_ids, columns)), shape=(len(rows), n_columns))
    return np.asarray((matrix @ matrix.T).toarray(), dtype=np.int64)
