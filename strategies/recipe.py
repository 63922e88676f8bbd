"""A sample pool's recipe: every input that decides its samples, and the pool's key.

A ``PoolRecipe`` names the model, the prompting scheme with its stored config, the
decoding, the decoder (sampling, a beam search, or adaptive consistency) and the seed.
Its ``key()`` is the pool key the app has always computed, so stored pools keep theirs;
``stored_fields()`` and ``from_stored()`` go to and from a database row's plain fields.
The decoders and CodeT's test pool settings live here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strategies import registry
from strategies.config import config_hash, pool_key
from strategies.prompting.entries import get_scheme, scheme_names
from strategies.prompting.scheme import Scheme, plain_config
from strategies.sampling.decoding import DecodingConfig

__all__ = [
    "ADAPTIVE_DECODER",
    "BEAM_DECODERS",
    "BEAM_FIXED_FIELDS",
    "DECODERS",
    "MULTI_CALL_SCHEMES",
    "SAMPLE_DECODER",
    "SINGLE_CALL_SCHEMES",
    "TEST_SCHEME",
    "TEST_TEMPERATURE",
    "TEST_TOP_P",
    "PoolRecipe",
    "generated_tests_recipe",
    "generated_tests_decoding",
]

SAMPLE_DECODER = "sample"
# Deterministic beam searches that return N beams of one rendered prompt.
BEAM_DECODERS = ("beam_search", "diverse_beam_search")
# Sampling in rounds that stops once the vote is decided (ALGORITHMS section 12b).
ADAPTIVE_DECODER = "adaptive_consistency"
DECODERS = (SAMPLE_DECODER, *BEAM_DECODERS, ADAPTIVE_DECODER)
# Fields of a beam config the pool sets: N beams returned, the decoding's token cap.
BEAM_FIXED_FIELDS = ("num_return_sequences", "max_new_tokens")
# N of a pool that is not batchable (multi-call schemes, beam and adaptive decoders): it
# draws a problem's samples in one run of one task, so N stays what one task finishes.
# Plain sampling is split into batches and tasks and goes much higher.
MAX_WHOLE_POOL = 256
# The schemes a row may pick that render one prompt (and so take a beam or adaptive
# decoder), and those that make several calls.
SINGLE_CALL_SCHEMES = scheme_names(single_call=True, selectable=True)
MULTI_CALL_SCHEMES = scheme_names(single_call=False)
# CodeT's test pools: the test-generation prompt sampled at T=0.8, top-p 0.95.
TEST_SCHEME = "generated_tests"
TEST_TEMPERATURE = 0.8
TEST_TOP_P = 0.95


def generated_tests_decoding(max_new_tokens: int) -> DecodingConfig:
    """How a test pool samples: CodeT's temperature 0.8 and top-p 0.95."""
    return DecodingConfig(
        temperature=TEST_TEMPERATURE, top_p=TEST_TOP_P, max_new_tokens=max_new_tokens
    )


