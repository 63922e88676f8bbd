"""One pool's samples as the metrics stage reads them: columns, loaded once for every
strategy that reads the same samples (pool and n).

Each column is a ``[problems, width]`` array (problems in index order, samples in index
order, padded past each problem's own count): answers, verdicts, scores and token
accounting, read in one query without the sample text. The text is read only where a
figure needs it: the per-problem selectors' candidates (``pools``), the text ids of RPC
(``arrays(texts=True)``) and the diversity subsample (``texts``). Each answer is
canonicalised and grouped once per problem (``groups``), for every selector and figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db.models import FilteredRelation, Q

from strategies.select.adaptive import AdaptiveConfig, adaptive_sample_count
from strategies.select.base import answer_groups_of
from strategies.types import Candidate
from webapp.datasets.models import Dataset
from webapp.experiments.models import Experiment, Sample, Verdict
from webapp.experiments.verification import scoring_verifier, verifier_for

#: A team's label on a sample: (passes, or None to keep the automatic verdict; the answer
#: it gives, or None to keep the extracted one).
Labels = dict[int, tuple[bool | None, str | None]]

# Verdict codes in ``PoolSamples.verdicts``.
PASS, FAIL, UNJUDGED = 1, 0, -1
# Sample ids per query when reading texts by id (below every backend's parameter limit).
ID_CHUNK = 5000

_ROW = np.dtype([
    ("pk", "i8"), ("problem_id", "i8"), ("index", "i8"), ("prompt_tokens", "i8"),
    ("generated_tokens", "i8"), ("logprob_sum", "f8"), ("seconds", "f8"), ("answer", "O"),
    ("outcome", "O"), ("score", "O"), ("self_eval", "O"), ("self_eval_score", "O"),
])


@dataclass
class ProblemPool:
    """One problem's samples as candidates, for the per-problem selectors; CodeT and B4
    get the pass matrix of the candidates that executed (``matrix``) and those
    candidates' indices (``executed``)."""

    problem_id: int
    index: int
    candidates: list[Candidate]
    matrix: np.ndarray | None = None
    executed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Arrays:
    """Candidates as ``[rows, width]`` arrays, the input of ``strategies.select.batch``:
    answer-group ids (-1: none), verdicts, mean logprobs, scores (NaN: none), and text
    ids (equal texts, equal ids) where a selector reads them (``route_reads_texts``)."""

    answers: np.ndarray
    correct: np.ndarray
    mean_logprobs: np.ndarray
    scores: np.ndarray
    texts: np.ndarray | None = None

    def take(self, rows: np.ndarray, columns: np.ndarray) -> Arrays:
        """Entry ``[r, c]`` of the result is entry ``[rows[r], columns[r, c]]`` of these."""
        return Arrays(*(None if a is None else a[rows[:, None], columns] for a in (
            self.answers, self.correct, self.mean_logprobs, self.scores, self.texts)))


@dataclass
class Diversity:
    """Per-problem diversity of a pool's samples (each list: one value per problem):
    answers over all samples, texts over a subsample of ``sizes`` texts; ``embedding``
    over the subsamples of ``embedded`` problems only."""

    distinct: dict[int, list[float]]
    bleu: list[float]
    unique: list[float]
    entropy: list[float]
    embedding: list[float]
    sizes: list[int]
    embedded: int = 0


