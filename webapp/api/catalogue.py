"""The strategy catalogue: every registered sampler, prompting scheme, verifier and
selector with its config fields, generated from the config dataclasses.

A field's type and default come from the dataclass; its bounds from the dataclass's own
validation (``__post_init__``), found by bisection with the other fields at their
defaults, so they cannot drift from what a submission is checked against. A field whose
only accepted value is its default (it applies only with another field set, as EAD's
settings without ``ead``) gets no bounds. ``settable`` says whether an experiment spec
may set the field: the same fields the new-experiment form shows
(``experiments.config_forms.config_fields``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import struct
import types
import typing
from typing import Any, Literal, get_args, get_origin

from strategies import registry
from strategies.prompting.entries import get_scheme, scheme_names
from strategies.recipe import ADAPTIVE_DECODER, BEAM_DECODERS, BEAM_FIXED_FIELDS, SAMPLE_DECODER
from strategies.sampling import DecodingConfig
from webapp.experiments.config_forms import config_fields
from webapp.experiments.forms import FORM_VERIFIERS
from webapp.experiments.specs import CODE_SELECTORS

# Probes go no further than this: a field that accepts it has no bound on that side.
PROBE_LIMIT = 1e12


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _literals(tp: Any) -> list[Any] | None:
    """The values of a Literal, or of a union of bool and Literals (beam early stopping)."""
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        values: list[Any] = []
        for arg in get_args(tp):
            if arg is bool:
                values += [False, True]
            elif get_origin(arg) is Literal:
                values += list(get_args(arg))
            else:
                return None
        return values
    return None


def _json_type(tp: Any) -> dict[str, Any]:
    """The field's JSON Schema type."""
    choices = _literals(tp)
    if choices is not None:
        return {"type": "choice", "choices": choices}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if get_origin(tp) is tuple:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        item = _json_type(args[0]) if args else {"type": "string"}
        return {"type": "array", "items": item}
    return {"type": "object"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _accepts(config_class: type, name: str, value: Any) -> bool:
    try:
        config_class(**{name: value})
    except (TypeError, ValueError):
        return False
    return True


def _float_order(x: float) -> int:
    """An integer that orders like the float (adjacent floats are adjacent integers)."""
    bits: int = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _order_float(i: int) -> float:
    bits = i if i >= 0 else (-i) | -0x8000000000000000
    value: float = struct.unpack("<d", struct.pack("<q", bits))[0]
    return value


def _edge(accepts: typing.Callable[[int], bool], inside: int, outside: int) -> int:
    """The last accepted point walking from ``inside`` (accepted) to ``outside`` (not)."""
    while abs(outside - inside) > 1:
        middle = (inside + outside) // 2
        if accepts(middle):
            inside = middle
        else:
            outside = middle
    return inside


def _int_bounds(config_class: type, name: str, default: int) -> dict[str, int]:
    def accepts(i: int) -> bool:
        return _accepts(config_class, name, i)

    limit = int(PROBE_LIMIT)
    low = None if accepts(-limit) else _edge(accepts, default, -limit)
    high = None if accepts(limit) else _edge(accepts, default, limit)
    if low == high == default:
        return {}
    bounds = {}
    if low is not None:
        bounds["minimum"] = low
    if high is not None:
        bounds["maximum"] = high
    return bounds


def _nice(x: float) -> float:
    return 0.0 if abs(x) < 1e-300 else float(f"{x:.10g}")


def _float_side(config_class: type, name: str, default: float, sign: int) -> dict[str, float]:
    """The bound on one side (sign -1: below, +1: above), inclusive or exclusive."""
    def accepts(i: int) -> bool:
        return _accepts(config_class, name, _order_float(i))

    far = sign * PROBE_LIMIT
    if _accepts(config_class, name, far):
        return {}
    last = _order_float(_edge(accepts, _float_order(default), _float_order(far)))
    bound = _nice(last)
    key = "minimum" if sign < 0 else "maximum"
    if _accepts(config_class, name, bound):
        return {key: bound}
    if _accepts(config_class, name, math.nextafter(bound, -sign * math.inf)):
        return {"exclusive" + key.capitalize(): bound}
    return {key: last}


def _float_bounds(config_class: type, name: str, default: float) -> dict[str, float]:
    low = _float_side(config_class, name, default, -1)
    high = _float_side(config_class, name, default, +1)
    if low.get("minimum") == high.get("maximum") == default:
        return {}
    return {**low, **high}


def field_info(config_class: type, settable: set[str]) -> list[dict[str, Any]]:
    """One record per field of ``config_class``: name, type, default, bounds, settable."""
    hints = typing.get_type_hints(config_class)
    out = []
    for f in dataclasses.fields(config_class):
        if f.name.startswith("_"):
            continue
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        tp, nullable = _unwrap_optional(hints[f.name])
        info: dict[str, Any] = {"name": f.name, **_json_type(tp), "nullable": nullable,
                                "default": _jsonable(default), "settable": f.name in settable}
        if tp is int and isinstance(default, int) and not isinstance(default, bool):
            info.update(_int_bounds(config_class, f.name, default))
        elif tp is float and isinstance(default, int | float) and not isinstance(default, bool):
            info.update(_float_bounds(config_class, f.name, float(default)))
        out.append(info)
    return out


def _entry(name: str, *, fixed: tuple[str, ...] = ()) -> dict[str, Any]:
    entry = registry.get(name)
    settable = set(config_fields(entry.config_class)) - set(fixed)
    if name in BEAM_DECODERS:
        settable.add("early_stopping")  # offered as a choice of its three values
    return {"name": name, "kind": entry.kind, "description": entry.description,
            "config_class": entry.config_class.__name__,
            "fields": field_info(entry.config_class, settable)}


def _scheme(name: str) -> dict[str, Any]:
    scheme = get_scheme(name)
    record = _entry(name)
    record.update(
        single_call=scheme.single_call,
        selectable=scheme.selectable,
        extras=[{"name": extra.name, "type": "integer", "minimum": extra.minimum,
                 "default": None, "settable": True, "description": extra.help_text}
                for extra in scheme.extras],
    )
    return record


@functools.cache
def catalogue() -> dict[str, Any]:
    """Everything a spec's strategy rows and verifier may name, with their fields."""
    decoding_settable = set(config_fields(DecodingConfig))
    return {
        "samplers": [_entry(name) for name in registry.names("sampler")],
        "decoding": {
            "description": "A strategy row's decoding settings: temperature, top_p and "
                           "top_k, and the further filters under `sampling`.",
            "fields": field_info(DecodingConfig, decoding_settable),
        },
        "decoders": [
            {"name": SAMPLE_DECODER, "description": "Draw N samples with the row's decoding "
                                                    "settings.", "fields": []},
            *(_entry(name, fixed=BEAM_FIXED_FIELDS) for name in BEAM_DECODERS),
            _entry(ADAPTIVE_DECODER),
        ],
        "schemes": [_scheme(name) for name in scheme_names()],
        "verifiers": [{**_entry(name), "usable_in_spec": name in FORM_VERIFIERS}
                      for name in registry.names("verifier")],
        "selectors": [{**_entry(name), "code_only": name in CODE_SELECTORS}
                      for name in registry.names("selector")],
    }
