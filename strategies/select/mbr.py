"""Minimum Bayes Risk: the candidate most similar to the others (ALGORITHMS §11)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from strategies.select.base import (
    Selection,
    answer_groups,
    check_seed,
    seeded_rng,
    selection_from_candidates,
)
from strategies.select.similarity import chrf_matrix, rouge_l_matrix
from strategies.types import Candidate

__all__ = ["SIMILARITIES", "MBRConfig", "select_mbr"]

Similarity = Literal["chrf", "rouge_l", "answer"]
SIMILARITIES: tuple[Similarity, ...] = ("chrf", "rouge_l", "answer")
Weights = Literal["uniform", "mean_logprob"]


@dataclass(frozen=True, kw_only=True)
class MBRConfig:
    """Similarity, reference weights and reference subsampling of MBR selection.

    ``similarity``: ``chrf`` on the completion texts (default), ``rouge_l`` (token LCS
    F1) or ``answer`` (equal answers score 1; reduces to majority vote). ``weights``:
    ``uniform`` or ``mean_logprob`` (``w_j ∝ exp(mean logprob)``). With more than
    ``max_references`` candidates a random subset serves as references (``seed``, or
    the ``rng`` argument); ``None`` always uses all.
    """

    similarity: Similarity = "chrf"
    weights: Weights = "uniform"
    max_references: int | None = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise ValueError(
                f"similarity must be one of {', '.join(SIMILARITIES)}; got {self.similarity!r}"
            )
        if self.weights not in ("uniform", "mean_logprob"):
            raise ValueError(f"weights must be 'uniform' or 'mean_logprob', got {self.weights!r}")
        if self.max_references is not None and (
            isinstance(self.max_references, bool)
            or not isinstance(self.max_references, int)
            or self.max_references < 2
        ):
            raise ValueError(
                f"max_references must be an integer >= 2 or None, got {self.max_references!r}"
            )
        check_seed(self.seed)


def _similarities(
    candidates: Sequence[Candidate], similarity: Similarity, references: np.ndarray
) -> np.ndarray:
    """Return ``S[i, r]`` = sim(candidate i as hypothesis, reference ``references[r]``)."""
    if similarity == "answer":
        group, _ = answer_groups(candidates)
        ref_group = group[references]
        same = (group[:, None] == ref_group[None, :]) & (group[:, None] >= 0)
        return np.asarray(same, dtype=np.float64)
    texts = [candidate.text for candidate in candidates]
    if similarity == "rouge_l":
        return rouge_l_matrix(texts, references.tolist())
    return chrf_matrix(texts)[:, references]


def select_mbr(
    candidates: Sequence[Candidate],
    config: MBRConfig | None = None,
    *,
    rng: np.random.Generator | None = None,
) -> Selection:
    """Return ``argmax_i Σ_{j≠i} w_j sim(y_i, y_j)``; ties go to the lower index.

    ``scores`` are the expected utilities; the ranking keeps one candidate per answer.

    >>> pool = [Candidate(text=t) for t in ("the cat sat", "a cat sat", "dogs bark")]
    >>> select_mbr(pool).index
    0
    """
    config = config or MBRConfig()
    n = len(candidates)
    if n == 0:
        return Selection(index=None, answer=None, tied=())
    references = np.arange(n)
    if config.max_references is not None and n > config.max_references:
        generator = rng if rng is not None else seeded_rng(candidates, config.seed)
        references = np.sort(generator.choice(n, size=config.max_references, replace=False))
    if config.weights == "uniform":
        weights = np.full(len(references), 1.0 / max(len(references) - 1, 1))
    else:
        logp = np.array([candidates[j].mean_logprob for j in references.tolist()])
        weights = np.exp(logp - logp.max())
        weights /= weights.sum()
    sims = _similarities(candidates, config.similarity, references)
    not_self = references[None, :] != np.arange(n)[:, None]
    utility = (sims * not_self) @ weights
    scores = [float(u) for u in utility]
    return selection_from_candidates(candidates, [(u,) for u in scores], scores=scores)
