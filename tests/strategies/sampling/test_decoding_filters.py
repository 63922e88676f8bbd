"""DecodingConfig's optional filters: validation, pool-key fields, and the chain against HF."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from strategies.sampling.decoding import DecodingConfig, build_processor, build_row_processor
from strategies.sampling.ead import EADConfig, apply_ead
from strategies.sampling.top_h import TopHConfig, apply_top_h

transformers = pytest.importorskip("transformers")
hf = pytest.importorskip("transformers.generation.logits_process")

PROMPT_LEN = 4


class _HFWrapped(hf.LogitsProcessor):  # type: ignore[misc,name-defined]
    """One of our custom processors as an HF ``LogitsProcessor`` (t from the sequence length)."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1] - PROMPT_LEN
        positions = torch.full((scores.shape[0],), t, dtype=torch.long)
        result: torch.Tensor = self.function(scores, positions)
        return result


def _hf_chain(model: Any, config: DecodingConfig, temperature: float) -> Any:
    """Build HF's own processor list from the same settings via ``generate``'s builder."""
    custom = hf.LogitsProcessorList()
    if config.ead:
        ead = EADConfig(
            tau_max=config.ead_tau_max,
            tau_min=config.ead_tau_min,
            decay=config.ead_decay,
            warmup=config.ead_warmup,
        )
        custom.append(_HFWrapped(lambda s, p: apply_ead(s, p, ead)))
    if config.top_h_alpha > 0:
        top_h = TopHConfig(alpha=config.top_h_alpha, top_n=config.top_h_n, temperature=temperature)
        custom.append(_HFWrapped(lambda s, p: apply_top_h(s, p, top_h)))
    generation = transformers.GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        min_p=config.min_p or None,
        typical_p=config.typical_p,
        epsilon_cutoff=config.epsilon_cutoff,
        eta_cutoff=config.eta_cutoff,
    )
    return model._get_logits_processor(
        generation_config=generation,
        input_ids_seq_length=PROMPT_LEN,
        logits_processor=custom,
        device="cpu",
    )


