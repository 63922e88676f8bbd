"""The packaged MiniLM embedding model loads offline and embeds meaningfully."""

from __future__ import annotations

import numpy as np

from workers.runtime.embeddings import embed_texts


def test_it_embeds_paraphrases_closer_than_unrelated_text() -> None:
    vectors = embed_texts(["The answer is 8.", "So the result is 8.", "Paris is in France."])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


def test_it_returns_an_empty_matrix_for_no_texts() -> None:
    assert embed_texts([]).shape == (0, 384)
