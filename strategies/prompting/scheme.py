"""The one interface every prompting scheme exposes, so callers ask instead of switching.

A ``Scheme`` is a frozen record each scheme module defines next to its algorithm
(``SCHEME``); ``strategies.prompting.entries.SCHEMES`` maps names to them. Single-call
schemes render one prompt and sample N continuations of it (their pools can share
batches and accept beam or adaptive decoders); multi-call schemes run themselves
against a ``Generator``. Adding a scheme means adding its module and one entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from strategies.entry import Entry
from strategies.types import Candidate, Generator, Problem
from strategies.verify.code import CODE_COMPLETION_STOPS, TEST_COMPLETION_STOPS

__all__ = ["ExtraField", "Runner", "Scheme", "Scorer", "StopKind", "plain_config"]

#: The runtime's score of one candidate (refinement's verifier: self-evaluation).
Scorer = Callable[[Candidate], float]
#: Which completion stop strings end a completion model's sample on a code problem.
StopKind = Literal["code", "tests"]

_STOPS: dict[str, tuple[str, ...]] = {
    "code": CODE_COMPLETION_STOPS,
    "tests": TEST_COMPLETION_STOPS,
}


class Runner(Protocol):
    """A multi-call scheme's body: the candidates of one problem (at most ``n``)."""

    def __call__(
        self,
        generator: Generator,
        problem: Problem,
        n: int,
        config: Any,
        *,
        seed: int,
        max_new_tokens: int,
        scorer: Scorer | None,
        extras: Mapping[str, Any],
    ) -> list[Candidate]:
        """Return the problem's candidates."""
        ...


@dataclass(frozen=True, kw_only=True)
class ExtraField:
    """A setting stored in a pool's ``prompt_config`` beside the config's fields.

    ``default`` gives its value from the experiment's N and max new tokens.
    """

    name: str
    label: str
    help_text: str
    default: Callable[[int, int], int]
    minimum: int = 1


@dataclass(frozen=True, kw_only=True)
class Scheme:
    """A prompting scheme: its config class, how it runs, and what callers need to know.

    ``function`` is its public function (the renderer of a single-call scheme, the
    algorithm of a multi-call one); ``runner`` runs a multi-call scheme; ``sizer`` says
    how many samples it yields for N (N when unset). ``stops`` names the completion
    stop strings of code problems, ``self_eval_scores`` that its candidates' scores are
    self-evaluation scores, ``selectable`` that the new-experiment form offers it.
    """

    name: str
    description: str
    config_class: type
    function: Callable[..., Any]
    single_call: bool
    runner: Runner | None = None
    sizer: Callable[[int, Any], int] | None = None
    stops: StopKind | None = None
    self_eval_scores: bool = False
    selectable: bool = True
    extras: tuple[ExtraField, ...] = ()
    # What the new-experiment form says under the scheme's options ("" for nothing).
    form_hint: str = ""

    def __post_init__(self) -> None:
        if self.single_call == (self.runner is not None):
            raise ValueError(
                f"scheme {self.name!r}: a single-call scheme renders (no runner); "
                "a multi-call scheme needs a runner"
            )

    def entry(self) -> Entry:
        """The scheme as a registry entry (kind ``prompting``)."""
        return Entry(self.name, "prompting", self.function, self.config_class, self.description)

    def user_config(
        self, prompt_config: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Split a stored ``prompt_config`` into the config object and the extra settings.

        >>> from strategies.prompting.entries import get_scheme
        >>> get_scheme("sequential").user_config({"max_rounds": 3, "budget_tokens": 64})
        (SequentialConfig(max_new_tokens=512, temperature=0.7, max_rounds=3), {'budget_tokens': 64})
        """
        values = plain_config(prompt_config or {}, tuples=True)
        extras = {f.name: values.pop(f.name) for f in self.extras if f.name in values}
        try:
            config = self.config_class(**values)
        except TypeError as exc:
            valid = sorted([*self._field_names(), *(f.name for f in self.extras)])
            raise ValueError(
                f"{self.name}: {exc}; valid settings: {', '.join(valid) or 'none'}"
            ) from None
        return config, extras

    def config(self, prompt_config: Mapping[str, Any] | None = None) -> Any:
        """The config object of a stored ``prompt_config`` (``ValueError`` if invalid)."""
        return self.user_config(prompt_config)[0]

    def with_defaults(
        self, prompt_config: Mapping[str, Any], *, n: int, max_new_tokens: int
    ) -> dict[str, Any]:
        """``prompt_config`` with each unset extra setting given its default for the
        experiment (sequential's budget: N x max new tokens, a parallel pool's cap).

        >>> from strategies.prompting.entries import get_scheme
        >>> get_scheme("sequential").with_defaults({}, n=4, max_new_tokens=16)
        {'budget_tokens': 64}
        """
        values = dict(prompt_config)
        for extra in self.extras:
            if not values.get(extra.name):
                values[extra.name] = extra.default(n, max_new_tokens)
        return values

    def render(self, problem: Problem, config: Any) -> str:
        """The one prompt of a single-call scheme (``ValueError`` for a multi-call one)."""
        if not self.single_call:
            raise ValueError(f"{self.name} makes several calls; it has no single prompt")
        return str(self.function(problem, config))

    def pool_size(self, n: int, config: Any) -> int:
        """How many samples the scheme yields for a pool of ``n`` (fewer when it caps them).

        >>> from strategies.prompting.entries import get_scheme
        >>> get_scheme("plansearch").pool_size(32, get_scheme("plansearch").config())
        16
        """
        return n if self.sizer is None else self.sizer(n, config)

    @property
    def completion_stops(self) -> tuple[str, ...]:
        """Stop strings of a completion model on a code problem (none for chat models)."""
        return _STOPS[self.stops] if self.stops else ()

    def run(
        self,
        generator: Generator,
        problem: Problem,
        n: int,
        config: Any,
        *,
        seed: int,
        max_new_tokens: int,
        scorer: Scorer | None = None,
        extras: Mapping[str, Any] | None = None,
        temperature: float = 1.0,
    ) -> list[Candidate]:
        """The problem's candidates (at most ``n``): one generator call of the rendered
        prompt at ``temperature`` for a single-call scheme; a multi-call scheme makes its
        own calls at its config's temperatures. ``scorer`` guides refinement;
        ``extras`` holds settings such as sequential's ``budget_tokens``."""
        if self.runner is None:
            [samples] = generator(
                [self.render(problem, config)],
                n=n,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
            return list(samples)
        return self.runner(
            generator,
            problem,
            n,
            config,
            seed=seed,
            max_new_tokens=max_new_tokens,
            scorer=scorer,
            extras=extras or {},
        )

    def _field_names(self) -> list[str]:
        fields: dict[str, Any] = getattr(self.config_class, "__dataclass_fields__", {})
        return list(fields)


def plain_config(values: Mapping[str, Any], *, tuples: bool = False) -> dict[str, Any]:
    """A config mapping as a plain dict: top-level lists become tuples (``tuples=True``,
    for a config class) or tuples become lists (JSON's form); key order kept.

    >>> plain_config({"mix": [0.5, 1.0]}, tuples=True)
    {'mix': (0.5, 1.0)}
    """
    if tuples:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
