"""Greedy decoding with prompt-lookup or draft-model drafts gives exactly the plain
greedy output."""

from __future__ import annotations

import pytest
import torch

from tests.workers.runtime.helpers import batch_sizes, hf_greedy
from workers.runtime.engine import generate, generate_many
from workers.runtime.models import LoadedModel
from workers.runtime.speculative import check_draft, greedy_speculative, propose

TEXTS = (
    "Name three colours.",
    "Hi",
    "Write a short poem about the sea, the wind and a lighthouse keeper at night.",
    "What is 12 + 30?",
    "Repeat after me: one two three, one two three, one two three.",
)


def test_it_proposes_what_followed_the_latest_match() -> None:
    assert propose([1, 2, 3, 9, 1, 2, 3, 7, 5, 1, 2, 3], 2) == [7, 5]
    assert propose([4, 5, 6, 4, 5], 3) == [6, 4, 5]
    assert propose([1, 2, 3, 4], 3) == []
    assert propose([8, 1, 8], 0) == []


@pytest.mark.parametrize("draft_tokens", [1, 4, 8])
def test_it_matches_plain_greedy_and_transformers(tiny: LoadedModel, draft_tokens: int) -> None:
    accepted = 0
    for text in TEXTS:
        prompt = tiny.render_prompt(text)
        [plain] = generate(
            tiny, prompt, n=1, processor=None, greedy=True, max_new_tokens=30, seed=0
        )
        [fast] = generate(
            tiny,
            prompt,
            n=1,
            processor=None,
            greedy=True,
            max_new_tokens=30,
            seed=0,
            speculative_tokens=draft_tokens,
        )
        tokens, logprobs, finish, stats = greedy_speculative(
            tiny, tiny.encode_prompt(prompt), max_new_tokens=30, draft_tokens=draft_tokens
        )

        assert list(fast.token_ids) == list(plain.token_ids) == hf_greedy(tiny, prompt, 30)
        assert tokens == list(plain.token_ids)
        assert fast.finish_reason == plain.finish_reason == finish
        assert fast.token_logprobs == pytest.approx(plain.token_logprobs, abs=1e-4)
        assert fast.logprob_sum == pytest.approx(plain.logprob_sum, abs=1e-3)
        assert stats.passes <= len(tokens)
        accepted += stats.accepted
    assert accepted > 0  # the drafts were used, not only rejected


def test_it_stops_on_stop_strings_and_eos_like_plain_greedy(tiny: LoadedModel) -> None:
    prompts = [tiny.render_prompt(text) for text in TEXTS]
    plain = generate_many(
        tiny, prompts, n=2, processor=None, greedy=True, max_new_tokens=25, seed=0
    )
    # A stop string taken from the middle of a greedy continuation.
    stop = plain[4][0].text[10:14]
    assert stop.strip()

    reasons = set()
    for max_new in (1, 7, 25):
        options = {
            "n": 2,
            "processor": None,
            "greedy": True,
            "max_new_tokens": max_new,
            "seed": 0,
            "stop_strings": (stop,),
        }
        for prompt in prompts:
            want = generate(tiny, prompt, **options)
            got = generate(tiny, prompt, speculative_tokens=5, **options)
            assert [s.token_ids for s in got] == [s.token_ids for s in want]
            assert [s.text for s in got] == [s.text for s in want]
            assert [s.finish_reason for s in got] == [s.finish_reason for s in want]
            reasons.update(s.finish_reason for s in got)
    assert "stop" in reasons


def test_it_drafts_only_for_a_greedy_row_that_decodes_alone(tiny: LoadedModel) -> None:
    prompts = [tiny.render_prompt(text) for text in TEXTS[-2:]]
    options = {"n": 1, "processor": None, "greedy": True, "max_new_tokens": 12, "seed": 0}

    with batch_sizes(tiny.model) as alone:
        generate(tiny, prompts[1], speculative_tokens=4, **options)
    with batch_sizes(tiny.model) as together:
        many = generate_many(tiny, prompts, speculative_tokens=4, **options)
    plain = generate_many(tiny, prompts, **options)

    assert max(width for _, width in alone[1:]) > 1  # drafts verified in one pass
    # two rows batched, no drafts
    assert [width for _, width in together[2:]] == [1] * (len(together) - 2)
    assert [g[0].token_ids for g in many] == [g[0].token_ids for g in plain]