@dataclass(frozen=True, kw_only=True)
class PoolRecipe:
    """What decides a pool's samples; N is not part of it (a pool grows).

    ``scheme_config`` is the stored ``prompt_config`` (extras such as sequential's
    ``budget_tokens`` included), ``decoder_config`` a beam config without
    ``BEAM_FIXED_FIELDS`` or the adaptive stopping rule's config. Both are kept as plain
    JSON-shaped dicts. Construction checks the names; ``check(n)`` checks the rest.
    """

    model: str
    scheme: str
    scheme_config: Mapping[str, Any] = field(default_factory=dict)
    decoding: DecodingConfig
    decoder: str = SAMPLE_DECODER
    decoder_config: Mapping[str, Any] = field(default_factory=dict)
    seed: int

    def __post_init__(self) -> None:
        get_scheme(self.scheme)
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; valid: {', '.join(DECODERS)}")
        decoder_config = plain_config(self.decoder_config)
        if self.decoder == SAMPLE_DECODER:
            decoder_config = {}  # sampling reads the decoding, nothing else
        elif self.decoder in BEAM_DECODERS:
            decoder_config = {
                k: v for k, v in decoder_config.items() if k not in BEAM_FIXED_FIELDS
            }
        object.__setattr__(self, "scheme_config", plain_config(self.scheme_config))
        object.__setattr__(self, "decoder_config", decoder_config)

    # -- the scheme ---------------------------------------------------------------

    @property
    def scheme_object(self) -> Scheme:
        """The registered prompting scheme."""
        return get_scheme(self.scheme)

    def user_config(self) -> tuple[Any, dict[str, Any]]:
        """The scheme's config object and its extra settings (``ValueError`` if invalid)."""
        return self.scheme_object.user_config(self.scheme_config)

    def config(self) -> Any:
        """The scheme's config object (``ValueError`` if invalid)."""
        return self.user_config()[0]

    # -- the decoder --------------------------------------------------------------

    @property
    def is_beam(self) -> bool:
        return self.decoder in BEAM_DECODERS

    @property
    def is_adaptive(self) -> bool:
        return self.decoder == ADAPTIVE_DECODER

    @property
    def is_greedy(self) -> bool:
        """Greedy sampling: one sample stands for all N."""
        return self.decoder == SAMPLE_DECODER and self.decoding.is_greedy

    @property
    def batchable(self) -> bool:
        """Plain samples of one rendered prompt: such pools share the engine's batches."""
        return self.decoder == SAMPLE_DECODER and self.scheme_object.single_call

    def beam_config(self, n: int) -> Any:
        """The beam decoder's config for N beams (``ValueError`` if invalid)."""
        if not self.is_beam:
            raise ValueError(f"{self.decoder} is not a beam decoder")
        config_class = registry.get(self.decoder).config_class
        return config_class(
            **plain_config(self.decoder_config, tuples=True),
            num_return_sequences=n,
            max_new_tokens=self.decoding.max_new_tokens,
        )

    def adaptive_config(self) -> Any:
        """The adaptive stopping rule's config (``ValueError`` if invalid)."""
        if not self.is_adaptive:
            raise ValueError(f"{self.decoder} is not {ADAPTIVE_DECODER}")
        return registry.get(ADAPTIVE_DECODER).config_class(**self.decoder_config)

    def pool_decoder(self) -> dict[str, Any]:
        """The decoder as a pool stores it: {} to sample, else its name and config."""
        if self.decoder == SAMPLE_DECODER:
            return {}
        return {"name": self.decoder, "config": dict(self.decoder_config)}

    # -- the pool -----------------------------------------------------------------

    def check(self, n: int) -> None:
        """``ValueError`` unless a pool of N can run: valid configs, a single-call scheme
        for a beam or adaptive decoder, sampling for adaptive stopping, N beams, and at
        most ``MAX_WHOLE_POOL`` for a pool drawn whole."""
        scheme = self.scheme_object
        too_many = self.whole_pool_error(n)
        if too_many:
            raise ValueError(too_many)
        if self.is_adaptive:
            if not scheme.single_call:
                raise ValueError(
                    f"adaptive stopping samples one prompt in rounds: choose a single-call "
                    f"prompting scheme ({', '.join(SINGLE_CALL_SCHEMES)}), not {self.scheme}"
                )
            if self.decoding.is_greedy:
                raise ValueError("adaptive stopping needs sampling (temperature > 0)")
            self.adaptive_config()
        if self.is_beam:
            if not scheme.single_call:
                raise ValueError(
                    f"{self.decoder} works with single-call prompting schemes only "
                    f"({', '.join(SINGLE_CALL_SCHEMES)}), not {self.scheme}"
                )
            num_beams = self.beam_config(1).num_beams
            if num_beams < n:
                raise ValueError(
                    f"num_beams must be at least N = {n}: a beam pool of N "
                    f"candidates returns N beams (got {num_beams})"
                )
        self.config()

    def whole_pool_error(self, n: int) -> str | None:
        """Why N is too large for this pool, if it is one drawn whole (not batchable, not
        greedy) and N is above ``MAX_WHOLE_POOL``."""
        if self.batchable or self.is_greedy or n <= MAX_WHOLE_POOL:
            return None
        what = self.decoder if self.decoder != SAMPLE_DECODER else \
            f"the {self.scheme} prompting scheme"
        return (f"{what} draws a problem's N samples in one run: N is at most "
                f"{MAX_WHOLE_POOL} for it (plain sampling goes to 10,000)")

    def pool_size(self, n: int) -> int:
        """Samples per problem the pool yields for N: N beams; at most the adaptive rule's
        ``max_samples``; 1 for greedy sampling; else what the scheme yields for N."""
        if self.is_beam:
            return n
        if self.is_adaptive:
            return min(n, int(self.adaptive_config().max_samples))
        if self.decoding.is_greedy:
            return 1
        return self.scheme_object.pool_size(n, self.config())

    def pool_scheme(self) -> str:
        """The scheme as pool keys have always named it: the scheme, ``:hash`` of its
        config when set, ``|decoder:hash`` for a beam or adaptive decoder."""
        name = self.scheme
        if self.scheme_config:
            name += f":{config_hash(dict(self.scheme_config))[:16]}"
        if self.decoder != SAMPLE_DECODER:
            name += f"|{self.decoder}:{config_hash(dict(self.decoder_config))[:16]}"
        return name

    def key(self) -> str:
        """The pool's key: sha256 of model, ``pool_scheme()``, decoding and seed.

        >>> recipe = PoolRecipe(model="m", scheme="direct", decoding=DecodingConfig(), seed=0)
        >>> recipe.key() == pool_key("m", "direct", DecodingConfig(), 0)
        True
        """
        return pool_key(self.model, self.pool_scheme(), self.decoding, self.seed)

    # -- storage ------------------------------------------------------------------

    def stored_fields(self) -> dict[str, Any]:
        """The plain fields of a ``SamplePool`` row (JSON lists for tuples), key aside.

        ``scheme`` is the registered scheme; ``prompt_scheme`` is the name the key hashes
        (``pool_scheme()``), kept for reading, never parsed.
        """
        return {
            "model_name": self.model,
            "scheme": self.scheme,
            "prompt_scheme": self.pool_scheme(),
            "prompt_config": dict(self.scheme_config),
            "decoding": plain_config(self.decoding.key_fields()),
            "decoder": self.pool_decoder(),
            "seed": self.seed,
        }

    @classmethod
    def from_stored(
        cls,
        *,
        model_name: str,
        scheme: str,
        prompt_config: Mapping[str, Any] | None,
        decoding: Mapping[str, Any],
        decoder: Mapping[str, Any] | None,
        seed: int,
        prompt_scheme: str | None = None,
    ) -> PoolRecipe:
        """The recipe of a stored row (``stored_fields()``'s inverse). A stored
        ``prompt_scheme`` must be the one the recipe names (``ValueError`` otherwise)."""
        recipe = cls(
            model=model_name,
            scheme=scheme,
            scheme_config=dict(prompt_config or {}),
            decoding=DecodingConfig(**plain_config(decoding, tuples=True)),
            decoder=str((decoder or {}).get("name") or SAMPLE_DECODER),
            decoder_config=dict((decoder or {}).get("config") or {}),
            seed=int(seed),
        )
        if prompt_scheme is not None and prompt_scheme != recipe.pool_scheme():
            raise ValueError(
                f"stored pool name {prompt_scheme!r} is not the recipe's "
                f"({recipe.pool_scheme()!r})"
            )
        return recipe


def generated_tests_recipe(*, model: str, max_new_tokens: int, seed: int) -> PoolRecipe:
    """The recipe of CodeT's test pool for a model, a token cap and a seed."""
    return PoolRecipe(
        model=model,
        scheme=TEST_SCHEME,
        decoding=generated_tests_decoding(max_new_tokens),
        seed=seed,
    )
