"""Whether a request refused as a whole names an identity: pure text and JSON logic, used by
erasure to find the refused requests it must delete with a person.

A refused request is kept as received, so an id may appear in it as a JSON string (plain or
with escapes, as Python's ``json`` writes non-ASCII text), as a JSON number, or inside text
that is not JSON at all."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson


def spellings(value: str) -> set[str]:
    """Texts a request naming ``value`` contains: the value itself, and its inside of a JSON
    string as compact encoders write it, as ASCII-only encoders do, and with ``/`` escaped as
    PHP's ``json_encode`` does. Searching for these finds every candidate; ``mentions`` then
    decides."""
    inside = {orjson.dumps(value).decode()[1:-1], json.dumps(value)[1:-1]}
    return {value} | inside | {text.replace("/", "\\/") for text in inside}


def mentions(payload: str, values: Iterable[str]) -> bool:
    """True when ``payload`` names one of ``values``: as a string or number anywhere in it
    when it is JSON, else as a quoted string or a whole number in its text."""
    wanted = set(values)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return any(_in_text(payload, value) for value in wanted)
    return any(_scalar_text(item) in wanted for item in _scalars(document))


def _scalars(document: Any) -> Iterator[Any]:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def _scalar_text(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    return None


def _in_text(payload: str, value: str) -> bool:
    """In text that is not JSON (malformed or cut short): a quoted spelling, or the digits of
    a numeric id not run into other digits."""
    if any(f'"{spelling}"' in payload for spelling in spellings(value)):
        return True
    if value.isdigit():
        return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d.])", payload) is not None
    return False