@dataclass
class PoolSamples:
    """Samples 0..n-1 of one pool for each problem that has any, as columns.

    ``verdicts`` holds ``PASS``, ``FAIL`` or ``UNJUDGED``; ``scores`` the self-evaluation
    score where there is one, else the verifier's (NaN: none); ``labelled`` marks the
    problems where a human label set a verdict or an answer.
    """

    experiment: Experiment
    pool_id: int
    n: int
    problem_ids: np.ndarray
    indices: np.ndarray
    golds: list[str]
    sizes: np.ndarray
    sample_ids: np.ndarray
    answers: np.ndarray
    verdicts: np.ndarray
    scores: np.ndarray
    logprob_sums: np.ndarray
    generated_tokens: np.ndarray
    prompt_tokens: np.ndarray
    seconds_spent: np.ndarray
    labelled: np.ndarray
    code: bool = False
    groups_: np.ndarray | None = None
    firsts_: list[list[str]] = field(default_factory=list)
    pools_: list[ProblemPool] | None = None
    adaptive_: list[int] | None = None
    diversity_: Diversity | None = None

    @property
    def present(self) -> np.ndarray:
        """``[problems, width]``: which cells hold a sample."""
        return np.arange(self.sample_ids.shape[1])[None, :] < self.sizes[:, None]

    @property
    def correct(self) -> np.ndarray:
        return np.asarray(self.verdicts == PASS)

    @property
    def judged(self) -> np.ndarray:
        """Per problem: it has a reference (or tests) and every sample a verdict."""
        reference = np.array([bool(gold) or self.code for gold in self.golds], dtype=bool)
        known = ((self.verdicts != UNJUDGED) | ~self.present).all(axis=1)
        return reference & known

    @property
    def seconds(self) -> float:
        """Generation seconds, summed in sample order (problem index, sample index)."""
        return float(sum(self.seconds_spent[self.present].tolist()))

    def answer_list(self, row: int) -> list[str | None]:
        return list(self.answers[row, : self.sizes[row]])

    def groups(self) -> np.ndarray:
        """``[problems, width]`` answer-group ids (``answer_groups``; -1: none), grouping
        each problem's distinct answers once; ``firsts_[row]`` is each group's first answer."""
        if self.groups_ is None:
            groups = np.full(self.answers.shape, -1, dtype=np.int64)
            self.firsts_ = []
            for row in range(len(self.sizes)):
                answers = self.answer_list(row)
                distinct = list(dict.fromkeys(a for a in answers if a is not None))
                ids = answer_groups_of(distinct, exact=self.code)[0].tolist()
                group_of = dict(zip(distinct, ids, strict=True))
                groups[row, : len(answers)] = [group_of.get(a, -1) for a in answers]
                firsts: dict[int, str] = {}
                for answer, group in zip(distinct, ids, strict=True):
                    if group >= 0:
                        firsts.setdefault(group, answer)
                self.firsts_.append([firsts[g] for g in range(len(firsts))])
            self.groups_ = groups
        return self.groups_

    def arrays(self, texts: bool = False) -> Arrays:
        """The input of ``strategies.select.batch``; text ids only when ``texts``."""
        text_ids = None
        if texts:
            ids: dict[str, int] = {}
            by_sample = self.texts(self.sample_ids[self.present].tolist())
            text_ids = np.zeros(self.sample_ids.shape, dtype=np.int64)
            text_ids[self.present] = [ids.setdefault(by_sample[pk], len(ids))
                                      for pk in self.sample_ids[self.present].tolist()]
        return Arrays(self.groups(), self.correct,
                      self.logprob_sums / np.maximum(self.generated_tokens, 1), self.scores,
                      text_ids)

    def texts(self, sample_ids: Sequence[int]) -> dict[int, str]:
        """The texts of these samples, by sample id."""
        out: dict[int, str] = {}
        for start in range(0, len(sample_ids), ID_CHUNK):
            out.update(Sample.objects.filter(pk__in=sample_ids[start:start + ID_CHUNK])
                       .values_list("pk", "text"))
        return out

    def pools(self) -> list[ProblemPool]:
        """Each problem's samples as candidates (text included), for the per-problem
        selectors."""
        if self.pools_ is None:
            rows = {
                pk: (text, finish)
                for pk, text, finish in Sample.objects.filter(
                    self.experiment.problem_q(), pool_id=self.pool_id, index__lt=self.n,
                ).values_list("pk", "text", "finish_reason")
            }
            self.pools_ = [
                ProblemPool(int(self.problem_ids[row]), int(self.indices[row]),
                            self._candidates(row, rows))
                for row in range(len(self.sizes))
            ]
        return self.pools_

    def _candidates(self, row: int, texts: dict[int, tuple[str, str]]) -> list[Candidate]:
        out = []
        for i in range(int(self.sizes[row])):
            text, finish = texts[int(self.sample_ids[row, i])]
            verdict, score = int(self.verdicts[row, i]), float(self.scores[row, i])
            out.append(Candidate(
                text=text, answer=self.answers[row, i],
                is_correct=None if verdict == UNJUDGED else verdict == PASS,
                score=None if np.isnan(score) else score,
                prompt_tokens=int(self.prompt_tokens[row, i]),
                generated_tokens=int(self.generated_tokens[row, i]),
                logprob_sum=float(self.logprob_sums[row, i]), finish_reason=finish,
            ))
        return out

    def adaptive(self) -> list[int]:
        """How many samples adaptive consistency would have drawn, per problem of n > 1."""
        if self.adaptive_ is None:
            self.adaptive_ = [
                adaptive_sample_count(self.answer_list(row),
                                      AdaptiveConfig(max_samples=int(self.sizes[row])))
                for row in range(len(self.sizes)) if self.sizes[row] > 1
            ]
        return self.adaptive_


