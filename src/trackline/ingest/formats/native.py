"""The native wire format (spec 3.2): Flameup's and spec 004's fields and their synonyms."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson

from trackline.errors import InvalidInput, PayloadTooLarge, TracklineError
from trackline.ingest import values
from trackline.ingest.model import CanonicalEvent, ItemError, Parsed
from trackline.settings import Limits

SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "user_id", "userId"),
    "device_id": ("device_id", "anonymous_id", "anonymousId"),
    "event": ("event", "event_name", "type"),
    "parameters": ("parameters", "properties", "data"),
    "timestamp": ("timestamp",),
    "message_id": ("message_id", "messageId", "insert_id", "$insert_id"),
    "group_id": ("group_id",),
    "context": ("context",),
}
KNOWN = frozenset(name for names in SYNONYMS.values() for name in names)
MEANING = {name: meaning for meaning, names in SYNONYMS.items() for name in names}


def pick(item: dict[str, Any], meaning: str, prefix: str = "") -> tuple[Any, str]:
    """The value given for one meaning and the name it was given under; two synonyms is a 400."""
    found = [name for name in SYNONYMS[meaning] if name in item]
    if len(found) > 1:
        raise values.bad(
            "conflicting_fields",
            f"give only one of {', '.join(found)}",
            ",".join(prefix + name for name in found),
        )
    name = found[0] if found else SYNONYMS[meaning][0]
    return item.get(name), name


def _fields(item: dict[str, Any], prefix: str) -> dict[str, str]:
    """``meaning -> name given`` (or the meaning's first name when absent); unknown fields and
    two synonyms of one meaning are refused (unknown first, as ``pick`` orders conflicts)."""
    layout = _layout(tuple(item))
    if layout is not None:
        return layout
    unknown = sorted(set(item) - KNOWN)  # no layout: an unknown key or two synonyms
    if unknown:
        raise values.bad("unknown_field", f"unknown field {unknown[0]!r}", prefix + unknown[0])
    for meaning in SYNONYMS:
        pick(item, meaning, prefix)
    raise AssertionError("a key layout without unknown or clashing fields is cached")


@functools.lru_cache(maxsize=1024)
def _layout(keys: tuple[str, ...]) -> dict[str, str] | None:
    """``meaning -> name given`` for an event's keys (clients send few distinct layouts, so
    this is worked out once per layout); None when a key is unknown or two are synonyms."""
    given: dict[str, str] = {}
    for name in keys:
        meaning = MEANING.get(name)
        if meaning is None or meaning in given:
            return None
        given[meaning] = name
    return {meaning: given.get(meaning, names[0]) for meaning, names in SYNONYMS.items()}


def parse_event(item: Any, *, now_ms: int, limits: Limits, prefix: str = "") -> CanonicalEvent:
    """One native event object -> a canonical event, or ``InvalidInput`` naming the field."""
    if not isinstance(item, dict):
        raise values.bad(
            "invalid_event", "an event must be a JSON object", prefix.rstrip(".") or None
        )
    names = _fields(item, prefix)

    def at(meaning: str) -> str:
        return prefix + names[meaning]

    external_id = _identity(item.get(names["external_id"]), limits, at, "external_id")
    device_id = _identity(item.get(names["device_id"]), limits, at, "device_id")
    if external_id is None and device_id is None:
        raise values.bad(
            "missing_identity",
            "an event needs external_id/user_id or device_id/anonymous_id",
            prefix + "external_id",
        )
    context = item.get(names["context"])
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise values.bad("invalid_context", "context must be an object", at("context"))
    if values.depth(context) > limits.depth:
        raise values.bad("too_deep", f"context is nested deeper than {limits.depth}", at("context"))
    context_json = values.check_storable(context, field=at("context"))
    parameters, shape = values.typed_properties(
        item.get(names["parameters"]), limits=limits, field=at("parameters")
    )
    parameters_json = values.check_storable(parameters, field=at("parameters"))
    timestamp = item.get(names["timestamp"])
    return CanonicalEvent(
        event=values.check_event_name(item.get(names["event"]), limits=limits, field=at("event")),
        external_id=external_id,
        device_id=device_id,
        parameters=parameters,
        timestamp=now_ms
        if timestamp is None
        else values.check_event_time(
            timestamp, now_ms=now_ms, limits=limits, field=at("timestamp")
        ),
        message_id=_identity(item.get(names["message_id"]), limits, at, "message_id"),
        group_id=_group_id(item.get(names["group_id"]), context, limits=limits, prefix=prefix),
        context=context,
        parameters_json=parameters_json,
        context_json=context_json,
        shape=shape,
    )


def _identity(value: Any, limits: Limits, at: Callable[[str], str], meaning: str) -> str | None:
    """``values.check_identity``, with the field path built only when the value needs the
    full checks (absent, or not a plain printable string)."""
    if value is None or values.plain_id(value, limits):
        return value
    return values.check_identity(value, limits=limits, field=at(meaning))


def _group_id(top: Any, context: dict[str, Any], *, limits: Limits, prefix: str) -> str | None:
    nested = context.get("group_id")
    if top is None and nested is None:
        return None
    if top is not None and nested is not None and top != nested:
        raise values.bad(
            "conflicting_fields",
            "group_id and context.group_id differ",
            f"{prefix}group_id,{prefix}context.group_id",
        )
    chosen, where = (top, "group_id") if top is not None else (nested, "context.group_id")
    return values.check_identity(chosen, limits=limits, field=prefix + where)


def parse_items(
    items: list[Any], *, now_ms: int, limits: Limits, prefix: str, whole_size: int
) -> Parsed:
    """Parse many native items; each bad one becomes an ``ItemError`` with its raw payload."""
    parsed = Parsed(events=[], errors=[], size=whole_size, prefix=prefix + "[{index}].")
    measure = whole_size > limits.event_bytes
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]."
        try:
            if measure:
                check_size(item, limits=limits, field=where.rstrip("."))
            parsed.events.append(
                (index, parse_event(item, now_ms=now_ms, limits=limits, prefix=where))
            )
            parsed.raws[index] = item
        except InvalidInput as exc:
            parsed.errors.append(item_error(index, exc, item))
    return parsed


def check_size(item: Any, *, limits: Limits, field: str | None) -> None:
    size = len(item_json(item))
    if size > limits.event_bytes:
        raise values.bad(
            "event_too_large",
            f"the event is {size} bytes; the limit is {limits.event_bytes}",
            field,
        )


def item_json(item: Any) -> bytes:
    """``item`` as compact JSON. An item nested deeper than the encoder goes (255 levels; the
    decoder takes 1,024) refuses the whole request, which is then kept as it was received."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        raise values.bad("too_deep", "the body is nested more than 255 levels deep", None) from None


