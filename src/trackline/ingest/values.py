"""Value rules for events and person attributes. Pure: no I/O, time passed in.

Types (spec 3.3): string, number (integers stay integers), boolean, time (ISO 8601 date-time),
array (all strings or all numbers), json (object, or array of objects), null.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from trackline.errors import InvalidInput
from trackline.settings import Limits

AUTO_COLLECTED = frozenset(
    {
        "@first_session",
        "@clicked",
        "@foreground_received",
        "@background_received",
        "@iam_displayed",
        "@iam_clicked",
        "@iam_closed",
    }
)
# Recorded by the server itself; a client may not send it.
SERVER_RECORDED = frozenset({"@first_session"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Below this a "millisecond" timestamp is before 1973: almost surely Unix seconds sent by mistake.
_MIN_MS = 100_000_000_000
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

Shape = tuple[tuple[str, str], ...]  # (property, type) of an event's typed properties


def bad(code: str, message: str, field: str | None) -> InvalidInput:
    return InvalidInput(message, field=field, code=code)


def check_object(body: Any, *, allowed: set[str] | frozenset[str]) -> dict[str, Any]:
    """A request body that must be a JSON object with only ``allowed`` fields."""
    if not isinstance(body, dict):
        raise bad("invalid_request", "the body must be a JSON object", None)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad("unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
    return body


def check_event_name(name: Any, *, limits: Limits, field: str = "event") -> str:
    """An event name: a string of 1..N characters, no control characters, ``@`` reserved."""
    if (  # the common case, decided without the checks below
        name.__class__ is str
        and 0 < len(name) <= limits.event_name_chars
        and name[0] != "@"
        and name.isprintable()  # stricter than "no control characters": the rest is checked below
    ):
        return name
    if name is None:
        raise bad("missing_event_name", "the event name is required", field)
    if not isinstance(name, str):
        raise bad("invalid_event_name", "the event name must be a string", field)
    if not 1 <= len(name) <= limits.event_name_chars:
        raise bad(
            "invalid_event_name",
            f"the event name must have 1 to {limits.event_name_chars} characters",
            field,
        )
    if _CONTROL.search(name):
        raise bad("invalid_event_name", "the event name contains control characters", field)
    if name.startswith("@"):
        if name in SERVER_RECORDED:
            raise bad("reserved_event_name", f"{name} is recorded by the server itself", field)
        if name not in AUTO_COLLECTED:
            raise bad(
                "reserved_event_name",
                "names starting with @ are reserved for automatically collected events",
                field,
            )
    return name


def plain_id(value: Any, limits: Limits) -> bool:
    """The common case of an id, accepted as it is: a printable string of allowed length.
    Anything else, valid or not, takes ``check_identity``'s full checks."""
    return (
        value.__class__ is str and 0 < len(value) <= limits.identity_chars and value.isprintable()
    )


def check_identity(value: Any, *, limits: Limits, field: str) -> str | None:
    """A user, device, message or group id: a non-empty string (an integer is taken as text)."""
    if plain_id(value, limits):
        return value
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise bad("invalid_identity", f"{field} must be a string", field)
    if not value or len(value) > limits.identity_chars:
        raise bad(
            "invalid_identity", f"{field} must have 1 to {limits.identity_chars} characters", field
        )
    if _CONTROL.search(value):
        raise bad("invalid_identity", f"{field} contains control characters", field)
    return value


