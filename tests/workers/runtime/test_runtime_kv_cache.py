"""The preallocated row cache: prompt copies, masks and rows leaving the batch."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from workers.runtime.kv_cache import RowCache, cache_geometry
from workers.runtime.models import LoadedModel


def _cache(tiny: LoadedModel, rows: int, columns: int) -> RowCache:
    return RowCache(tiny.model, rows, columns, dtype=torch.float32, device=torch.device("cpu"))


def _prefilled(tiny: LoadedModel, length: int) -> DynamicCache:
    layers, heads, dim = cache_geometry(tiny.model)
    cache = DynamicCache()
    for layer in range(layers):
        keys = torch.randn(1, heads, length, dim)
        cache.update(keys, keys + 1, layer)
    return cache


def test_it_reads_the_cache_geometry_from_the_config(tiny: LoadedModel) -> None:
    assert cache_geometry(tiny.model) == (2, 2, 16)


def test_it_left_pads_prompts_with_zeros_and_masks_the_padding(tiny: LoadedModel) -> None:
    cache = _cache(tiny, 3, 8)
    cache.buffer.fill_(float("nan"))
    short, long = _prefilled(tiny, 2), _prefilled(tiny, 5)
    cache.write_prompt(slice(0, 2), short, 3)
    cache.write_prompt(slice(2, 3), long, 0)
    cache.column = 5

    keys = cache.buffer[0]
    assert torch.equal(keys[0, :, 3:5], short.layers[0].keys[0])
    assert torch.equal(keys[1, :, 3:5], short.layers[0].keys[0])
    assert torch.equal(cache.buffer[1, 2, :, :5], long.layers[0].values[0])
    assert not keys[:2, :, :3].any()  # zeros, not NaN
    mask = cache.attention_mask(1)
    assert mask.shape == (3, 1, 1, 6)
    assert mask[:, 0, 0].tolist() == [[False] * 3 + [True] * 3] * 2 + [[True] * 6]


def test_it_masks_future_tokens_of_a_multi_token_step(tiny: LoadedModel) -> None:
    cache = _cache(tiny, 1, 8)
    cache.write_prompt(slice(0, 1), _prefilled(tiny, 3), 1)
    cache.column = 4

    mask = cache.attention_mask(3)[0, 0]
    assert mask.tolist() == [
        [False, True, True, True, True, False, False],
        [False, True, True, True, True, True, False],
        [False, True, True, True, True, True, True],
    ]
    window = cache.sliding_mask(cache.attention_mask(3), 2)[0, 0]
    assert window.tolist() == [
        [False, False, False, True, True, False, False],
        [False, False, False, False, True, True, False],
        [False, False, False, False, False, True, True],
    ]


def test_it_moves_live_rows_from_the_end_into_finished_rows(tiny: LoadedModel) -> None:
    cache = _cache(tiny, 5, 4)
    cache.buffer.copy_(torch.arange(5).view(1, 5, 1, 1, 1).expand_as(cache.buffer))
    cache.valid[:, 0] = torch.tensor([True, False, True, False, True])
    cache.column = 3

    order = cache.keep_rows([0, 2, 4])

    assert order == [0, 4, 2]
    assert cache.rows == 3
    assert cache.buffer[:, :3, :, :3].amax(dim=(0, 2, 3, 4)).tolist() == [0, 4, 2]
    assert cache.valid[:3, 0].tolist() == [True, True, True]
    assert cache.view().stop == 3


def test_it_grows_its_columns_keeping_the_live_rows(tiny: LoadedModel) -> None:
    cache = RowCache(tiny.model, 3, 20, dtype=torch.float32, device=torch.device("cpu"), reserved=4)
    cache.write_prompt(slice(0, 3), _prefilled(tiny, 2), 1)
    cache.column = 3
    cache.keep_rows([0, 2])
    before = cache.buffer[:, :2, :, :3].clone()

    cache.reserve(5)

    assert cache.buffer.shape[1] == 2 and cache.columns == 8
    assert torch.equal(cache.buffer[:, :, :, :3], before)
    assert cache.valid[:, :4].tolist() == [[False, True, True, True]] * 2
    cache.reserve(20)
    assert cache.columns == 20