def item_error(index: int | None, exc: TracklineError, item: Any) -> ItemError:
    """An ``ItemError`` for a refused item, keeping its raw JSON and any identity it named."""
    return ItemError(
        index=index,
        code=exc.code,
        message=exc.message,
        field=exc.field,
        payload=item_json(item).decode(),
        **named_identities(item),
    )


def named_identities(item: Any) -> dict[str, str | None]:
    """The user and device id a refused item names, so that erasure can find it."""
    if not isinstance(item, dict):
        return {"external_id": None, "device_id": None}
    user = _first_str(item, SYNONYMS["external_id"])
    device = _first_str(item, SYNONYMS["device_id"])
    subject = {"user": "external_id", "device": "device_id"}.get(item.get("subjectType"))
    found = {"external_id": user, "device_id": device}
    if subject is not None and found[subject] is None:  # FlareLane's subjectType/subjectId
        found[subject] = _first_str(item, ("subjectId",))
    return found


def _first_str(item: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = item.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:255]
    return None


def parse_track(body: Any, *, now_ms: int, limits: Limits, size: int) -> Parsed:
    """``POST /api/v1/track``: one event object (its size measured as compact JSON)."""
    try:
        if size > limits.event_bytes:
            check_size(body, limits=limits, field=None)
        event = parse_event(body, now_ms=now_ms, limits=limits)
    except InvalidInput as exc:
        return Parsed(events=[], errors=[item_error(None, exc, body)], size=size)
    return Parsed(events=[(0, event)], errors=[], size=size, raws={0: body})


def parse_batch(body: Any, *, now_ms: int, limits: Limits, size: int) -> Parsed:
    """``POST /api/v1/track/batch``: ``{"events": [...]}``; whole-request problems raise."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise values.bad("invalid_batch", 'a batch is an object {"events": [...]}', "events")
    extra = sorted(set(body) - {"events"})
    if extra:
        raise values.bad("unknown_field", f"unknown field {extra[0]!r}", extra[0])
    items = body["events"]
    if len(items) > limits.batch_events:
        raise PayloadTooLarge(
            f"a batch holds at most {limits.batch_events} events; this one has {len(items)}",
            field="events",
            code="batch_too_large",
        )
    return parse_items(items, now_ms=now_ms, limits=limits, prefix="events", whole_size=size)
