"""Test models: a tiny random-weight Llama that speaks the SmolLM2 vocabulary.

``build_tiny_model(dest)`` writes a complete Hugging Face model directory (weights,
config, generation config, tokenizer with the SmolLM2 chat template) in a few seconds,
so tests can run the real generation path without loading a real model. The SmolLM2
tokenizer is read once from the packaged GGUF and cached on disk (and in memory).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TINY_SEED = 1234


def _model_cache_dir() -> Path:
    """The same converted-model cache the app and the test suite use."""
    path = Path(os.environ.get("STRATLAB_MODEL_CACHE", ROOT / "var" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def smollm2_tokenizer() -> Any:
    """The SmolLM2-135M-Instruct tokenizer (chat template included), loaded once."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workers.runtime.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct", cache_dir=_model_cache_dir())


def build_tiny_model(dest: Path, seed: int = TINY_SEED) -> Path:
    """Write a tiny random LlamaForCausalLM with the SmolLM2 tokenizer into ``dest``.

    Two layers, hidden size 64, four heads; weights are drawn from a fixed seed inside
    ``torch.random.fork_rng`` so the global RNG is left as it was and every build is
    identical (another ``seed`` gives other weights, e.g. a draft model with the same
vocabulary). Returns ``dest``.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    eos_id = int(tokenizer.eos_token_id)
    bos_id = tokenizer.bos_token_id
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.1,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id
    )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    logger.debug("tiny model written to %s", dest)
    return dest
