"""Next-token log-probabilities of chosen answers ("Yes"/"No") after a prompt.

This is the model side of self-evaluation (ALGORITHMS section 12a): one forward
pass per prompt batch, reading the last position's distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.runtime.models import LoadedModel


def first_token_ids(loaded: LoadedModel, spellings: Sequence[str]) -> list[int]:
    """The first token of each spelling (e.g. "Yes" and " Yes"), without duplicates."""
    ids: list[int] = []
    for spelling in spellings:
        tokens = loaded.tokenizer.encode(spelling, add_special_tokens=False)
        if tokens and tokens[0] not in ids:
            ids.append(tokens[0])
    if not ids:
        raise ValueError(f"none of {list(spellings)!r} encodes to a token")
    return ids


def yes_no_logprobs(
    loaded: LoadedModel,
    prompts: Sequence[str],
    *,
    yes: Sequence[str],
    no: Sequence[str],
    batch_size: int = 8,
) -> list[tuple[float, float]]:
    """(log P(yes), log P(no)) of the next token after each user prompt.

    Each side is the logsumexp over its spellings' first tokens, under the
    unmodified model distribution. Prompts go through the model's chat template.
    """
    import torch

    yes_ids = first_token_ids(loaded, yes)
    no_ids = first_token_ids(loaded, no)
    results: list[tuple[float, float]] = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            batch = [loaded.encode_prompt(loaded.render_prompt(p))
                     for p in prompts[start : start + batch_size]]
            width = max(len(ids) for ids in batch)
            pad = loaded.eos_token_ids[0]
            # Left padding keeps every prompt's last token in the last column.
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch],
                                     device=loaded.device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch],
                                device=loaded.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = loaded.model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions
            ).logits[:, -1, :].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            log_yes = torch.logsumexp(logprobs[:, yes_ids], dim=-1)
            log_no = torch.logsumexp(logprobs[:, no_ids], dim=-1)
            results.extend(
                (float(y), float(n)) for y, n in zip(log_yes.tolist(), log_no.tolist(), strict=True)
            )
    return [(y if math.isfinite(y) else -math.inf, n if math.isfinite(n) else -math.inf)
            for y, n in results]
