"""What a user asks for, as plain values: an experiment and its strategy rows.

The form builds these; ``services.submit_experiment`` stores them. A ``StrategySpec``
knows how its row maps to a sample pool (its decoding, its pool's name and size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from strategies import registry
from strategies.config import config_hash
from strategies.sampling import DecodingConfig
from webapp.datasets.models import Dataset

# Decoders other than sampling: deterministic beam searches that return N beams. They
# decode one rendered prompt, so they work with the single-call prompting schemes only
# (the same tuple as ``workers.runtime.schemes.SINGLE_CALL_SCHEMES``).
BEAM_DECODERS = ("beam_search", "diverse_beam_search")
SINGLE_CALL_SCHEMES = ("direct", "chain_of_thought", "few_shot")
# Fields of a beam config the app sets: N beams returned, the experiment's token cap.
BEAM_FIXED_FIELDS = ("num_return_sequences", "max_new_tokens")
# Sampling in rounds that stops once the vote is decided (ALGORITHMS section 12b).
ADAPTIVE_DECODER = "adaptive_consistency"
# Selectors that rank code by a pass matrix of model-generated tests (code datasets only),
# the prompting scheme of their test pools and its sampling settings (CodeT's).
CODE_SELECTORS = ("codet", "b4")
TEST_SCHEME = "generated_tests"
TEST_TEMPERATURE = 0.8
TEST_TOP_P = 0.95


def test_decoding(max_new_tokens: int) -> DecodingConfig:
    """How a test pool samples: CodeT's temperature 0.8 and top-p 0.95."""
    return DecodingConfig(temperature=TEST_TEMPERATURE, top_p=TEST_TOP_P,
                          max_new_tokens=max_new_tokens)


@dataclass(frozen=True)
class StrategySpec:
    """One strategy row: how candidates are prompted and sampled, and how one is selected.

    ``sampling`` holds further ``DecodingConfig`` fields (min-p, top-H, EAD, ...);
    ``selector_config`` and ``prompt_config`` the fields of the registered
    selector's and prompting scheme's config classes. ``decoder`` is ``"sample"`` or a
    beam search (``BEAM_DECODERS``) with the fields of its config in ``decoder_config``
    (without ``num_return_sequences`` and ``max_new_tokens``, which the experiment sets).
    Sequential revision keeps its token budget in ``prompt_config["budget_tokens"]``.
    """

    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    selector: str = "first"
    prompt_scheme: str = "direct"
    label: str = ""
    sampling: Mapping[str, Any] = field(default_factory=dict)
    selector_config: Mapping[str, Any] = field(default_factory=dict)
    prompt_config: Mapping[str, Any] = field(default_factory=dict)
    decoder: str = "sample"
    decoder_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_beam(self) -> bool:
        return self.decoder in BEAM_DECODERS

    @property
    def is_adaptive(self) -> bool:
        return self.decoder == ADAPTIVE_DECODER

    def adaptive_config(self) -> Any:
        """The stopping rule's config (``ValueError`` if invalid)."""
        return registry.get(ADAPTIVE_DECODER).config_class(**self.decoder_config)

    def beam_config(self, n_samples: int, max_new_tokens: int) -> Any:
        """The beam decoder's config for a pool of ``n_samples`` (``ValueError`` if invalid)."""
        config_class = registry.get(self.decoder).config_class
        return config_class(
            **{k: v for k, v in self.decoder_config.items() if k not in BEAM_FIXED_FIELDS},
            num_return_sequences=n_samples,
            max_new_tokens=max_new_tokens,
        )

    def scheme_config(self) -> Any:
        """The prompting scheme's config (sequential's token budget is not part of it)."""
        values = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in self.prompt_config.items() if k != "budget_tokens"}
        return registry.get(self.prompt_scheme).config_class(**values)

    def for_experiment(self, n_samples: int, max_new_tokens: int) -> StrategySpec:
        """This row with what the experiment decides filled in, checked.

        Sequential revision gets its token budget: the one set, else ``n_samples x
        max_new_tokens``, the token cap of a parallel pool of N. A beam decoder must
        return N beams and needs a single-call prompting scheme.
        """
        if self.decoder not in ("sample", *BEAM_DECODERS, ADAPTIVE_DECODER):
            raise ValueError(f"unknown decoder {self.decoder!r}")
        if self.is_adaptive:
            if self.prompt_scheme not in SINGLE_CALL_SCHEMES:
                raise ValueError(
                    f"adaptive stopping samples one prompt in rounds: choose a single-call "
                    f"prompting scheme ({', '.join(SINGLE_CALL_SCHEMES)}), "
                    f"not {self.prompt_scheme}"
                )
            if self.decoding(max_new_tokens).is_greedy:
                raise ValueError("adaptive stopping needs sampling (temperature > 0)")
            self.adaptive_config()
        if self.is_beam:
            if self.prompt_scheme not in SINGLE_CALL_SCHEMES:
                raise ValueError(
                    f"{self.decoder} works with single-call prompting schemes only "
                    f"({', '.join(SINGLE_CALL_SCHEMES)}), not {self.prompt_scheme}"
                )
            num_beams = self.beam_config(1, max_new_tokens).num_beams
            if num_beams < n_samples:
                raise ValueError(
                    f"num_beams must be at least N = {n_samples}: a beam pool of N "
                    f"candidates returns N beams (got {num_beams})"
                )
        if self.prompt_scheme == "sequential" and not self.prompt_config.get("budget_tokens"):
            budget = n_samples * max_new_tokens
            return replace(self, prompt_config={**self.prompt_config, "budget_tokens": budget})
        return self

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
        """Samples per problem this strategy reads: 1 for greedy decoding; for
        refinement at most its N x (iterations + 1) responses; for sequential revision
        at most ``max_rounds`` revisions, capped by N (a chain may stop earlier)."""
        if self.is_beam:
            return n_samples
        if self.is_adaptive:
            return min(n_samples, self.adaptive_config().max_samples)
        if self.decoding(max_new_tokens).is_greedy:
            return 1
        if self.prompt_scheme == "refine":
            config = self.scheme_config()
            return min(n_samples, config.n * (config.iterations + 1))
        if self.prompt_scheme == "sequential":
            return min(n_samples, self.scheme_config().max_rounds)
        if self.prompt_scheme == "plansearch":
            return min(n_samples, self.scheme_config().max_plans)
        return n_samples

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
        """The prompt scheme as the pool key sees it: its name, plus its config if set,
        plus ``|decoder:hash`` for a beam decoder (sampling pools keep their old names)."""
        name = self.prompt_scheme
        if self.prompt_config:
            name += f":{config_hash(dict(self.prompt_config))[:16]}"
        if self.is_beam or self.is_adaptive:
            name += f"|{self.decoder}:{config_hash(self.pool_decoder()['config'])[:16]}"
        return name

    def pool_decoder(self) -> dict[str, Any]:
        """What the worker needs to run the decoder: {} to sample, else name and config."""
        if self.is_adaptive:
            return {"name": self.decoder, "config": dict(self.decoder_config)}
        if not self.is_beam:
            return {}
        config = {k: v for k, v in self.decoder_config.items() if k not in BEAM_FIXED_FIELDS}
        return {"name": self.decoder, "config": config}

    def default_label(self) -> str:
        scheme = "" if self.prompt_scheme == "direct" else f"{self.prompt_scheme}, "
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
