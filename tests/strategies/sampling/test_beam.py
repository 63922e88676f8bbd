"""Beam search against transformers' ``generate``, and diverse beam search by hand (§4)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from strategies.sampling.beam import (
    BeamSearchConfig,
    DiverseBeamSearchConfig,
    StepFunction,
    beam_search,
    diverse_beam_search,
)

TOY = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()  # every step: token 3 is EOS


def _toy_step(sequences: list[list[int]]) -> torch.Tensor:
    return TOY.repeat(len(sequences), 1)


def _model_step(model: Any) -> StepFunction:
    """A full forward pass per step (no cache): log-softmax of the last position's logits."""

    def step(sequences: list[list[int]]) -> torch.Tensor:
        with torch.no_grad():
            logits = model(torch.tensor(sequences)).logits[:, -1, :].float()
        return torch.log_softmax(logits, dim=-1)

    return step


# (prompt, eos ids, num_beams, early_stopping, length_penalty); these prompts and EOS ids
# make the tiny model finish beams at different lengths, so the stopping rules matter.
HF_CASES = [
    *[
        # Each stopping rule with a length penalty that favours long, neutral and short.
        ([1, 5, 9], [27], 3, stop, lp)
        for stop, lp in ((True, 2.0), (False, -0.5), ("never", 1.0), (False, 0.0))
    ],
    *[
        ([1, 63], [7, 55], 3, stop, lp)
        for stop, lp in ((True, -0.5), ("never", 0.0))
    ],
    ([1, 5, 9], [22], 2, True, 1.0),
    ([1, 20, 33, 40], [27], 4, True, 1.0),
    ([1, 20, 33, 40], [22], 4, False, 1.5),
    ([1, 5, 9], [61], 5, "never", 0.0),
]


@pytest.mark.parametrize(("prompt", "eos", "beams", "stop", "lp"), HF_CASES)
def test_it_matches_hf_generate(
    tiny_llama: Any, prompt: list[int], eos: list[int], beams: int, stop: Any, lp: float
) -> None:
    max_new = 12
    out = tiny_llama.generate(
        input_ids=torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        num_beams=beams,
        do_sample=False,
        num_return_sequences=beams,
        length_penalty=lp,
        early_stopping=stop,
        output_scores=True,
        return_dict_in_generate=True,
        max_new_tokens=max_new,
        eos_token_id=eos,
        pad_token_id=0,
        top_k=None,
        top_p=None,
        temperature=None,
    )
    config = BeamSearchConfig(
        num_beams=beams,
        num_return_sequences=beams,
        length_penalty=lp,
        early_stopping=stop,
        max_new_tokens=max_new,
    )
    got = beam_search(_model_step(tiny_llama), prompt, eos, config)
    assert len(got) == beams
    # HF pads finished rows with `pad_token_id or eos[0]`: 0 is falsy, so with eos[0]
    fill = eos[0]
    for row, hypothesis in enumerate(got):
        generated = out.sequences[row, len(prompt) :].tolist()
        n = len(hypothesis.token_ids)
        assert tuple(generated[:n]) == hypothesis.token_ids
        assert all(token == fill for token in generated[n:])
        assert hypothesis.token_ids[-1] in eos or n == max_new
        assert hypothesis.score == pytest.approx(hypothesis.logprob_sum / n**lp, rel=1e-6)
    scores = torch.tensor([hypothesis.score for hypothesis in got])
    torch.testing.assert_close(scores, out.sequences_scores.float(), rtol=0, atol=1e-4)


def test_it_returns_the_best_first_and_only_as_many_as_asked(tiny_llama: Any) -> None:
    step = _model_step(tiny_llama)
    config = BeamSearchConfig(num_beams=4, num_return_sequences=2, max_new_tokens=6)
    got = beam_search(step, [1, 5, 9], [27], config)
    assert len(got) == 2
    assert got[0].score >= got[1].score
    every = beam_search(
        step,
        [1, 5, 9],
        [27],
        BeamSearchConfig(num_beams=4, num_return_sequences=4, max_new_tokens=6),
    )
    assert got == every[:2]


def test_it_computes_a_toy_beam_search_by_hand() -> None:
    config = BeamSearchConfig(num_beams=2, num_return_sequences=2, max_new_tokens=2)
    got = beam_search(_toy_step, [0], [3], config)
    # step 2 ends every beam: (0, 0) = 2 log 0.5; then (0, 1) and (1, 0) tie at log 0.15
    assert got[0].token_ids == (0, 0)
    assert got[0].logprob_sum == pytest.approx(2 * math.log(0.5), abs=1e-6)
    assert got[0].score == pytest.approx(math.log(0.5), abs=1e-6)
    assert got[1].token_ids in {(0, 1), (1, 0)}
    assert got[1].score == pytest.approx(math.log(0.15) / 2, abs=1e-6)


def test_it_stops_at_eos_and_counts_it_in_the_length() -> None:
    table = torch.tensor([[0.1, 0.0, 0.9], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]]).clamp(min=1e-9).log()

    def step(sequences: list[list[int]]) -> torch.Tensor:
        return table[[sequence[-1] for sequence in sequences]]

    config = BeamSearchConfig(num_beams=2, early_stopping=True, max_new_tokens=5)
    got = beam_search(step, [0], [2], config)
    # token 2 (EOS) after 0 has p = 0.9: the one-token hypothesis (2,) wins at log 0.9 / 1
    assert got[0].token_ids == (2,)
    assert got[0].score == pytest.approx(math.log(0.9), abs=1e-6)