def parse_time(value: Any, *, field: str) -> int:
    """ISO 8601 date-time (offset optional, UTC if absent) or Unix milliseconds -> ms UTC."""
    if isinstance(value, bool):
        raise bad("invalid_timestamp", "a time must be an ISO 8601 string or Unix ms", field)
    if isinstance(value, int | float):
        if not -_MAX_MS <= value <= _MAX_MS:
            raise bad("invalid_timestamp", "a time after the year 9999 is not accepted", field)
        ms = int(value)
        if ms < _MIN_MS:
            raise bad(
                "invalid_timestamp",
                "a numeric time is Unix milliseconds; this looks like seconds",
                field,
            )
        return ms
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise bad("invalid_timestamp", "a time must be an ISO 8601 date-time or Unix ms", field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad("invalid_timestamp", f"not an ISO 8601 date-time: {value!r}", field) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - _EPOCH  # exact integer arithmetic: float seconds can lose a millisecond
    if delta < timedelta(0):
        raise bad("invalid_timestamp", "a time before 1970 is not accepted", field)
    ms = delta // _MS
    if ms > _MAX_MS:
        raise bad("invalid_timestamp", "a time after the year 9999 is not accepted", field)
    if ms < 0:
        raise bad("invalid_timestamp", "a time before 1970 is not accepted", field)
    return ms


def check_event_time(value: Any, *, now_ms: int, limits: Limits, field: str = "timestamp") -> int:
    """The event's own time: defaults to now, refused when too far in the future."""
    if value is None:
        return now_ms
    ms = parse_time(value, field=field)
    if ms > now_ms + limits.future_ms:
        raise bad(
            "timestamp_in_future",
            f"the timestamp is more than {limits.future_ms // 1000} s in the future",
            field,
        )
    return ms


def check_properties(props: Any, *, limits: Limits, field: str) -> dict[str, Any]:
    """An object of typed values (spec 3.3); raises with the path of the first bad value."""
    return typed_properties(props, limits=limits, field=field)[0]


def typed_properties(props: Any, *, limits: Limits, field: str) -> tuple[dict[str, Any], Shape]:
    """``check_properties`` and ``property_kinds`` in one pass over the properties."""
    if props is None:
        return {}, ()
    if not isinstance(props, dict):
        raise bad("invalid_properties", f"{field} must be an object", field)
    deepest = 0
    kinds = []
    good = _good_names(limits.property_name_chars)
    for name, value in props.items():  # a plain loop: this runs for every property received
        if name not in good:
            check_property_name(name, limits=limits, field=f"{field}.{name}")
            if len(good) < _GOOD_NAMES_KEPT:
                good.add(name)
        cls = value.__class__  # values parsed from JSON: exact types
        if cls is str:  # the common cases first (as ``kind_of``)
            if not value[:1].isdigit():  # cannot be a time
                kinds.append((name, "string"))
                continue
        elif cls is float or cls is int:
            kinds.append((name, "number"))
            continue
        elif cls is list:
            flat = _flat_array_kind(value)
            if flat is not None:
                kinds.append((name, flat))
                deepest = deepest or 1
                continue
        if isinstance(value, list | dict):
            if isinstance(value, list):
                check_value(value, field=f"{field}.{name}")
            deepest = max(deepest, depth(value))
        kind = kind_of(value)
        if kind is not None:
            kinds.append((name, kind))
    if 1 + deepest > limits.depth:
        raise bad("too_deep", f"{field} is nested deeper than {limits.depth} levels", field)
    return props, tuple(kinds)


def _flat_array_kind(value: list[Any]) -> str | None:
    """``array_string`` or ``array_number`` for a non-empty array of only strings or only
    numbers (the common arrays, decided here without ``check_value``); None for the rest."""
    if not value:
        return None
    kind = _FLAT_ARRAYS.get(value[0].__class__)
    if kind is None:
        return None
    for item in value:
        if _FLAT_ARRAYS.get(item.__class__) != kind:
            return None
    return kind


_FLAT_ARRAYS = {str: "array_string", int: "array_number", float: "array_number"}


# Property names repeat across events: the good ones are remembered, per name-length limit,
# up to this many (past it, a new name is checked each time it comes).
_GOOD_NAMES_KEPT = 10_000
_GOOD_NAMES: dict[int, set[str]] = {}


def _good_names(longest: int) -> set[str]:
    good = _GOOD_NAMES.get(longest)
    if good is None:
        good = _GOOD_NAMES.setdefault(longest, set())
    return good


def _name_ok(name: str, longest: int) -> bool:
    return 1 <= len(name) <= longest and not _CONTROL.search(name)


def check_property_name(name: str, *, limits: Limits, field: str) -> None:
    if not _name_ok(name, limits.property_name_chars):
        raise bad(
            "invalid_property_name",
            f"a property name must have 1 to {limits.property_name_chars} printable characters",
            field,
        )


def check_value(value: Any, *, field: str) -> None:
    """One property value: a scalar, a homogeneous array, or json (object / array of objects)."""
    if isinstance(value, list):
        kinds = {_element_kind(item) for item in value}
        if len(kinds) > 1:
            raise bad(
                "mixed_array",
                "an array must hold only strings, only numbers, or only objects",
                field,
            )
        if kinds and kinds <= {"bool", "null", "array"}:
            raise bad(
                "invalid_array",
                "an array must hold only strings, only numbers, or only objects",
                field,
            )


def _element_kind(item: Any) -> str:
    if isinstance(item, bool):
        return "bool"
    if isinstance(item, int | float):
        return "number"
    if isinstance(item, str):
        return "string"
    if isinstance(item, dict):
        return "object"
    if isinstance(item, list):
        return "array"
    return "null"


def depth(value: Any) -> int:
    """Nesting depth: a scalar is 0, a container is one more than its deepest member."""
    if isinstance(value, dict):
        members: Any = value.values()
    elif isinstance(value, list):
        members = value
    else:
        return 0
    deepest = 0
    for member in members:  # a plain loop: this runs for every value of every event
        if member.__class__ in _CONTAINERS:  # values parsed from JSON: exact types
            inner = depth(member)
            if inner > deepest:
                deepest = inner
    return 1 + deepest


_CONTAINERS = (dict, list)


_SIMPLE_TYPES = {bool: "boolean", int: "number", float: "number", dict: "json"}
_UNTYPED = frozenset({"null", "array"})  # kinds that teach the catalog nothing


def property_kinds(properties: dict[str, Any]) -> Shape:
    """``(property, type)`` for each property whose value has a type (not null, not ``[]``):
    what the catalog counts for an event."""
    found = []
    for prop, value in properties.items():  # a plain loop: this runs for every event
        kind = kind_of(value)
        if kind is not None:
            found.append((prop, kind))
    return tuple(found)


def kind_of(value: Any) -> str | None:
    """``infer_type`` with the common cases first; None for the types that teach the catalog
    nothing (null, the empty array)."""
    if value.__class__ is str and not value[:1].isdigit():  # cannot be a time
        return "string"
    kind = infer_type(value)
    return None if kind in _UNTYPED else kind


def infer_type(value: Any) -> str:
    """The catalog type of a value as it arrived (no coercion)."""
    simple = _SIMPLE_TYPES.get(type(value))
    if simple is not None:
        return simple
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "time" if is_iso_datetime(value) else "string"
    if isinstance(value, dict):
        return "json"
    if value and isinstance(value[0], dict):
        return "json"
    if value and isinstance(value[0], str):
        return "array_string"
    return "array_number" if value else "array"


def is_iso_datetime(text: str) -> bool:
    if not text[:1].isdigit() or not _ISO_DATETIME.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_storable(value: Any, *, field: str) -> str:
    """Refuse strings holding NUL (``\\u0000``): PostgreSQL cannot store them in text or JSONB,
    and the same input must get the same answer on every database. Returns the value's JSON
    text, which the writer can store as it is."""
    text = orjson.dumps(value)
    if b"\\u0000" not in text:
        return text.decode()
    raise bad(
        "invalid_character",
        "a string contains a NUL character (\\u0000), which cannot be stored",
        _nul_path(value, field) or field,
    )


def _nul_path(value: Any, field: str) -> str | None:
    if isinstance(value, str):
        return field if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = f"{field}.{key}" if "\x00" in key else _nul_path(item, f"{field}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{field}[{index}]")
            if found:
                return found
    return None
