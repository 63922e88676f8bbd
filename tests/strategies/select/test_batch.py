"""The vectorised selectors agree exactly with the per-problem ones (index, ties, credit)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from strategies.select import batch
from strategies.select.adaptive import AdaptiveConfig, select_adaptive_consistency
from strategies.select.base import Selection, selection_credit
from strategies.select.best_of_majority import BestOfMajorityConfig, select_best_of_majority
from strategies.select.best_of_n import select_best_of_n
from strategies.select.first import select_first_candidate
from strategies.select.majority import select_majority
from strategies.select.mbr import MBRConfig, select_mbr
from strategies.select.oracle import select_oracle
from strategies.select.perplexity import select_lowest_perplexity
from strategies.select.rpc import RPCConfig, select_rpc
from strategies.select.weighted import select_weighted_majority
from strategies.types import Candidate

Data = dict[str, np.ndarray]
SIZES = (1, 2, 3, 4, 6, 9, 14)  # 8 problems each: 56 problems per selector


def _batches(sizes: tuple[int, ...] = SIZES, per_size: int = 8, seed: int = 0) -> Iterator[Data]:
    """Seeded small problems with many ties: few answer classes, ``None``s, coarse values."""
    rng = np.random.default_rng(seed)
    for n in sizes:
        shape = (per_size, n)
        answers = rng.choice([-1, 0, 1, 2, 3], p=[0.2, 0.35, 0.25, 0.15, 0.05], size=shape)
        answers[0] = -1  # a problem without any answer
        answers[1] = 2  # a unanimous one
        correct = (answers == 0) | (rng.random(shape) < 0.1)
        logprobs = rng.choice([-0.2, -0.5, -1.0], size=shape)
        logprobs = np.where(rng.random(shape) < 0.3, rng.normal(-0.6, 0.3, shape), logprobs)
        scores = np.round(rng.random(shape), 1)
        scores[rng.random(shape) < 0.2] = np.nan
        scores[2] = np.nan  # every score missing: the mean logprob decides
        yield {
            "answers": answers,
            "correct": correct,
            "logprobs": logprobs,
            "scores": scores,
            "texts": rng.integers(0, max(n // 2, 1), size=shape),
        }


def _pool(d: Data, row: int, *, texts: bool = False) -> list[Candidate]:
    """The candidates of one problem, as the per-problem selectors see them."""
    return [
        Candidate(
            text=f"t{d['texts'][row, i] if texts else i}",
            answer=None if a < 0 else str(a),
            is_correct=bool(d["correct"][row, i]),
            score=None if math.isnan(s) else float(s),
            generated_tokens=1,
            logprob_sum=float(d["logprobs"][row, i]),
        )
        for i, (a, s) in enumerate(zip(d["answers"][row], d["scores"][row], strict=True))
    ]


def _agree(
    fast: Callable[[Data], batch.BatchSelection],
    slow: Callable[[list[Candidate]], Selection],
    batches: Iterator[Data] | None = None,
    *,
    texts: bool = False,
) -> int:
    """Assert index, ties and credit agree on every problem; return how many were checked."""
    checked = 0
    for d in batches if batches is not None else _batches():
        result = fast(d)
        assert result.tied.shape == d["answers"].shape
        for row in range(d["answers"].shape[0]):
            pool = _pool(d, row, texts=texts)
            selection = slow(pool)
            index = -1 if selection.index is None else selection.index
            tied = tuple(int(i) for i in np.flatnonzero(result.tied[row]))
            assert (int(result.index[row]), tied, float(result.credit[row])) == (
                index,
                selection.tied,
                selection_credit(selection, pool),
            ), (d["answers"][row].tolist(), row)
            checked += 1
    return checked


def test_it_matches_first_and_oracle() -> None:
    assert _agree(lambda d: batch.batch_select_first(d["correct"]), select_first_candidate) == 56
    _agree(lambda d: batch.batch_select_oracle(d["correct"]), select_oracle)


def test_it_splits_majority_ties_like_selection_credit() -> None:
    _agree(lambda d: batch.batch_select_majority(d["answers"], d["correct"]), select_majority)
    tie = batch.batch_select_majority(np.array([[1, -1, 0, 0, 1]]), np.array([[1, 0, 0, 0, 0]]))
    assert (tie.index.tolist(), tie.credit.tolist()) == ([0], [0.5])


def test_it_matches_weighted_majority() -> None:
    _agree(
        lambda d: batch.batch_select_weighted_majority(d["answers"], d["correct"], d["logprobs"]),
        select_weighted_majority,
    )


def test_it_matches_lowest_perplexity() -> None:
    _agree(
        lambda d: batch.batch_select_lowest_perplexity(d["answers"], d["correct"], d["logprobs"]),
        select_lowest_perplexity,
    )


def test_it_breaks_best_of_n_ties_by_logprob_then_index() -> None:
    _agree(
        lambda d: batch.batch_select_best_of_n(
            d["answers"], d["correct"], d["scores"], d["logprobs"]
        ),
        select_best_of_n,
    )


@pytest.mark.parametrize(("alpha", "k", "pad"), [(None, 1, False), (0.3, 1, False),
                                                 (1.0, 1, False), (0.15, 3, True)])
def test_it_matches_best_of_majority(alpha: float | None, k: int, pad: bool) -> None:
    # k and pad only lengthen the ranking: the choice, its ties and credit stay the same.
    config = BestOfMajorityConfig(alpha=alpha, k=k, pad=pad)
    _agree(
        lambda d: batch.batch_select_best_of_majority(
            d["answers"], d["correct"], d["scores"], d["logprobs"], alpha=alpha
        ),
        lambda pool: select_best_of_majority(pool, config),
    )


@pytest.mark.parametrize(("threshold", "max_samples"), [(0.95, 40), (0.8, 5), (0.95, 1)])
def test_it_stops_adaptive_consistency_at_the_same_draw(threshold: float, max_samples: int) -> None:
    config = AdaptiveConfig(threshold=threshold, max_samples=max_samples)
    _agree(
        lambda d: batch.batch_select_adaptive_consistency(
            d["answers"], d["correct"], threshold=threshold, max_samples=max_samples
        ),
        lambda pool: select_adaptive_consistency(pool, config),
        _batches(sizes=(1, 3, 7, 12, 30, 60)),
    )


@pytest.mark.parametrize("max_references", [None, 128, 14])
def test_it_matches_mbr_with_answer_similarity(max_references: int | None) -> None:
    # Every candidate is a reference as long as there are at most max_references.
    config = MBRConfig(similarity="answer", max_references=max_references)
    _agree(
        lambda d: batch.batch_select_mbr(d["answers"], d["correct"]),
        lambda pool: select_mbr(pool, config),
    )


def test_it_matches_rpc_with_pruning_and_duplicate_texts() -> None:
    def fast(d: Data) -> batch.BatchSelection:
        return batch.batch_select_rpc(
            d["answers"], d["correct"], d["logprobs"], text_ids=d["texts"]
        )

    checked = _agree(fast, select_rpc, _batches(sizes=(1, 2, 3, 5, 9, 20, 40)), texts=True)
    assert checked == 56


def test_it_matches_rpc_without_pruning() -> None:
    _agree(
        lambda d: batch.batch_select_rpc(
            d["answers"], d["correct"], d["logprobs"], text_ids=d["texts"], prune=False
        ),
        lambda pool: select_rpc(pool, RPCConfig(prune=False)),
        _batches(sizes=(1, 3, 9, 40), seed=2),
        texts=True,
    )


def test_it_matches_rpc_with_all_texts_distinct() -> None:
    _agree(
        lambda d: batch.batch_select_rpc(d["answers"], d["correct"], d["logprobs"]),
        select_rpc,
        _batches(sizes=(3, 9, 40), seed=1),
    )


def test_it_abstains_without_answers() -> None:
    answers, correct = np.full((2, 3), -1), np.zeros((2, 3), dtype=bool)
    for selection in (
        batch.batch_select_majority(answers, correct),
        batch.batch_select_adaptive_consistency(answers, correct),
        batch.batch_select_best_of_majority(answers, correct, np.zeros((2, 3)), np.zeros((2, 3))),
    ):
        assert selection.index.tolist() == [-1, -1]
        assert selection.credit.tolist() == [0.0, 0.0]
