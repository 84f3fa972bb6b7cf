"""The Segment HTTP Tracking API (also spoken by RudderStack): track, identify, group, alias,
page, screen and batch messages, as Segment's libraries send them.

Segment's protocol is lenient about extra fields (``integrations``, ``channel``, ``_metadata``,
...), so unknown fields are ignored here, unlike on the native endpoints. Timestamps are
corrected for client clock skew the way Segment documents it:
``timestamp = receivedAt - (sentAt - originalTimestamp)``.
"""

from __future__ import annotations

from typing import Any

from trackline.errors import InvalidInput, PayloadTooLarge
from trackline.ingest import values
from trackline.ingest.formats import native
from trackline.ingest.model import AliasOp, CanonicalEvent, GroupOp, IdentifyOp, Parsed
from trackline.settings import Limits

TYPES = frozenset({"track", "identify", "group", "alias", "page", "screen"})
PAGE_EVENTS = {"page": "page_viewed", "screen": "screen_viewed"}


def parse_one(kind: str) -> Any:
    """A parser for the single-message endpoint ``/v1/<kind>``."""

    def parse(body: Any, *, now_ms: int, limits: Limits, size: int) -> Parsed:
        if not isinstance(body, dict):
            raise values.bad("invalid_request", "the body must be a JSON object", None)
        if size > limits.event_bytes:
            native.check_size(body, limits=limits, field=None)
        message = {**body, "type": kind}
        parsed = Parsed(events=[], errors=[], size=size)
        _add(parsed, 0, message, sent_at=None, now_ms=now_ms, limits=limits, prefix="")
        for error in parsed.errors:
            error.index = None
        return parsed

    return parse


def parse_batch(body: Any, *, now_ms: int, limits: Limits, size: int) -> Parsed:
    """``/v1/batch`` and ``/v1/import``: ``{"batch": [...], "context"?, "sentAt"?}``."""
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise values.bad("invalid_batch", 'the body is {"batch": [...]}', "batch")
    items = body["batch"]
    if len(items) > limits.batch_events:
        raise PayloadTooLarge(
            f"a batch holds at most {limits.batch_events} messages; this one has {len(items)}",
            field="batch",
            code="batch_too_large",
        )
    shared = body.get("context")
    sent_at = body.get("sentAt")
    parsed = Parsed(events=[], errors=[], size=size, prefix="batch[{index}].")
    for index, item in enumerate(items):
        prefix = f"batch[{index}]."
        own = item.get("context") if isinstance(item, dict) else None
        if isinstance(shared, dict) and isinstance(own, dict | None):
            item = {**item, "context": {**shared, **(own or {})}}
        if size > limits.event_bytes:
            try:
                native.check_size(item, limits=limits, field=prefix.rstrip("."))
            except InvalidInput as exc:
                parsed.errors.append(native.item_error(index, exc, item))
                continue
        _add(parsed, index, item, sent_at=sent_at, now_ms=now_ms, limits=limits, prefix=prefix)
    return parsed


def _add(
    parsed: Parsed,
    index: int,
    message: Any,
    *,
    sent_at: Any,
    now_ms: int,
    limits: Limits,
    prefix: str,
) -> None:
    try:
        op = _message(message, sent_at=sent_at, now_ms=now_ms, limits=limits, prefix=prefix)
    except InvalidInput as exc:
        parsed.errors.append(native.item_error(index, exc, message))
        return
    if isinstance(op, CanonicalEvent):
        parsed.events.append((index, op))
    else:
        parsed.ops.append((index, op))
    parsed.raws[index] = message