def test_it_leaves_sampled_requests_to_the_batch(tiny: LoadedModel) -> None:
    prompts = [tiny.render_prompt(text) for text in TEXTS[:2]]
    options = {"n": 3, "processor": None, "max_new_tokens": 6, "seed": 4}
    plain = generate_many(tiny, prompts, greedy_per_prompt=[True, False], greedy=False, **options)
    fast = generate_many(
        tiny,
        prompts,
        greedy_per_prompt=[True, False],
        greedy=False,
        speculative_tokens=3,
        **options,
    )

    assert [[s.token_ids for s in g] for g in fast] == [[s.token_ids for s in g] for g in plain]


def test_it_rejects_a_negative_draft(tiny: LoadedModel) -> None:
    with pytest.raises(ValueError, match="speculative_tokens"):
        generate(
            tiny,
            tiny.render_prompt("Hi"),
            n=1,
            processor=None,
            greedy=True,
            max_new_tokens=3,
            seed=0,
            speculative_tokens=-1,
        )


@pytest.mark.parametrize("draft_tokens", [1, 3, 6])
def test_a_draft_model_gives_the_plain_greedy_output(
    tiny: LoadedModel, tiny_draft: LoadedModel, draft_tokens: int
) -> None:
    for text in TEXTS:
        prompt = tiny.render_prompt(text)
        options = {"n": 1, "processor": None, "greedy": True, "max_new_tokens": 30, "seed": 0}
        [plain] = generate(tiny, prompt, **options)
        [fast] = generate(
            tiny, prompt, speculative_tokens=draft_tokens, draft=tiny_draft, **options
        )
        tokens, _, finish, stats = greedy_speculative(
            tiny,
            tiny.encode_prompt(prompt),
            max_new_tokens=30,
            draft_tokens=draft_tokens,
            draft=tiny_draft,
        )

        assert list(fast.token_ids) == list(plain.token_ids) == tokens
        assert fast.finish_reason == plain.finish_reason == finish
        assert fast.token_logprobs == pytest.approx(plain.token_logprobs, abs=1e-4)
        assert stats.drafted > 0


def test_a_draft_that_agrees_with_the_target_is_always_accepted(tiny: LoadedModel) -> None:
    # The target as its own draft: every drafted token is the target's argmax.
    prompt = tiny.encode_prompt(tiny.render_prompt(TEXTS[2]))
    tokens, _, finish, stats = greedy_speculative(
        tiny, prompt, max_new_tokens=40, draft_tokens=4, draft=tiny
    )
    plain, _, _, _ = greedy_speculative(tiny, prompt, max_new_tokens=40, draft_tokens=0)

    assert tokens == plain
    assert stats.accepted == stats.drafted > 0
    if finish == "length":
        assert stats.passes == 1 + -(-(len(tokens) - 1) // 5)  # prefill + passes of 5 tokens


def test_a_draft_model_must_share_the_tokenizer(tiny: LoadedModel) -> None:
    from types import SimpleNamespace

    vocab = dict(tiny.tokenizer.get_vocab())
    vocab["<extra>"] = len(vocab)
    other = SimpleNamespace(
        tokenizer=SimpleNamespace(get_vocab=lambda: vocab), spec=SimpleNamespace(name="other")
    )

    with pytest.raises(ValueError, match="'other' does not share the tokenizer"):
        check_draft(tiny, other)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same vocabulary"):
        generate(
            tiny, "Hi", n=1, processor=None, greedy=True, max_new_tokens=2, seed=0,
            speculative_tokens=2, draft=other,  # type: ignore[arg-type]
        )


def test_the_draft_model_rolls_back_what_the_target_rejected(
    tiny: LoadedModel, tiny_draft: LoadedModel
) -> None:
    from workers.runtime.speculative import DraftModel

    def own_greedy(sequence: list[int], count: int) -> list[int]:
        """The draft model's plain greedy continuation of ``sequence``, no cache reuse."""
        out: list[int] = []
        with torch.inference_mode():
            for _ in range(count):
                ids = torch.tensor([sequence + out])
                out.append(int(tiny_draft.model(input_ids=ids).logits[0, -1].argmax()))
        return out

    prompt = tiny.encode_prompt(tiny.render_prompt(TEXTS[0]))
    drafter = DraftModel(tiny_draft, prompt, len(prompt) + 40)
    sequence = list(prompt)
    with torch.inference_mode():
        first = int(tiny.model(input_ids=torch.tensor([prompt])).logits[0, -1].argmax())
    sequence.append(first)
    for step in range(6):
        proposal = drafter(sequence, 4)
        assert proposal == own_greedy(sequence, 4)
        # Accept a varying prefix of the proposal, then a token the draft did not propose
        # (as the target does after a rejection), so the drafter must roll back.
        kept = proposal[: step % 3]
        other = (proposal[len(kept)] + 1) % tiny.tokenizer.vocab_size
        sequence += [*kept, other]
