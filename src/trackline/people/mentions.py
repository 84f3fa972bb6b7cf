"""Whether a request refused as a whole names an identity: pure text and JSON logic, used by
erasure to find the refused requests it must delete with a person.

A refused request is kept as received, so an id may appear in it as a JSON string (plain or
with escapes), as a JSON number under an identity field, or inside text that is not JSON at
all (malformed, or cut short)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# Fields that carry a user or device id in the formats Trackline reads (native and its
# synonyms, Segment, FlareLane). A number counts as an id only under one of these: a short
# numeric id would otherwise match every quantity in every refused request.
IDENTITY_FIELDS = frozenset(
    {
        "external_id",
        "user_id",
        "userId",
        "device_id",
        "anonymous_id",
        "anonymousId",
        "previousId",
        "subjectId",
    }
)
_HTML_SAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}  # Go's encoding/json


def spellings(value: str) -> set[str]:
    """Texts a request naming ``value`` as a JSON string contains: the inside of that string
    as compact encoders write it, with non-ASCII escaped (Python's ``json``, in lower and upper
    case hex), with ``/`` escaped (PHP) and with ``<``, ``>``, ``&`` escaped (Go). A search for
    these finds every candidate; ``mentions`` then decides."""
    compact = orjson.dumps(value).decode()[1:-1]
    ascii_only = json.dumps(value)[1:-1]
    upper = re.sub(r"\\u[0-9a-f]{4}", lambda m: "\\u" + m.group()[2:].upper(), ascii_only)
    html = "".join(_HTML_SAFE.get(c, c) for c in compact)
    found = {compact, ascii_only, upper, html}
    return found | {text.replace("/", "\\/") for text in found}


def number_spellings(value: str) -> set[str]:
    """Texts a request naming a numeric ``value`` as a JSON number contains (after the colon
    of its field, with or without a space); empty when ``value`` is not a number."""
    return {f":{value}", f": {value}"} if value.isdigit() else set()


def mentions(payload: str, values: Iterable[str]) -> bool:
    """True when ``payload`` names one of ``values``: as a string anywhere in it, or as a
    number under an identity field, when it is JSON; else as a quoted string, or a number
    after an identity field's name, in its text."""
    wanted = set(values)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return any(_in_text(payload, value) for value in wanted)
    return any(_id_text(field, item) in wanted for field, item in _scalars(document))


def _scalars(document: Any) -> Iterator[tuple[str | None, Any]]:
    """Every scalar of a JSON document with the name of the field holding it (None in lists)."""
    stack: list[tuple[str | None, Any]] = [(None, document)]
    while stack:
        field, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.items())
        elif isinstance(item, list):
            stack.extend((None, element) for element in item)
        else:
            yield field, item


def _id_text(field: str | None, item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, int) and not isinstance(item, bool) and field in IDENTITY_FIELDS:
        return str(item)
    return None


def _in_text(payload: str, value: str) -> bool:
    if any(f'"{spelling}"' in payload for spelling in spellings(value)):
        return True
    if not value.isdigit():
        return False
    fields = "|".join(sorted(IDENTITY_FIELDS))
    return re.search(rf'"(?:{fields})"\s*:\s*{value}(?![\d.eE])', payload) is not None