def test_it_penalises_tokens_chosen_by_earlier_groups() -> None:
    config = DiverseBeamSearchConfig(
        num_beams=2,
        num_beam_groups=2,
        diversity_penalty=1.0,
        num_return_sequences=2,
        max_new_tokens=2,
    )
    got = diverse_beam_search(_toy_step, [0], [3], config)
    # group 0 takes token 0 twice; group 1 sees token 0 at log 0.5 - 1 = -1.69 < log 0.3
    # = -1.20, so it takes token 1 at both steps
    assert [hypothesis.token_ids for hypothesis in got] == [(0, 0), (1, 1)]
    assert got[1].logprob_sum == pytest.approx(2 * math.log(0.3), abs=1e-6)
    assert got[1].score == pytest.approx(math.log(0.3), abs=1e-6)  # model log-probs only
    plain = beam_search(
        _toy_step, [0], [3], BeamSearchConfig(num_beams=2, num_return_sequences=2, max_new_tokens=2)
    )
    assert plain[1].token_ids != (1, 1)  # without the penalty the second beam shares a token


def test_it_needs_a_penalty_above_the_log_ratio_to_switch() -> None:
    # group 1 switches from token 0 to token 1 once the penalty exceeds log(0.5 / 0.3) = 0.51
    def groups_with(penalty: float) -> list[tuple[int, ...]]:
        config = DiverseBeamSearchConfig(
            num_beams=2,
            num_beam_groups=2,
            diversity_penalty=penalty,
            num_return_sequences=2,
            max_new_tokens=1,
        )
        return sorted(
            hypothesis.token_ids for hypothesis in diverse_beam_search(_toy_step, [0], [3], config)
        )

    assert groups_with(0.5) == [(0,), (0,)]
    assert groups_with(0.52) == [(0,), (1,)]


def test_it_counts_every_earlier_group() -> None:
    config = DiverseBeamSearchConfig(
        num_beams=3,
        num_beam_groups=3,
        diversity_penalty=2.0,
        num_return_sequences=3,
        max_new_tokens=1,
    )
    got = diverse_beam_search(_toy_step, [0], [3], config)
    # group 0 takes 0, group 1 avoids 0 and takes 1, group 2 avoids both and takes 2
    assert sorted(hypothesis.token_ids for hypothesis in got) == [(0,), (1,), (2,)]


def test_it_runs_diverse_beam_search_on_a_model(tiny_llama: Any) -> None:
    config = DiverseBeamSearchConfig(
        num_beams=4,
        num_beam_groups=2,
        diversity_penalty=5.0,
        num_return_sequences=4,
        max_new_tokens=6,
    )
    got = diverse_beam_search(_model_step(tiny_llama), [1, 5, 9], [27], config)
    assert len(got) == 4
    assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
    first_tokens = {hypothesis.token_ids[0] for hypothesis in got}
    assert len(first_tokens) >= 3  # the groups open with different tokens


def test_it_checks_the_step_output() -> None:
    with pytest.raises(ValueError, match="step must return"):
        beam_search(lambda seqs: torch.zeros(5), [0], [3], BeamSearchConfig())


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: BeamSearchConfig(num_beams=1), "num_beams"),
        (lambda: BeamSearchConfig(num_beams=2, num_return_sequences=3), "num_return_sequences"),
        (lambda: BeamSearchConfig(num_return_sequences=0), "num_return_sequences"),
        (lambda: BeamSearchConfig(length_penalty=float("nan")), "length_penalty"),
        (lambda: BeamSearchConfig(early_stopping="always"), "early_stopping"),  # type: ignore[arg-type]
        (lambda: BeamSearchConfig(early_stopping=1), "early_stopping"),  # type: ignore[arg-type]
        (lambda: BeamSearchConfig(max_new_tokens=0), "max_new_tokens"),
        (lambda: DiverseBeamSearchConfig(num_beams=4, num_beam_groups=3), "divide"),
        (lambda: DiverseBeamSearchConfig(num_beams=4, num_beam_groups=1), "num_beam_groups"),
        (lambda: DiverseBeamSearchConfig(num_beams=4, num_beam_groups=8), "num_beam_groups"),
        (lambda: DiverseBeamSearchConfig(diversity_penalty=0.0), "diversity_penalty"),
        (lambda: DiverseBeamSearchConfig(diversity_penalty=-1.0), "diversity_penalty"),
        (lambda: DiverseBeamSearchConfig(num_beams=1, num_beam_groups=1), "num_beams"),
    ],
)
def test_it_validates_the_configs(factory: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        factory()  # type: ignore[operator]


def test_it_validates_token_ids() -> None:
    with pytest.raises(ValueError, match="eos token id"):
        beam_search(_toy_step, [0], [-1], BeamSearchConfig())
    with pytest.raises(ValueError, match="prompt token id"):
        beam_search(_toy_step, [0.5], [3], BeamSearchConfig())  # type: ignore[list-item]
