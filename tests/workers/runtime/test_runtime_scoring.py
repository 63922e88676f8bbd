"""Yes/No next-token log-probs match a single unpadded forward pass."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from workers.runtime.scoring import first_token_ids, yes_no_logprobs


def reference(loaded: Any, prompt: str, ids: list[int]) -> float:
    tokens = torch.tensor([loaded.encode_prompt(loaded.render_prompt(prompt))])
    with torch.inference_mode():
        logits = loaded.model(input_ids=tokens).logits[0, -1].float()
    return float(torch.logsumexp(torch.log_softmax(logits, -1)[ids], -1))


def test_it_matches_an_unpadded_forward_pass_for_prompts_of_different_lengths(tiny: Any) -> None:
    prompts = ["Is 2 + 2 = 4?", "Would you do better if you started over? Answer Yes or No."]
    got = yes_no_logprobs(tiny, prompts, yes=["Yes", " Yes"], no=["No", " No"])
    yes_ids = first_token_ids(tiny, ["Yes", " Yes"])
    no_ids = first_token_ids(tiny, ["No", " No"])
    for prompt, (log_yes, log_no) in zip(prompts, got, strict=True):
        assert log_yes == pytest.approx(reference(tiny, prompt, yes_ids), abs=1e-4)
        assert log_no == pytest.approx(reference(tiny, prompt, no_ids), abs=1e-4)
        assert math.exp(log_yes) + math.exp(log_no) <= 1.0


def test_it_rejects_spellings_that_encode_to_nothing(tiny: Any) -> None:
    with pytest.raises(ValueError, match="encodes to a token"):
        first_token_ids(tiny, [""])
