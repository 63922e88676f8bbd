"""JSON decoding shared by the JSONL and JSON-array parsers: strict about what can be stored."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from webapp.datasets.parsers.base import MAX_DEPTH, ErrorLog

_JSON_WS = " \t\r\n"


class _Refused:
    """Stands in for a value the hooks refused, so the field holding it can be named."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _refused(value: Any) -> str | None:
    """The message of a refused value inside ``value`` (a loop: values may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Refused):
            return item.message
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return None


class JsonDecoder:
    """A ``json.JSONDecoder`` that flags NaN, Infinity and floats too large to be finite.

    The hooks record the problem instead of raising, so that the value's end is still
    found and the parser can go on to the next one.
    """

    def __init__(self) -> None:
        self.problem: str | None = None
        self._decoder = json.JSONDecoder(parse_constant=self._constant, parse_float=self._float)

    def _refuse(self, message: str) -> _Refused:
        self.problem = self.problem or message
        return _Refused(message)

    def _constant(self, name: str) -> _Refused:
        return self._refuse(f"holds {name}, which is not allowed (JSON has no {name})")

    def _float(self, text: str) -> float | _Refused:
        value = float(text)
        if math.isfinite(value):
            return value
        return self._refuse(f"holds the number {text[:40]}, too large for a float")

    def report(self, value: Any, location: str, errors: ErrorLog) -> None:
        """Report the refused values in ``value``, naming each top-level field holding one."""
        if not isinstance(value, dict):
            errors.add(location, self.problem or "holds a value JSON cannot hold")
            return
        for name, item in value.items():
            message = _refused(item)
            if message:
                errors.add(location, message, name)

    def decode(self, text: str) -> Any:
        """One JSON document (may raise ``ValueError`` or ``RecursionError``)."""
        self.problem = None
        # JSON's whitespace only (str.strip() would also drop U+2028 and friends).
        text = text.rstrip(" \t\r\n")
        start = 0 if text[:1] not in _JSON_WS else len(text) - len(text.lstrip(_JSON_WS))
        value, end = self._decoder.raw_decode(text, start)
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        return value

    def raw_decode(self, text: str, pos: int) -> tuple[Any, int]:
        self.problem = None
        return self._decoder.raw_decode(text, pos)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def decode_problem(exc: ValueError | RecursionError) -> str:
    """The message for a value ``json`` refused."""
    if isinstance(exc, RecursionError):
        return "is nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"is not valid JSON: {exc.msg} (column {exc.colno})"
    if "digits" in str(exc):
        return f"holds an integer with more than {sys.get_int_max_str_digits()} digits"
    return f"is not valid JSON: {exc}"


def needs_check(raw: str, max_field_bytes: int) -> bool:
    """Whether decoded JSON text must be walked for values that cannot be stored.

    NUL characters and unpaired surrogates can only come from ``\\u`` escapes, a field
    can only be too long in a long text and a value only too deep with many brackets,
    so most items skip the walk. (The JSONL parser inlines the same test on bytes.)
    """
    return (len(raw) > max_field_bytes or "\\u" in raw
            or raw.count("[") + raw.count("{") > MAX_DEPTH)
