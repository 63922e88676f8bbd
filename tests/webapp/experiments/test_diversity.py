"""Diversity per pool: answer figures over every sample, text figures over a fixed, seeded
subsample of at most 32 texts per problem (all of them in smaller pools), embedded in
one call per pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from strategies.metrics.diversity import distinct_n_scores, pairwise_embedding_distance
from strategies.metrics.selfbleu import self_bleu
from strategies.types import Candidate
from tests.factories import make_experiment
from webapp.experiments.diversity import SUBSAMPLE, embedded_problems, subsample
from webapp.experiments.models import Experiment, Metric, Sample
from webapp.experiments.pools import record_samples
from webapp.experiments.results import compute_results
from webapp.experiments.specs import StrategySpec
from webapp.experiments.verification import record_verdicts

pytestmark = pytest.mark.django_db

WORDS = ["we", "add", "the", "two", "numbers", "then", "check", "sum", "again", "so"]


def test_a_pool_of_at_most_32_reads_every_text_in_order() -> None:
    assert subsample(1, 0, 3).tolist() == [0]
    assert subsample(SUBSAMPLE, 5, 3).tolist() == list(range(SUBSAMPLE))


def test_a_larger_pool_reads_32_positions_fixed_by_the_seed_and_the_problem() -> None:
    drawn = subsample(1000, 7, 3)
    assert len(drawn) == len(set(drawn.tolist())) == SUBSAMPLE
    assert drawn.tolist() == sorted(drawn.tolist()) and drawn[0] >= 0 and drawn[-1] < 1000
    assert np.array_equal(drawn, subsample(1000, 7, 3))
    assert not np.array_equal(drawn, subsample(1000, 8, 3))
    assert not np.array_equal(drawn, subsample(1000, 7, 4))


def build(team: Any, n: int) -> Experiment:
    """Two problems; majority and first read one pool, a second majority another. One
    answer of each problem occurs once, at a position outside the text subsample."""
    experiment = make_experiment(
        team, n=n, prompts=[("2+2?", "4"), ("3+3?", "6")],
        strategies=[StrategySpec(temperature=0.8, selector="majority"),
                    StrategySpec(temperature=0.8, selector="first"),
                    StrategySpec(temperature=0.5, selector="majority")])
    rng = np.random.default_rng(1)
    problems = list(experiment.dataset.problems.order_by("index"))
    for pool_id in {s.pool_id for s in experiment.strategies.all()}:
        for problem in problems:
            gold = int(problem.answer)
            answers = [gold + int(i % 3 == 0) for i in range(n)]
            outside = sorted(set(range(n)) - set(subsample(n, 0, problem.index).tolist()))
            if outside:
                answers[outside[0]] = gold + 50
            record_samples(pool_id, problem.pk, {
                i: Candidate(text=" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12))))
                             + f" so the answer is {a}", prompt_tokens=5, generated_tokens=9,
                             logprob_sum=-2.0, finish_reason="eos", seconds=0.01)
                for i, a in enumerate(answers)
            })
        record_verdicts(experiment, pool_id, [p.pk for p in problems])
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)
    return experiment


def texts_read(experiment: Experiment, strategy: Any) -> list[list[str]]:
    """Each problem's texts at the subsample's positions, by hand."""
    out = []
    for problem in experiment.dataset.problems.order_by("index"):
        texts = list(Sample.objects.filter(pool_id=strategy.pool_id, problem=problem)
                     .order_by("index").values_list("text", flat=True))
        out.append([texts[i] for i in subsample(len(texts), experiment.seed, problem.index)])
    return out


def figure(strategy: Any, name: str, k: int = 0) -> float:
    return Metric.objects.get(strategy=strategy, name=name, k=k, labelled=False).value


@pytest.mark.parametrize("n", [6, 40])
def test_text_figures_read_the_subsample_and_answer_figures_every_sample(
        team: Any, n: int) -> None:
    experiment = build(team, n)
    compute_results(experiment.pk)
    strategy = experiment.strategies.get(position=0)
    read = texts_read(experiment, strategy)
    assert [len(texts) for texts in read] == [min(n, SUBSAMPLE)] * 2
    assert figure(strategy, "diversity_subsample") == min(n, SUBSAMPLE)
    assert figure(strategy, "self_bleu_diversity") == pytest.approx(
        np.mean([self_bleu(texts).diversity for texts in read]), abs=1e-12)
    assert figure(strategy, "distinct_n", 2) == pytest.approx(
        np.mean([distinct_n_scores(texts)[2] for texts in read]), abs=1e-12)
    # gold, gold + 1, and in the larger pool the answer that occurs once, outside the
    # subsample: answers are counted over every sample.
    assert figure(strategy, "unique_answers") == (3.0 if n > SUBSAMPLE else 2.0)


def embed_counting(calls: list[int]) -> Callable[[Sequence[str]], np.ndarray]:
    """The worker's MiniLM embedder, noting how many texts each call embeds."""
    from workers.runtime.embeddings import embed_texts

    def embed(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        return embed_texts(texts)

    return embed


def test_each_pool_is_embedded_in_one_call(team: Any) -> None:
    from workers.runtime.embeddings import embed_texts

    experiment = build(team, 40)
    calls: list[int] = []
    compute_results(experiment.pk, embed=embed_counting(calls))
    assert calls == [2 * SUBSAMPLE, 2 * SUBSAMPLE]  # two pools, three strategies
    first, second = experiment.strategies.get(position=0), experiment.strategies.get(position=1)
    expected = np.mean([pairwise_embedding_distance(embed_texts(texts))
                        for texts in texts_read(experiment, first)])
    assert figure(first, "embedding_distance") == pytest.approx(expected, abs=1e-5)
    assert figure(second, "embedding_distance") == figure(first, "embedding_distance")


def test_a_large_experiment_embeds_a_seeded_subset_of_problems_and_the_page_says_so(
        team: Any, client: Any, settings: Any) -> None:
    from workers.runtime.embeddings import embed_texts

    settings.STRATLAB_EMBED_TEXTS = SUBSAMPLE + 8  # one problem's subsample fits, not two
    experiment = build(team, 40)
    calls: list[int] = []
    compute_results(experiment.pk, embed=embed_counting(calls))
    assert calls == [SUBSAMPLE, SUBSAMPLE]
    strategy = experiment.strategies.get(position=0)
    chosen = embedded_problems([SUBSAMPLE, SUBSAMPLE], experiment.seed,
                               settings.STRATLAB_EMBED_TEXTS).tolist()
    assert len(chosen) == 1
    expected = pairwise_embedding_distance(embed_texts(texts_read(experiment, strategy)[
        chosen[0]]))
    assert figure(strategy, "embedding_distance") == pytest.approx(expected, abs=1e-5)
    assert figure(strategy, "embedding_problems") == 1.0

    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.FINISHED)
    client.force_login(team.memberships.get(role="owner").user)
    page = client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "Texts read / problem" in page and "(1 problem)" in page
    table = page[page.index('id="diversity-table"'):]
    assert '<td class="num">32.0</td>' in table[:table.index("</table>")]


def test_every_problem_is_embedded_when_the_texts_fit() -> None:
    assert embedded_problems([32, 5, 32], 0, 69).tolist() == [0, 1, 2]
    drawn = embedded_problems([32] * 100, 3, 512)
    assert len(drawn) == 16 and np.array_equal(drawn, embedded_problems([32] * 100, 3, 512))
    assert len(embedded_problems([32] * 100, 3, 10)) == 1