def _scores(seed: int, batch: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scale = 1 + 4 * torch.rand(batch, 1, generator=generator)
    return torch.randn(batch, 64, generator=generator) * scale


CHAINS = [
    DecodingConfig(min_p=0.1),
    DecodingConfig(temperature=0.7, min_p=0.05),
    DecodingConfig(temperature=0.8, typical_p=0.9),
    DecodingConfig(top_k=20, epsilon_cutoff=3e-4),
    DecodingConfig(top_p=0.95, eta_cutoff=1e-3),
    DecodingConfig(
        temperature=0.9,
        top_k=30,
        top_p=0.95,
        min_p=0.02,
        typical_p=0.95,
        epsilon_cutoff=1e-4,
        eta_cutoff=2e-3,
    ),
    DecodingConfig(temperature=2.0, top_h_alpha=0.4),
    DecodingConfig(temperature=1.3, top_h_alpha=0.6, top_h_n=20, top_k=10, top_p=0.9),
    DecodingConfig(ead=True),
    DecodingConfig(ead=True, top_p=0.9, min_p=0.05),
    DecodingConfig(ead=True, ead_decay=2.0, ead_warmup=3, ead_tau_min=0.3, top_h_alpha=0.5),
]


@pytest.mark.parametrize("config", CHAINS)
@pytest.mark.parametrize("t", [0, 5, 40, 300])
def test_it_chains_like_hf_generate(tiny_llama: Any, config: DecodingConfig, t: int) -> None:
    process = build_processor(config)
    warpers = _hf_chain(tiny_llama, config, config.temperature)
    assert len(warpers) > 0
    for seed in range(3):
        scores = _scores(seed)
        before = scores.clone()
        got = process(scores, torch.full((5,), t, dtype=torch.long))
        input_ids = torch.zeros(5, PROMPT_LEN + t, dtype=torch.long)
        expected = warpers(input_ids, scores.clone())
        assert torch.equal(got.isinf(), expected.isinf())
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        assert torch.equal(scores, before)


@pytest.mark.parametrize(
    "config",
    [
        DecodingConfig(temperature_mix=(0.5, 0.9, 1.4)),
        DecodingConfig(temperature_mix=(0.6, 1.0), top_k=20, top_p=0.9, min_p=0.05),
        DecodingConfig(temperature_mix=(0.5, 2.0), top_h_alpha=0.5, eta_cutoff=1e-3),
    ],
)
def test_it_chains_each_row_at_its_sample_temperature(
    tiny_llama: Any, config: DecodingConfig
) -> None:
    indices = [0, 1, 2, 3, 7]
    process = build_row_processor(config, indices)
    scores = _scores(11)
    got = process(scores, torch.full((5,), 2, dtype=torch.long))
    for row, index in enumerate(indices):
        temperature = config.sample_temperature(index)
        warpers = _hf_chain(tiny_llama, config, temperature)
        input_ids = torch.zeros(1, PROMPT_LEN + 2, dtype=torch.long)
        expected = warpers(input_ids, scores[row : row + 1].clone())
        torch.testing.assert_close(got[row : row + 1], expected, rtol=0, atol=0)


def test_it_builds_row_processors_for_plain_configs_too() -> None:
    config = DecodingConfig(temperature=0.7, top_k=5)
    scores = _scores(2, batch=3)
    positions = torch.zeros(3, dtype=torch.long)
    got = build_row_processor(config, [4, 5, 6])(scores, positions)
    assert torch.equal(got, build_processor(config)(scores, positions))
    with pytest.raises(ValueError, match="3 rows but 2 sample indices"):
        build_row_processor(config, [0, 1])(scores, positions)
    with pytest.raises(ValueError, match="sample index"):
        build_row_processor(config, [0, -1])


def test_it_needs_row_processors_for_temperature_mix() -> None:
    with pytest.raises(ValueError, match="build_row_processor"):
        build_processor(DecodingConfig(temperature_mix=(0.5, 1.0)))


def test_it_reports_sample_temperatures() -> None:
    mixed = DecodingConfig(temperature_mix=(0.5, 1.0, 1.5))
    assert [mixed.sample_temperature(i) for i in range(4)] == [0.5, 1.0, 1.5, 0.5]
    assert DecodingConfig(temperature=0.7).sample_temperature(9) == 0.7


def test_it_ignores_every_filter_when_greedy() -> None:
    config = DecodingConfig(temperature=0, min_p=0.5, typical_p=0.2, top_h_alpha=0.3)
    scores = _scores(0)
    assert torch.equal(build_processor(config)(scores, torch.zeros(5, dtype=torch.long)), scores)


def test_it_defaults_every_new_filter_to_off() -> None:
    config = DecodingConfig()
    assert (config.min_p, config.typical_p, config.epsilon_cutoff, config.eta_cutoff) == (
        0.0,
        1.0,
        0.0,
        0.0,
    )
    assert (config.top_h_alpha, config.top_h_n, config.ead, config.temperature_mix) == (
        0.0,
        100,
        False,
        (),
    )
    assert (config.ead_tau_max, config.ead_tau_min, config.ead_decay, config.ead_warmup) == (
        1.2,
        0.1,
        25.0,
        10,
    )
    scores = _scores(4)
    assert torch.equal(build_processor(config)(scores, torch.zeros(5, dtype=torch.long)), scores)


def test_it_keys_only_the_original_fields_and_changed_ones() -> None:
    original = {"temperature": 0.7, "top_p": 0.95, "top_k": 0, "max_new_tokens": 256}
    assert DecodingConfig(temperature=0.7, top_p=0.95).key_fields() == original
    assert DecodingConfig().key_fields() == {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "max_new_tokens": 256,
    }
    keyed = DecodingConfig(temperature=0.7, top_p=0.95, min_p=0.05, top_h_alpha=0.4, top_h_n=50)
    assert keyed.key_fields() == {**original, "min_p": 0.05, "top_h_alpha": 0.4, "top_h_n": 50}
    ead = DecodingConfig(ead=True, ead_decay=40.0).key_fields()
    assert ead["ead"] is True and ead["ead_decay"] == 40.0 and "ead_tau_max" not in ead
    mixed = DecodingConfig(temperature_mix=(0.5, 1.0)).key_fields()
    assert mixed["temperature_mix"] == (0.5, 1.0)
    every = {field.name for field in dataclasses.fields(DecodingConfig)}
    assert set(dataclasses.asdict(DecodingConfig()).keys()) == every


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_p": -0.1}, "min_p"),
        ({"min_p": 1.5}, "min_p"),
        ({"typical_p": 0.0}, "typical_p"),
        ({"typical_p": 1.1}, "typical_p"),
        ({"epsilon_cutoff": 1.0}, "epsilon_cutoff"),
        ({"epsilon_cutoff": -1e-4}, "epsilon_cutoff"),
        ({"eta_cutoff": 1.0}, "eta_cutoff"),
        ({"eta_cutoff": float("nan")}, "eta_cutoff"),
        ({"top_h_alpha": -0.1}, "top_h_alpha"),
        ({"top_h_alpha": 1.1}, "top_h_alpha"),
        ({"top_h_alpha": 0.4, "top_h_n": 0}, "top_h_n"),
        ({"top_h_n": 50}, "top_h_n only applies with Top-H"),
        ({"ead": 1}, "ead must be True or False"),
        ({"ead": True, "ead_tau_min": 0.0}, "ead_tau_min"),
        ({"ead": True, "ead_tau_max": 6.0}, "ead_tau_max"),
        ({"ead": True, "ead_tau_max": 0.5, "ead_tau_min": 0.6}, "ead_tau_min must be <="),
        ({"ead": True, "ead_decay": 0.0}, "ead_decay"),
        ({"ead": True, "ead_warmup": -1}, "ead_warmup"),
        ({"ead_decay": 40.0}, "ead_decay only apply with ead=True"),
        ({"ead": True, "temperature": 0.7}, "ead requires temperature == 1.0"),
        ({"ead": True, "temperature": 0}, "ead requires temperature == 1.0"),
        ({"ead": True, "temperature_mix": (0.5, 1.0)}, "ead and temperature_mix"),
        ({"temperature_mix": [0.5, 1.0]}, "temperature_mix"),
        ({"temperature_mix": (0.5, 0.0)}, "temperature_mix"),
        ({"temperature_mix": (0.5, 9.0)}, "temperature_mix"),
        ({"temperature_mix": (0.5,), "temperature": 0}, "temperature must be > 0"),
    ],
)
def test_it_names_the_invalid_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecodingConfig(**kwargs)  # type: ignore[arg-type]


def test_it_accepts_the_new_bounds() -> None:
    DecodingConfig(min_p=1.0, typical_p=1e-6, epsilon_cutoff=0.999, eta_cutoff=0.999)
    DecodingConfig(top_h_alpha=1.0, top_h_n=1, top_k=50, top_p=0.9)  # allowed; both truncate
    DecodingConfig(ead=True, ead_tau_max=0.1, ead_tau_min=0.1, ead_warmup=0, ead_decay=1e-3)
    DecodingConfig(temperature_mix=(5.0,), temperature=0.3)
