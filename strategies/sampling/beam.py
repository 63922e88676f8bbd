"""Beam search and diverse (group) beam search over a next-token step function (§4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from strategies.sampling._checks import check_int, check_number
from strategies.sampling.decoding import MAX_NEW_TOKENS

__all__ = [
    "BeamHypothesis",
    "BeamSearchConfig",
    "DiverseBeamSearchConfig",
    "StepFunction",
    "beam_search",
    "diverse_beam_search",
]

#: ``step(sequences) -> [len(sequences), V]`` log-probs of the next token of each sequence
#: (prompt followed by the tokens generated so far).
StepFunction = Callable[[list[list[int]]], torch.Tensor]
EarlyStopping = bool | Literal["never"]


def _check_common(num_beams: int, returns: int, penalty: float, stop: object, new: int) -> None:
    check_int("num_beams", num_beams, 2)
    check_int("num_return_sequences", returns, 1, num_beams)
    check_number("length_penalty", penalty, -1e6, 1e6)
    if stop not in (True, False, "never") or (stop != "never" and not isinstance(stop, bool)):
        raise ValueError(f"early_stopping must be True, False or 'never', got {stop!r}")
    check_int("max_new_tokens", new, 1, MAX_NEW_TOKENS)


@dataclass(frozen=True, kw_only=True)
class BeamSearchConfig:
    """HF-style beam search: ``num_beams`` beams, score ``sum log p / len ** length_penalty``.

    ``early_stopping``: True stops once ``num_beams`` hypotheses are finished; False stops
    when the best running beam, normalised at its current length, cannot beat the worst
    finished one (HF's heuristic); "never" uses ``max_new_tokens`` for that bound when
    ``length_penalty > 0`` (canonical beam search).
    """

    num_beams: int = 4
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    early_stopping: EarlyStopping = False
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        _check_common(
            self.num_beams,
            self.num_return_sequences,
            self.length_penalty,
            self.early_stopping,
            self.max_new_tokens,
        )


@dataclass(frozen=True, kw_only=True)
class DiverseBeamSearchConfig:
    """Group beam search with a Hamming diversity penalty between ``num_beam_groups`` groups."""

    num_beams: int = 4
    num_beam_groups: int = 2
    diversity_penalty: float = 1.0
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    early_stopping: EarlyStopping = False
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        _check_common(
            self.num_beams,
            self.num_return_sequences,
            self.length_penalty,
            self.early_stopping,
            self.max_new_tokens,
        )
        check_int("num_beam_groups", self.num_beam_groups, 2, self.num_beams)
        if self.num_beams % self.num_beam_groups:
            raise ValueError(
                f"num_beam_groups must divide num_beams, got {self.num_beam_groups} groups "
                f"for {self.num_beams} beams"
            )
        check_number("diversity_penalty", self.diversity_penalty, 0.0, 1e6, low_open=True)


@dataclass(frozen=True)
class BeamHypothesis:
    """A finished beam: generated tokens (EOS included), normalised score and log-prob sum."""

    token_ids: tuple[int, ...]
    score: float
    logprob_sum: float


class _Group:
    """Running beams and finished pool of one beam group (internal, mutable)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.tokens: list[list[int]] = [[]]
        self.objective = torch.zeros(1)  # what the search ranks by (penalties included)
        self.logprob = torch.zeros(1)  # the model's own log-probs only
        self.finished: list[tuple[float, tuple[int, ...], float]] = []
        self.is_open = True  # HF's "early-stop heuristic not yet satisfied" flag
        self.is_done = False


def _advance(
    group: _Group,
    log_probs: torch.Tensor,
    penalty: torch.Tensor | None,
    eos: set[int],
    length: int,
    config: BeamSearchConfig | DiverseBeamSearchConfig,
) -> list[int]:
    """Extend ``group`` by one token (HF's step rules); return the tokens it chose to go on.

    At the last step every top candidate finishes, yet the chosen non-EOS tokens are still
    returned: they are this step's choices that later groups are penalised for.
    """
    vocab = log_probs.shape[-1]
    penalised = log_probs if penalty is None else log_probs - penalty[None, :]
    accumulated = (penalised + group.objective[:, None]).reshape(-1)
    true_sums = (log_probs + group.logprob[:, None]).reshape(-1)
    keep = min(max(2, 1 + len(eos)) * group.width, accumulated.numel())
    values, flat = torch.topk(accumulated, keep)
    is_last = length + 1 == config.max_new_tokens
    full = len(group.finished) == group.width and config.early_stopping is True
    chosen: list[int] = []
    finished = list(group.finished)
    for rank, (value, index) in enumerate(zip(values.tolist(), flat.tolist(), strict=True)):
        if value == float("-inf"):
            break
        beam, token = divmod(index, vocab)
        is_eos = token in eos
        if (is_eos or is_last) and rank < group.width and not full:
            score = value / (length + 1) ** config.length_penalty
            ids = (*group.tokens[beam], token)
            finished.append((score, ids, float(true_sums[index])))
        if not is_eos and len(chosen) < group.width:
            chosen.append(index)
    finished.sort(key=lambda item: -item[0])
    group.finished = finished[: group.width]
    running = [] if is_last else chosen
    rows = torch.tensor(running, dtype=torch.long)
    group.tokens = [[*group.tokens[i // vocab], i % vocab] for i in running]
    group.objective = accumulated[rows]
    group.logprob = true_sums[rows]
    return [index % vocab for index in chosen]


def _update_done(
    group: _Group, length: int, config: BeamSearchConfig | DiverseBeamSearchConfig
) -> None:
    """Set the group's stop flags after ``length`` tokens (HF's stopping rules)."""
    is_full = len(group.finished) == group.width
    if not group.tokens or length >= config.max_new_tokens:
        group.is_done = True
        return
    if is_full:
        never = config.early_stopping == "never" and config.length_penalty > 0
        best_length = config.max_new_tokens if never else length
        best_possible = float(group.objective[0]) / best_length**config.length_penalty
        group.is_open = group.is_open and best_possible > group.finished[-1][0]
    group.is_done = not group.is_open or (is_full and config.early_stopping is True)


def _search(
    step: StepFunction,
    prompt_ids: Sequence[int],
    eos_token_ids: Sequence[int],
    config: BeamSearchConfig | DiverseBeamSearchConfig,
    num_groups: int,
    diversity_penalty: float,
) -> list[BeamHypothesis]:
    """Run ``num_groups`` beam groups in lock-step; one ``step`` call per generated token."""
    prompt = [check_int("prompt token id", token, 0) for token in prompt_ids]
    eos = {check_int("eos token id", token, 0) for token in eos_token_ids}
    groups = [_Group(config.num_beams // num_groups) for _ in range(num_groups)]
    for length in range(config.max_new_tokens):
        active = [group for group in groups if not group.is_done]
        if not active:
            break
        sequences = [prompt + tokens for group in active for tokens in group.tokens]
        log_probs = step(sequences)
        if log_probs.dim() != 2 or log_probs.shape[0] != len(sequences):
            raise ValueError(
                f"step must return [{len(sequences)}, V] log-probs, got {tuple(log_probs.shape)}"
            )
        log_probs = log_probs.detach().to("cpu", torch.float32)
        counts = torch.zeros(log_probs.shape[-1])
        row = 0
        for group in active:
            rows = log_probs[row : row + len(group.tokens)]
            row += len(group.tokens)
            penalty = diversity_penalty * counts if diversity_penalty and counts.any() else None
            for token in _advance(group, rows, penalty, eos, length, config):
                counts[token] += 1
            _update_done(group, length + 1, config)
    hypotheses = [
        BeamHypothesis(
            token_ids=ids,
            score=logprob / len(ids) ** config.length_penalty if num_groups > 1 else score,
            logprob_sum=logprob,
        )
        for group in groups
        for score, ids, logprob in group.finished
    ]
    hypotheses.sort(key=lambda hypothesis: -hypothesis.score)
    return hypotheses[: config.num_return_sequences]


def beam_search(
    step: StepFunction,
    prompt_ids: Sequence[int],
    eos_token_ids: Sequence[int],
    config: BeamSearchConfig,
) -> list[BeamHypothesis]:
    """Return the best ``num_return_sequences`` finished beams, best first (HF's rules).

    Each step keeps the top ``max(2, 1 + #eos) * num_beams`` extensions; an EOS extension
    ranked within the first ``num_beams`` joins the finished pool (the best ``num_beams``
    by ``sum log p / len ** length_penalty``, EOS counted in ``len``), the best
    ``num_beams`` others keep running. At ``max_new_tokens`` the running beams finish.

    >>> import torch
    >>> table = torch.tensor([[0.6, 0.4], [0.9, 0.1]]).log()  # next token given last token
    >>> step = lambda seqs: table[[seq[-1] for seq in seqs]]
    >>> config = BeamSearchConfig(num_beams=2, num_return_sequences=2, max_new_tokens=2)
    >>> [(h.token_ids, round(h.score, 3)) for h in beam_search(step, [0], [1], config)]
    [((0, 0), -0.511), ((0, 1), -0.714)]
    """
    return _search(step, prompt_ids, eos_token_ids, config, 1, 0.0)


def diverse_beam_search(
    step: StepFunction,
    prompt_ids: Sequence[int],
    eos_token_ids: Sequence[int],
    config: DiverseBeamSearchConfig,
) -> list[BeamHypothesis]:
    """Return the best finished beams of a group beam search with Hamming diversity.

    The ``num_beam_groups`` groups of ``num_beams / num_beam_groups`` beams are advanced in
    order at every step; group g's log-probs lose ``diversity_penalty`` times the number of
    times each token was chosen at this step by groups 0..g-1. Each group ranks and keeps
    beams by the penalised sum (as HF's group beam search does); the returned ``score`` and
    ``logprob_sum`` use the model's log-probs only, and the list is sorted by that score.
    """
    return _search(
        step, prompt_ids, eos_token_ids, config, config.num_beam_groups, config.diversity_penalty
    )