def _message(m: Any, *, sent_at: Any, now_ms: int, limits: Limits, prefix: str) -> Any:
    if not isinstance(m, dict):
        raise values.bad("invalid_event", "a message must be a JSON object", prefix.rstrip("."))
    kind = m.get("type")
    if kind not in TYPES:
        raise values.bad(
            "invalid_type", f"type must be one of {', '.join(sorted(TYPES))}", prefix + "type"
        )
    user = values.check_identity(m.get("userId"), limits=limits, field=prefix + "userId")
    if kind == "alias":
        return _alias(m, user, limits=limits, prefix=prefix)
    anon = values.check_identity(m.get("anonymousId"), limits=limits, field=prefix + "anonymousId")
    if user is None and anon is None:
        raise values.bad(
            "missing_identity", "a message needs userId or anonymousId", prefix + "userId"
        )
    if kind == "identify":
        traits = _traits(m, limits=limits, prefix=prefix)
        return IdentifyOp(external_id=user, device_id=anon, attributes=traits)
    if kind == "group":
        group = values.check_identity(m.get("groupId"), limits=limits, field=prefix + "groupId")
        if group is None:
            raise values.bad("missing_group_id", "group needs a groupId", prefix + "groupId")
        traits = _traits(m, limits=limits, prefix=prefix)
        return GroupOp(external_id=user, device_id=anon, group_id=group, traits=traits)
    return _event(m, kind, user, anon, sent_at=sent_at, now_ms=now_ms, limits=limits, prefix=prefix)


def _event(
    m: dict[str, Any],
    kind: str,
    user: str | None,
    anon: str | None,
    *,
    sent_at: Any,
    now_ms: int,
    limits: Limits,
    prefix: str,
) -> CanonicalEvent:
    props = values.check_properties(m.get("properties"), limits=limits, field=prefix + "properties")
    values.check_storable(props, field=prefix + "properties")
    if kind == "track":
        name = values.check_event_name(m.get("event"), limits=limits, field=prefix + "event")
    else:
        name = PAGE_EVENTS[kind]
        extra = {k: m[k] for k in ("name", "category") if isinstance(m.get(k), str)}
        for key, text in extra.items():  # stored as properties: PostgreSQL cannot hold NUL
            values.check_storable(text, field=prefix + key)
        props = {**extra, **props}
    context = m.get("context") or {}
    if not isinstance(context, dict):
        raise values.bad("invalid_context", "context must be an object", prefix + "context")
    if values.depth(context) > limits.depth:
        raise values.bad(
            "too_deep", f"context is nested deeper than {limits.depth}", prefix + "context"
        )
    values.check_storable(context, field=prefix + "context")
    group = values.check_identity(
        context.get("groupId"), limits=limits, field=prefix + "context.groupId"
    )
    return CanonicalEvent(
        event=name,
        external_id=user,
        device_id=anon,
        parameters=props,
        timestamp=event_time(m, sent_at=sent_at, now_ms=now_ms, limits=limits, prefix=prefix),
        message_id=values.check_identity(
            m.get("messageId"), limits=limits, field=prefix + "messageId"
        ),
        group_id=group,
        context=context,
    )


def event_time(m: dict[str, Any], *, sent_at: Any, now_ms: int, limits: Limits, prefix: str) -> int:
    """Segment's skew correction: ``receivedAt - (sentAt - originalTimestamp)``; without
    ``sentAt`` the client's time as sent; without any time, when it was received."""
    name = "originalTimestamp" if m.get("originalTimestamp") is not None else "timestamp"
    client = m.get(name)
    if client is None:
        return now_ms
    client_ms = values.parse_time(client, field=prefix + name)
    sent = m.get("sentAt", sent_at)
    if sent is not None:
        field = prefix + "sentAt" if "sentAt" in m else "sentAt"
        client_ms += now_ms - values.parse_time(sent, field=field)
    if client_ms > now_ms + limits.future_ms:
        raise values.bad(
            "timestamp_in_future", "the timestamp is too far in the future", prefix + name
        )
    return client_ms


def _traits(m: dict[str, Any], *, limits: Limits, prefix: str) -> dict[str, Any]:
    traits = m.get("traits")
    if traits is None and isinstance(m.get("context"), dict):
        traits = m["context"].get("traits")  # analytics.js sends identify traits in context too
    checked = values.check_properties(traits, limits=limits, field=prefix + "traits")
    values.check_storable(checked, field=prefix + "traits")
    return checked


def _alias(m: dict[str, Any], user: str | None, *, limits: Limits, prefix: str) -> AliasOp:
    previous = values.check_identity(
        m.get("previousId"), limits=limits, field=prefix + "previousId"
    )
    if previous is None or user is None:
        raise values.bad(
            "missing_identity",
            "alias needs previousId and userId",
            prefix + ("previousId" if previous is None else "userId"),
        )
    return AliasOp(previous_id=previous, external_id=user)