def load_samples(experiment: Experiment, pool_id: int, n: int,
                 labels: Labels | None = None) -> PoolSamples:
    """Samples 0..n-1 of the pool with their verdicts and self-evaluation scores, in one
    query of the columns these need; with ``labels``, a labelled sample's verdict (and
    answer, where the label gives one) is the label's."""
    rows = np.array(list(
        Sample.objects.filter(experiment.problem_q(), pool_id=pool_id, index__lt=n).annotate(
            verdict=FilteredRelation(
                "verdicts", condition=Q(verdicts__verifier=verifier_for(experiment))),
            self_eval=FilteredRelation(
                "verdicts", condition=Q(verdicts__verifier=scoring_verifier())),
        ).order_by().values_list(
            "pk", "problem_id", "index", "prompt_tokens", "generated_tokens", "logprob_sum",
            "seconds", "verdict__answer", "verdict__outcome", "verdict__score",
            "self_eval__id", "self_eval__score")
    ), dtype=_ROW)
    problems = [(pk, index, gold) for pk, index, gold in experiment.problems.order_by(
        "index").values_list("pk", "index", "answer")]
    row_of = {pk: row for row, (pk, _, _) in enumerate(problems)}
    row = np.array([row_of[pk] for pk in rows["problem_id"].tolist()], dtype=np.int64)
    order = np.lexsort((rows["index"], row))
    rows, row = rows[order], row[order]
    kept = np.unique(row)  # the problems with samples, in index order
    row = np.searchsorted(kept, row)
    sizes = np.bincount(row, minlength=len(kept))
    column = np.arange(len(row)) - (np.cumsum(sizes) - sizes)[row]
    shape = (len(kept), int(sizes.max(initial=0)))

    def grid(values: np.ndarray, fill: object, dtype: object) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        out[row, column] = values
        return out

    verdicts = np.array([UNJUDGED if outcome in (None, Verdict.Outcome.UNJUDGED)
                         else PASS if outcome == Verdict.Outcome.PASS else FAIL
                         for outcome in rows["outcome"].tolist()], dtype=np.int8)
    has_self_eval = np.array([pk is not None for pk in rows["self_eval"]], dtype=bool)
    scores = np.where(has_self_eval, rows["self_eval_score"], rows["score"]).astype(float)
    data = PoolSamples(
        experiment=experiment, pool_id=pool_id, n=n,
        problem_ids=np.array([problems[r][0] for r in kept], dtype=np.int64),
        indices=np.array([problems[r][1] for r in kept], dtype=np.int64),
        golds=[problems[r][2] for r in kept], sizes=sizes,
        sample_ids=grid(rows["pk"], 0, np.int64), answers=grid(rows["answer"], None, object),
        verdicts=grid(verdicts, UNJUDGED, np.int8), scores=grid(scores, np.nan, float),
        logprob_sums=grid(rows["logprob_sum"], 0.0, float),
        generated_tokens=grid(rows["generated_tokens"], 0, np.int64),
        prompt_tokens=grid(rows["prompt_tokens"], 0, np.int64),
        seconds_spent=grid(rows["seconds"], 0.0, float),
        labelled=np.zeros(len(kept), dtype=bool),
        code=experiment.dataset.kind == Dataset.Kind.CODE,
    )
    if labels:
        apply_labels(data, labels.items())
    return data


def apply_labels(data: PoolSamples,
                 labels: Iterable[tuple[int, tuple[bool | None, str | None]]]) -> None:
    """Put the labels on the samples they name (those this pool holds)."""
    rows, columns = np.nonzero(data.present)
    where = dict(zip(data.sample_ids[rows, columns].tolist(),
                     zip(rows.tolist(), columns.tolist(), strict=True), strict=True))
    for sample_id, (passes, answer) in labels:
        if sample_id not in where:
            continue
        row, column = where[sample_id]
        if passes is not None:
            data.verdicts[row, column] = PASS if passes else FAIL
        if answer is not None:
            data.answers[row, column] = answer
        data.labelled[row] = True
