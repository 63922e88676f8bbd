"""What a user asks for, as plain values: an experiment and its strategy rows.

The form builds these; ``services.submit_experiment`` stores them. A ``StrategySpec``
builds its row's ``strategies.recipe.PoolRecipe``; the recipe and the prompting scheme
answer what the pool is (its key, size and decoder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from strategies import registry
from strategies.prompting.entries import get_scheme
from strategies.recipe import (
    ADAPTIVE_DECODER,
    BEAM_DECODERS,
    BEAM_FIXED_FIELDS,
    SAMPLE_DECODER,
    SINGLE_CALL_SCHEMES,
    TEST_SCHEME,
    TEST_TEMPERATURE,
    TEST_TOP_P,
    PoolRecipe,
)
from strategies.recipe import generated_tests_decoding as test_decoding
from strategies.sampling import DecodingConfig
from webapp.datasets.models import Dataset

# The decoders, the single-call schemes and CodeT's test pool settings live in
# ``strategies.recipe``; they are re-exported here for the app's callers.
__all__ = [
    "ADAPTIVE_DECODER",
    "BEAM_DECODERS",
    "BEAM_FIXED_FIELDS",
    "CODE_SELECTORS",
    "SINGLE_CALL_SCHEMES",
    "TEST_SCHEME",
    "TEST_TEMPERATURE",
    "TEST_TOP_P",
    "ExperimentSpec",
    "StrategySpec",
    "test_decoding",
]

# Selectors that rank code by a pass matrix of model-generated tests (code datasets only).
CODE_SELECTORS = ("codet", "b4")
# The scheme a row's label leaves unnamed.
DEFAULT_SCHEME = "direct"


@dataclass(frozen=True)
class StrategySpec:
    """One strategy row: how candidates are prompted and sampled, and how one is selected.

    ``sampling`` holds further ``DecodingConfig`` fields (min-p, top-H, EAD, ...);
    ``selector_config`` and ``prompt_config`` the fields of the registered
    selector's and prompting scheme's config classes. ``decoder`` is ``"sample"``, a
    beam search (``BEAM_DECODERS``) or adaptive consistency, with the fields of its
    config in ``decoder_config`` (a beam config without ``num_return_sequences`` and
    ``max_new_tokens``, which the experiment sets). A scheme's extra settings live in
    ``prompt_config`` too (sequential revision's ``budget_tokens``). ``recipe`` gives
    the row's pool.
    """

    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    selector: str = "first"
    prompt_scheme: str = DEFAULT_SCHEME
    label: str = ""
    sampling: Mapping[str, Any] = field(default_factory=dict)
    selector_config: Mapping[str, Any] = field(default_factory=dict)
    prompt_config: Mapping[str, Any] = field(default_factory=dict)
    decoder: str = SAMPLE_DECODER
    decoder_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_beam(self) -> bool:
        return self.decoder in BEAM_DECODERS

    @property
    def is_adaptive(self) -> bool:
        return self.decoder == ADAPTIVE_DECODER

    def recipe(
        self, model_name: str, n_samples: int, max_new_tokens: int, seed: int
    ) -> PoolRecipe:
        """This row's pool in an experiment, checked (``for_experiment``)."""
        row = self.for_experiment(n_samples, max_new_tokens)
        return row._pool_recipe(model_name, max_new_tokens, seed)

    def _pool_recipe(
        self, model_name: str = "", max_new_tokens: int = 1, seed: int = 0
    ) -> PoolRecipe:
        """The row's recipe as it stands (model, token cap and seed only matter to a
        pool's key and decoding; its scheme and decoder names are checked)."""
        return PoolRecipe(
            model=model_name,
            scheme=self.prompt_scheme,
            scheme_config=self.prompt_config,
            decoding=self.decoding(max_new_tokens),
            decoder=self.decoder,
            decoder_config=self.decoder_config,
            seed=seed,
        )

    def whole_pool_error(self, n_samples: int) -> str | None:
        """Why N is too large for this row's pool, if it is drawn whole
        (``PoolRecipe.whole_pool_error``)."""
        return self._pool_recipe().whole_pool_error(n_samples)

    def adaptive_config(self) -> Any:
        """The stopping rule's config (``ValueError`` if invalid)."""
        return self._pool_recipe().adaptive_config()

    def beam_config(self, n_samples: int, max_new_tokens: int) -> Any:
        """The beam decoder's config for a pool of ``n_samples`` (``ValueError`` if invalid)."""
        return self._pool_recipe(max_new_tokens=max_new_tokens).beam_config(n_samples)

    def scheme_config(self) -> Any:
        """The prompting scheme's config (extra settings such as sequential's token
        budget are not part of it)."""
        return get_scheme(self.prompt_scheme).config(self.prompt_config)

    def for_experiment(self, n_samples: int, max_new_tokens: int) -> StrategySpec:
        """This row with what the experiment decides filled in, checked.

        The scheme's extra settings get their defaults (sequential revision's token
        budget: ``n_samples x max_new_tokens``, the token cap of a parallel pool of N).
        A beam decoder must return N beams; beam and adaptive decoders need a
        single-call prompting scheme (``PoolRecipe.check``).
        """
        self._pool_recipe(max_new_tokens=max_new_tokens).check(n_samples)
        filled = get_scheme(self.prompt_scheme).with_defaults(
            self.prompt_config, n=n_samples, max_new_tokens=max_new_tokens
        )
        if filled == dict(self.prompt_config):
            return self
        return replace(self, prompt_config=filled)

    def decoding(self, max_new_tokens: int) -> DecodingConfig:
        if self.is_beam:
            # Beam search is deterministic: sampling settings do not apply (nor key a pool).
            return DecodingConfig(max_new_tokens=max_new_tokens)
        return DecodingConfig(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=max_new_tokens,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in self.sampling.items()},
        )

    def pool_size(self, n_samples: int, max_new_tokens: int) -> int:
        """Samples per problem this strategy reads: 1 for greedy decoding, else what its
        pool yields for N (``PoolRecipe.pool_size``: refinement at most N x (iterations
        + 1), sequential revision at most ``max_rounds``, PlanSearch ``max_plans``)."""
        return self._pool_recipe(max_new_tokens=max_new_tokens).pool_size(n_samples)

    @property
    def uses_generated_tests(self) -> bool:
        return self.selector in CODE_SELECTORS

    def test_pool_size(self) -> int:
        """Generated-test samples per problem this strategy reads (0 without tests)."""
        if not self.uses_generated_tests:
            return 0
        config = registry.get(self.selector).config_class(**self.selector_config)
        return int(config.test_samples)

    def pool_scheme(self) -> str:
        """The prompt scheme as the pool key sees it (``PoolRecipe.pool_scheme``): its
        name, plus its config if set, plus ``|decoder:hash`` for a beam or adaptive
        decoder (sampling pools keep their old names)."""
        return self._pool_recipe().pool_scheme()

    def pool_decoder(self) -> dict[str, Any]:
        """What the worker needs to run the decoder: {} to sample, else name and config."""
        return self._pool_recipe().pool_decoder()

    def default_label(self) -> str:
        scheme = "" if self.prompt_scheme == DEFAULT_SCHEME else f"{self.prompt_scheme}, "
        if self.is_beam:
            beams = self.beam_config(1, 1)
            decoder = f"{self.decoder.replace('_', ' ')} ({beams.num_beams} beams"
            if self.decoder == "diverse_beam_search":
                decoder += f", {beams.num_beam_groups} groups"
            return f"{scheme}{decoder}) + {self.selector.replace('_', ' ')}"
        if self.temperature == 0 and not self.sampling.get("temperature_mix"):
            sampling = "greedy"
        else:
            sampling = f"T={self.temperature:g}"
            if self.top_p < 1:
                sampling += f", top-p {self.top_p:g}"
            if self.top_k:
                sampling += f", top-k {self.top_k}"
            for name, value in self.sampling.items():
                sampling += f", {name.replace('_', ' ')} {_short(value)}"
        if self.is_adaptive:
            sampling += ", adaptive stop"
        return f"{scheme}{sampling} + {self.selector.replace('_', ' ')}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_short(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    model_name: str
    dataset: Dataset
    n_samples: int
    max_new_tokens: int
    seed: int
    strategies: Sequence[StrategySpec] = field(default_factory=tuple)
    verifier: str = "math"
    verifier_config: Mapping[str, Any] = field(default_factory=dict)
    self_eval: bool = False
    # A subset of the dataset's problems (``subsets.subset_spec``); empty for all.
    subset: Mapping[str, Any] = field(default_factory=dict)

    def check_dataset_fit(self) -> None:
        """``ValueError`` when the verifier or a selector does not suit the dataset: code
        datasets are judged by their unit tests, and only they can use CodeT and B4."""
        is_code = self.dataset.kind == Dataset.Kind.CODE
        if is_code and self.verifier != "unit_tests":
            raise ValueError(f"{self.dataset.name} is a code dataset: its samples are judged "
                             f"by running its unit tests (verifier unit_tests), not "
                             f"{self.verifier}.")
        if not is_code and self.verifier == "unit_tests":
            raise ValueError(f"The unit_tests verifier needs a code dataset; "
                             f"{self.dataset.name} has no tests.")
        for row in self.strategies:
            if row.uses_generated_tests and not is_code:
                raise ValueError(f"{row.selector} ranks programs by generated tests: choose a "
                                 f"code dataset (HumanEval or an uploaded one).")
