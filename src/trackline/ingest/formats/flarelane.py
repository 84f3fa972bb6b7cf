"""FlareLane's track call: ``POST /v1/projects/{PROJECT_ID}/track`` with
``{"events": [{"subjectType": "user"|"device", "subjectId", "type", "data", "timestamp"?}]}``."""

from __future__ import annotations

from typing import Any

from trackline.errors import InvalidInput, PayloadTooLarge
from trackline.ingest import values
from trackline.ingest.formats import native
from trackline.ingest.model import Parsed
from trackline.settings import Limits

FIELDS = frozenset({"subjectType", "subjectId", "type", "data", "timestamp"})
SUBJECTS = {"user": "external_id", "device": "device_id"}


def to_native(item: Any, *, prefix: str) -> dict[str, Any]:
    """One FlareLane event as a native event object."""
    if not isinstance(item, dict):
        raise values.bad("invalid_event", "an event must be a JSON object", prefix.rstrip("."))
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise values.bad("unknown_field", f"unknown field {unknown[0]!r}", prefix + unknown[0])
    subject = item.get("subjectType")
    if subject not in SUBJECTS:
        raise values.bad(
            "invalid_subject_type", 'subjectType must be "user" or "device"', prefix + "subjectType"
        )
    if item.get("subjectId") is None:
        raise values.bad("missing_identity", "subjectId is required", prefix + "subjectId")
    event = {SUBJECTS[subject]: item["subjectId"], "event": item.get("type")}
    if "data" in item:
        event["parameters"] = item["data"]
    if "timestamp" in item:
        event["timestamp"] = item["timestamp"]
    return event


def parse(body: Any, *, now_ms: int, limits: Limits, size: int) -> Parsed:
    """The whole request: every event parsed on its own; per-item errors keep the raw item."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise values.bad("invalid_batch", 'the body is {"events": [...]}', "events")
    items = body["events"]
    if len(items) > limits.batch_events:
        raise PayloadTooLarge(
            f"a request holds at most {limits.batch_events} events; this one has {len(items)}",
            field="events",
            code="batch_too_large",
        )
    parsed = Parsed(events=[], errors=[], size=size, prefix="events[{index}].")
    for index, item in enumerate(items):
        prefix = f"events[{index}]."
        try:
            if size > limits.event_bytes:
                native.check_size(item, limits=limits, field=prefix.rstrip("."))
            native_item = to_native(item, prefix=prefix)
            event = native.parse_event(native_item, now_ms=now_ms, limits=limits, prefix=prefix)
        except InvalidInput as exc:
            exc.field = _their_field(exc.field, prefix)
            parsed.errors.append(native.item_error(index, exc, item))
            continue
        parsed.events.append((index, event))
        parsed.raws[index] = item
    return parsed


_THEIR_NAMES = {
    "external_id": "subjectId",
    "device_id": "subjectId",
    "event": "type",
    "parameters": "data",
}


def _their_field(field: str | None, prefix: str) -> str | None:
    """Report a field under FlareLane's name for it (``data.x``, not ``parameters.x``)."""
    if field is None or not field.startswith(prefix):
        return field
    head, dot, rest = field[len(prefix) :].partition(".")
    return prefix + _THEIR_NAMES.get(head, head) + dot + rest
