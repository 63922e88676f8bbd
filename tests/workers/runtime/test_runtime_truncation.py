"""The top-M fast path: recognised processors and an exact filtered distribution."""

from __future__ import annotations

import math

import pytest
import torch

from strategies.sampling import DecodingConfig, build_processor
from workers.runtime.models import LoadedModel
from workers.runtime.truncation import Truncation, describe_processor, fast_filter


def _full(logits: torch.Tensor, config: DecodingConfig) -> torch.Tensor:
    """The full path: ``softmax(build_processor(config)(logits))`` over the vocabulary."""
    positions = torch.zeros(logits.shape[0], dtype=torch.long)
    return torch.softmax(build_processor(config)(logits.clone(), positions), dim=-1)


def _logits(tiny: LoadedModel) -> torch.Tensor:
    """Rows of every shape: flat, peaked, very peaked, real model rows, ties, -inf, NaN."""
    gen = torch.Generator().manual_seed(3)
    vocab = len(tiny.tokenizer)
    rows = [torch.randn(40, vocab, generator=gen) * scale for scale in (1.0, 4.0, 8.0, 16.0)]
    ids = torch.tensor([tiny.encode_prompt(tiny.render_prompt("Name three colours."))])
    with torch.inference_mode():
        real = tiny.model(input_ids=ids).logits[0].float()
    rows.append(real * 12.0)  # sharpened, like a trained model's next-token rows
    tied = torch.randn(4, vocab, generator=gen) * 8.0
    top = tied.max(dim=-1).values
    tied[:, :3] = top.unsqueeze(-1) + 1.0  # a three-way tie at the top
    masked = torch.randn(2, vocab, generator=gen) * 8.0
    masked[:, 100:] = -math.inf
    nan = torch.randn(1, vocab, generator=gen)
    nan[0, 5] = math.nan
    return torch.cat([*rows, tied, masked, nan])


def test_it_recognises_build_processor_chains() -> None:
    def describe(**fields: float) -> Truncation | None:
        return describe_processor(build_processor(DecodingConfig(**fields)))

    assert describe() == Truncation()
    assert describe(temperature=0.8, top_p=0.9) == Truncation(temperature=0.8, top_p=0.9)
    assert describe(top_k=20) == Truncation(top_k=20)
    assert describe(temperature=1.3, top_k=5, top_p=0.5) == Truncation(1.3, 5, 0.5)
    assert not describe(temperature=0.7).is_truncating
    assert describe(top_p=0.9, min_p=0.05) is None
    assert describe(typical_p=0.9) is None
    assert describe(top_h_alpha=0.3) is None
    assert describe_processor(None) is None
    assert describe_processor(lambda scores, positions: scores) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0.8, "top_p": 0.9},
        {"top_p": 0.5},
        {"temperature": 1.3, "top_p": 0.95},
        {"top_k": 20},
        {"temperature": 0.6, "top_k": 50, "top_p": 0.9},
        {"top_k": 1},
    ],
)
def test_it_filters_the_top_m_exactly_like_the_full_path(
    tiny: LoadedModel, fields: dict[str, float]
) -> None:
    config = DecodingConfig(**fields)
    spec = describe_processor(build_processor(config))
    assert spec is not None and spec.is_truncating
    logits = _logits(tiny)

    ids, probs, ok = fast_filter(logits, spec)
    full = _full(logits, config)

    fast_rows = ok.nonzero(as_tuple=True)[0]
    assert 0.3 * len(logits) < len(fast_rows) < len(logits)  # both paths are exercised
    scattered = torch.zeros_like(full[fast_rows]).scatter(-1, ids[fast_rows], probs[fast_rows])
    assert torch.equal(scattered > 0, full[fast_rows] > 0)  # the same kept set
    torch.testing.assert_close(scattered, full[fast_rows], atol=1e-6, rtol=1e-5)
    assert not ok[-1]  # the NaN row takes the full path


def test_it_sends_a_tie_at_the_top_k_boundary_to_the_full_path() -> None:
    logits = torch.tensor([[5.0, 4.0, 3.0, 3.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    _, _, ok = fast_filter(logits, Truncation(top_k=3))
    assert ok.tolist() == [False, True]


def test_it_sends_a_nucleus_near_the_threshold_to_the_full_path() -> None:
    # Masses 0.5, 0.4, 0.1: with top_p 0.9 the mass above the third token is exactly 0.9.
    logits = torch.tensor([[0.5, 0.4, 0.1, 0.0], [0.5, 0.3, 0.2, 0.0]]).log()
    _, probs, ok = fast_filter(logits, Truncation(top_p=0.9))
    assert ok.tolist() == [False, True]
    assert probs[1].tolist() == pytest.approx([0.5, 0.3, 0.2, 0.0])


def test_it_filters_wide_nuclei_exactly_in_the_wide_top_m(tiny: LoadedModel) -> None:
    from workers.runtime.sampler import WIDE_TOP_M

    config = DecodingConfig(temperature=0.8, top_p=0.9)
    spec = describe_processor(build_processor(config))
    assert spec is not None
    logits = _logits(tiny)

    narrow = fast_filter(logits, spec)[2]
    ids, probs, ok = fast_filter(logits, spec, top_m=WIDE_TOP_M)
    full = _full(logits, config)

    wide_rows = (ok & ~narrow).nonzero(as_tuple=True)[0]
    assert len(wide_rows) >= 10  # rows only the wide top M decides
    scattered = torch.zeros_like(full[wide_rows]).scatter(-1, ids[wide_rows], probs[wide_rows])
    assert torch.equal(scattered > 0, full[wide_rows] > 0)
    torch.testing.assert_close(scattered, full[wide_rows], atol=1e-6, rtol=1e-5)
