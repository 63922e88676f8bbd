"""The prompting schemes by name, and their registry entries (one ``Entry`` per scheme).

Each scheme module defines its ``SCHEME``; adding a scheme means adding its module and
one line to ``SCHEMES``. Nothing else switches on scheme names.
"""

from __future__ import annotations

from strategies.entry import Entry
from strategies.prompting.chain_of_thought import SCHEME as CHAIN_OF_THOUGHT
from strategies.prompting.deepening import SCHEME as DEEPENING
from strategies.prompting.direct import SCHEME as DIRECT
from strategies.prompting.few_shot import SCHEME as FEW_SHOT
from strategies.prompting.generated_tests import SCHEME as GENERATED_TESTS
from strategies.prompting.plansearch import SCHEME as PLANSEARCH
from strategies.prompting.refine import SCHEME as REFINE
from strategies.prompting.scheme import Scheme
from strategies.prompting.sequential import SCHEME as SEQUENTIAL
from strategies.prompting.verbalized import SCHEME as VERBALIZED

__all__ = ["ENTRIES", "SCHEMES", "get_scheme", "scheme_names"]

SCHEMES: dict[str, Scheme] = {
    scheme.name: scheme
    for scheme in (
        DIRECT,
        CHAIN_OF_THOUGHT,
        FEW_SHOT,
        VERBALIZED,
        DEEPENING,
        REFINE,
        SEQUENTIAL,
        PLANSEARCH,
        GENERATED_TESTS,
    )
}

ENTRIES: tuple[Entry, ...] = tuple(scheme.entry() for scheme in SCHEMES.values())


def get_scheme(name: str) -> Scheme:
    """The prompting scheme registered under ``name``; unknown names raise ``ValueError``.

    >>> get_scheme("direct").single_call
    True
    """
    try:
        return SCHEMES[name]
    except KeyError:
        valid = ", ".join(sorted(SCHEMES))
        raise ValueError(f"unknown prompting scheme {name!r}; valid names: {valid}") from None


def scheme_names(
    *, single_call: bool | None = None, selectable: bool | None = None
) -> tuple[str, ...]:
    """Scheme names in registry order, optionally only single-call or selectable ones.

    >>> scheme_names(single_call=True, selectable=True)
    ('direct', 'chain_of_thought', 'few_shot')
    """
    return tuple(
        name
        for name, scheme in SCHEMES.items()
        if single_call in (None, scheme.single_call) and selectable in (None, scheme.selectable)
    )
