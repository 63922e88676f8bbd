"""Form fields generated from a strategy's frozen config dataclass, validated by it.

A config class is the single source of truth for an algorithm's parameters: its
fields become form fields (with their defaults as initial values), and building
the config is the validation, so a ``ValueError`` from ``__post_init__`` becomes
an error on the field it names.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from django import forms

# Fields that are not user parameters (set by the app, or too structural for a form).
# (A pool has a fixed size, so refinement's early exit ``r_max`` does not apply.)
HIDDEN_FIELDS = frozenset({"max_new_tokens", "seed", "examples", "r_max"})


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def field_for(name: str, tp: Any, default: Any) -> forms.Field | None:
    """A Django form field for one dataclass field, or None when it has no form shape."""
    tp, optional = _unwrap_optional(tp)
    initial = None if default is dataclasses.MISSING else default
    common: dict[str, Any] = {"label": _label(name), "initial": initial, "required": False}
    origin = get_origin(tp)
    if origin is Literal:
        choices = [(str(c), str(c)) for c in get_args(tp)]
        return forms.TypedChoiceField(choices=choices, coerce=_literal_coercer(tp), **common)
    if tp is bool:
        return forms.BooleanField(**common)
    if tp is int:
        return forms.IntegerField(**common)
    if tp is float:
        return forms.FloatField(**common)
    if tp is str:
        return forms.CharField(max_length=500, **common)
    if origin is tuple and get_args(tp)[:1] == (float,):
        return FloatTupleField(**{**common, "initial": _join(initial)})
    return None


def _literal_coercer(tp: Any) -> Any:
    values = {str(v): v for v in get_args(tp)}
    return lambda raw: values[raw]


def _join(value: Any) -> str | None:
    if value is None:
        return None
    return ", ".join(f"{v:g}" for v in value)


class FloatTupleField(forms.CharField):
    """Comma-separated numbers, e.g. ``0.5, 0.8, 1.1``."""

    def to_python(self, value: Any) -> tuple[float, ...]:
        text = super().to_python(value)
        if not text:
            return ()
        try:
            return tuple(float(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise forms.ValidationError("Enter numbers separated by commas.") from None


def config_fields(config_class: type) -> dict[str, forms.Field]:
    """Form fields for every user-settable field of ``config_class``, in declaration order."""
    hints = typing.get_type_hints(config_class)
    fields: dict[str, forms.Field] = {}
    for f in dataclasses.fields(config_class):
        if f.name in HIDDEN_FIELDS or f.name.startswith("_"):
            continue
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        form_field = field_for(f.name, hints[f.name], default)
        if form_field is not None:
            fields[f.name] = form_field
    return fields


def build_config(
    config_class: type, values: dict[str, Any], fixed: dict[str, Any] | None = None
) -> tuple[Any | None, dict[str, str]]:
    """Build the config from cleaned values; returns (config, {field: error}).

    Empty values fall back to the dataclass default. A ``ValueError`` from the
    config's validation is attached to the field whose name it mentions.
    """
    kwargs = {k: v for k, v in values.items() if v is not None and v != ""}
    kwargs.update(fixed or {})
    try:
        return config_class(**kwargs), {}
    except (TypeError, ValueError) as exc:
        message = str(exc)
        names = [f.name for f in dataclasses.fields(config_class)]
        target = next((n for n in sorted(names, key=len, reverse=True) if n in message), "")
        return None, {target: message}
