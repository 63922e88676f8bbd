"""Diversity of a pool's samples, measured once per pool for every strategy reading it.

The answer figures (unique answers, answer entropy) count every sample, from the answer
groups. The text figures (distinct-n, self-BLEU, embedding distance) read a fixed,
seeded subsample of at most ``SUBSAMPLE`` texts per problem: all of them, in order, when
a problem has that many or fewer (small experiments keep their exact figures), else a
draw without replacement seeded by the experiment's seed and the problem's index, the
same for every pool and strategy. Only those texts are loaded. The subsample's size per
problem is kept (``Diversity.sizes``), for the page to state what the figures read.

Embeddings cost far more than the other figures (MiniLM embeds about 46 texts/s on two
CPU cores), so the embedding distance reads the subsamples of a seeded subset of the
problems, as many as ``STRATLAB_EMBED_TEXTS`` texts allow (every problem when they fit),
embedded in one call per pool; the mean over those problems comes with its bootstrap
interval like every figure, and the number of problems is kept (``Diversity.embedded``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from django.conf import settings

from strategies.metrics.diversity import (
    answer_entropy,
    distinct_n_per_prompt,
    pairwise_embedding_distance,
    prompt_ngrams,
    unique_answers,
)
from strategies.metrics.selfbleu import MAX_ORDER, self_bleu_per_prompt
from webapp.experiments.pool_samples import Diversity, PoolSamples

Embedder = Callable[[Sequence[str]], np.ndarray]

#: Texts per problem that the text figures read.
SUBSAMPLE = 32
# Third word of the subsample generator's seed, apart from the selectors' streams
# (experiment seed, problem index, strategy position).
SUBSAMPLE_STREAM = 0xD1
# Third word of the seed of the problems whose texts are embedded.
EMBED_STREAM = 0xE1

DISTINCT_NS = (1, 2, 3)


def subsample(size: int, seed: int, index: int) -> np.ndarray:
    """Positions of the texts (of ``size``) that the text figures read for the problem
    of this index: all up to ``SUBSAMPLE``, else a seeded draw, in increasing order.

    >>> subsample(3, 0, 7).tolist()
    [0, 1, 2]
    >>> len(subsample(100, 0, 7)), bool((subsample(100, 0, 7) == subsample(100, 0, 7)).all())
    (32, True)
    """
    if size <= SUBSAMPLE:
        return np.arange(size)
    rng = np.random.default_rng([seed, index, SUBSAMPLE_STREAM])
    return np.sort(rng.choice(size, SUBSAMPLE, replace=False))


def embedded_problems(sizes: Sequence[int], seed: int, budget: int) -> np.ndarray:
    """Rows of the problems whose subsamples are embedded: all of them when their texts fit
    in ``budget``, else a seeded draw of as many as fit at the largest subsample size
    (at least one), in increasing order.

    >>> embedded_problems([32] * 10, 0, 512).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> len(embedded_problems([32] * 500, 0, 512))
    16
    """
    if sum(sizes) <= budget:
        return np.arange(len(sizes))
    count = max(1, budget // max(sizes))
    rng = np.random.default_rng([seed, len(sizes), EMBED_STREAM])
    return np.sort(rng.choice(len(sizes), count, replace=False))


def measure_diversity(data: PoolSamples, seed: int, embed: Embedder | None) -> Diversity:
    """Per-problem diversity of the pool: answers (by their groups, which count alike
    when their canonical answers are equal) over all samples, texts over the subsample."""
    groups = data.groups()
    picked = [subsample(int(size), seed, int(index))
              for size, index in zip(data.sizes, data.indices, strict=True)]
    ids = [data.sample_ids[row, positions].tolist() for row, positions in enumerate(picked)]
    by_id = data.texts([pk for row in ids for pk in row])
    prompts = [[by_id[pk] for pk in row] for row in ids]
    ngrams = prompt_ngrams(prompts, max(DISTINCT_NS + (MAX_ORDER,)))
    distinct = distinct_n_per_prompt(ngrams, DISTINCT_NS)
    bleu = 1.0 - self_bleu_per_prompt(ngrams, seed=seed)
    result = Diversity({n: distinct[n].tolist() for n in DISTINCT_NS}, bleu.tolist(), [], [],
                       [], [len(row) for row in ids], 0)
    for row, size in enumerate(data.sizes.tolist()):
        answers = [None if g < 0 else g for g in groups[row, :size].tolist()]
        result.unique.append(float(unique_answers(answers).count))
        result.entropy.append(answer_entropy(answers))
    if embed is not None:
        rows = [prompts[row] for row in embedded_problems(
            result.sizes, seed, settings.STRATLAB_EMBED_TEXTS).tolist()]
        vectors = embed([text for row in rows for text in row])
        start = 0
        for row in rows:
            result.embedding.append(float(pairwise_embedding_distance(
                vectors[start:start + len(row)])))
            start += len(row)
        result.embedded = len(rows)
    return result
