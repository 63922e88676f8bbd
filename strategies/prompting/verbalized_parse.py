"""Parse and repair a Verbalized Sampling reply (ALGORITHMS §5 step 1-2): JSON, XML, raw."""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["extract_raw_items", "repair_weight"]

_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_FENCE_LINE = re.compile(r"^\s*```[\w-]*\s*$", re.MULTILINE)
_XML_ITEM = re.compile(r"<response>(.*?)</response>", re.DOTALL | re.IGNORECASE)
_XML_TEXT = re.compile(r"<text>(.*?)</text>", re.DOTALL | re.IGNORECASE)
_XML_PROB = re.compile(r"<probability>(.*?)</probability>", re.DOTALL | re.IGNORECASE)
_TEXT_KEYS = ("text", "response", "content", "answer")
_WEIGHT_KEYS = ("probability", "prob", "weight", "confidence")
_LIST_KEYS = ("responses", "items", "candidates")


def repair_weight(value: object) -> float:
    """Return a verbalised probability as a float in [0, 1]; anything unreadable is 0.

    >>> [repair_weight(v) for v in ("70%", " 0.25 ", 0.4, "NaN", float("inf"), "lots", 3)]
    [0.7, 0.25, 0.4, 0.0, 0.0, 0.0, 1.0]
    """
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        divisor = 1.0
        if text.endswith("%"):
            text, divisor = text[:-1].strip(), 100.0
        try:
            number = float(text) / divisor
        except ValueError:
            return 0.0
    else:
        return 0.0
    if not math.isfinite(number):
        return 0.0
    return min(max(number, 0.0), 1.0)


def _item_pair(item: object) -> tuple[str, object] | None:
    """Return (text, raw weight) of one JSON item, accepting ``response`` for ``text``."""
    if isinstance(item, str):
        return item, None
    if not isinstance(item, dict):
        return None
    text = next((item[key] for key in _TEXT_KEYS if key in item), None)
    if text is None:
        return None
    weight = next((item[key] for key in _WEIGHT_KEYS if key in item), None)
    return (text if isinstance(text, str) else json.dumps(text)), weight


def _items_from_json(value: Any) -> list[tuple[str, object]] | None:
    """Return the items of a parsed JSON reply, or ``None`` when it has no item list."""
    if isinstance(value, dict):
        listed = next((value[key] for key in _LIST_KEYS if isinstance(value.get(key), list)), None)
        if listed is None:
            listed = next((v for v in value.values() if isinstance(v, list)), None)
        if listed is None:
            pair = _item_pair(value)
            return None if pair is None else [pair]
        value = listed
    if not isinstance(value, list):
        return None
    pairs = [_item_pair(item) for item in value]
    return [pair for pair in pairs if pair is not None]


def _json_candidates(text: str) -> list[str]:
    """Return the substrings worth handing to ``json.loads``, most specific first."""
    unfenced = _FENCE_LINE.sub("", text).strip()
    out = []
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = unfenced.find(opener), unfenced.rfind(closer)
        if 0 <= start < end:
            out.append(unfenced[start : end + 1])
    return out


def _items_from_xml(text: str) -> list[tuple[str, object]] | None:
    """Return the ``<response><text>..</text><probability>..</probability>`` items, if any."""
    blocks = _XML_ITEM.findall(text)
    pairs: list[tuple[str, object]] = []
    for block in blocks:
        body = _XML_TEXT.search(block)
        prob = _XML_PROB.search(block)
        pairs.append((body.group(1) if body else block, prob.group(1) if prob else None))
    return pairs or None


def extract_raw_items(text: str) -> list[tuple[str, object]]:
    """Return the (text, raw weight) items of a reply: JSON, else XML, else the whole reply.

    Fences are stripped, the JSON runs from the first ``{`` to the last ``}`` and trailing
    commas are removed; when neither JSON nor XML can be read the reply is one item with
    weight 1.

    >>> extract_raw_items('```json\\n{"responses": [{"text": "a", "probability": 0.6},]}\\n```')
    [('a', 0.6)]
    >>> extract_raw_items("just words")
    [('just words', 1.0)]
    """
    for chunk in _json_candidates(text):
        try:
            value = json.loads(_TRAILING_COMMA.sub(r"\1", chunk))
        except ValueError:
            continue
        items = _items_from_json(value)
        if items is not None:
            return items
    items = _items_from_xml(text)
    if items is not None:
        return items
    return [(text.strip(), 1.0)] if text.strip() else []
