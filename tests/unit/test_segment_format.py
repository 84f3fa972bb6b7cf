"""The Segment HTTP Tracking API format (spec 7): each message type's mapping, skew correction,
batch context, identity rules, field paths with ``batch[i]``, leniency about unknown fields and
the batch limits. Pure, no database: the parsers get an explicit ``now_ms``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from trackline.clock import to_iso
from trackline.errors import InvalidInput, PayloadTooLarge
from trackline.ingest.formats import segment
from trackline.ingest.model import AliasOp, CanonicalEvent, GroupOp, IdentifyOp, ItemError, Parsed
from trackline.settings import Limits

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = (datetime(2024, 1, 15, 12, 0, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EVENT_BYTES = 32 * 1024


@pytest.fixture(scope="module")
def limits() -> Limits:
    return Limits()


def one(kind: str, message: Any, limits: Limits) -> Parsed:
    """The single-message endpoint ``/v1/<kind>`` parsing ``message``."""
    size = len(orjson.dumps(message))
    return segment.parse_one(kind)(message, now_ms=NOW, limits=limits, size=size)


def batch(items: list[Any], limits: Limits, **top: Any) -> Parsed:
    """``/v1/batch`` with ``items`` and any top-level fields (``context``, ``sentAt``...)."""
    body = {"batch": items, **top}
    return segment.parse_batch(body, now_ms=NOW, limits=limits, size=len(orjson.dumps(body)))


def only(parsed: Parsed) -> Any:
    """The one event or operation a request produced, with no errors."""
    assert parsed.errors == []
    produced = [e for _, e in parsed.events] + [op for _, op in parsed.ops]
    assert len(produced) == 1, produced
    return produced[0]


def only_error(parsed: Parsed) -> ItemError:
    assert parsed.events == [] and parsed.ops == []
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0]


def event(name: str, **fields: Any) -> CanonicalEvent:
    """The canonical event expected, received at ``NOW`` unless told otherwise."""
    defaults: dict[str, Any] = {
        "external_id": None,
        "device_id": None,
        "parameters": {},
        "timestamp": NOW,
    }
    return CanonicalEvent(event=name, **(defaults | fields))


# --- each message type -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One row: a message of type ``kind`` (without ``type``) and what it becomes."""

    id: str
    kind: str
    message: dict[str, Any]
    expected: Any


MAPPINGS = [
    Case(
        "track_user",
        "track",
        {"userId": "u1", "event": "Order Completed", "properties": {"total": 30, "sku": "a"}},
        event("Order Completed", external_id="u1", parameters={"total": 30, "sku": "a"}),
    ),
    Case(
        "track_anonymous_with_message_id",
        "track",
        {"anonymousId": "anon-1", "event": "Clicked", "messageId": "msg-1"},
        event("Clicked", device_id="anon-1", message_id="msg-1"),
    ),
    Case(
        "track_both_ids_integer_user",
        "track",
        {"userId": 42, "anonymousId": "anon-1", "event": "Clicked"},
        event("Clicked", external_id="42", device_id="anon-1"),
    ),
    Case(
        "track_context_kept_group_from_context",
        "track",
        {"userId": "u1", "event": "e", "context": {"groupId": "g1", "ip": "1.2.3.4"}},
        event("e", external_id="u1", group_id="g1", context={"groupId": "g1", "ip": "1.2.3.4"}),
    ),
    Case(
        "page_name_category_and_properties",
        "page",
        {"anonymousId": "a1", "name": "Pricing", "category": "Docs", "properties": {"path": "/p"}},
        event(
            "page_viewed",
            device_id="a1",
            parameters={"name": "Pricing", "category": "Docs", "path": "/p"},
        ),
    ),
    Case(
        "page_without_name",
        "page",
        {"userId": "u1", "properties": {"url": "https://x.test/"}},
        event("page_viewed", external_id="u1", parameters={"url": "https://x.test/"}),
    ),
    Case(
        "screen_name",
        "screen",
        {"userId": "u1", "name": "Home", "properties": {"variation": "blue"}},
        event("screen_viewed", external_id="u1", parameters={"name": "Home", "variation": "blue"}),
    ),
    Case(
        "identify_traits_null_kept_for_delete",
        "identify",
        {"userId": "u1", "anonymousId": "a1", "traits": {"email": "a@x.test", "plan": None}},
        IdentifyOp(
            external_id="u1", device_id="a1", attributes={"email": "a@x.test", "plan": None}
        ),
    ),
    Case(
        "identify_traits_from_context_like_analytics_js",
        "identify",
        {"userId": "u1", "context": {"traits": {"name": "Ada"}}},
        IdentifyOp(external_id="u1", device_id=None, attributes={"name": "Ada"}),
    ),
    Case(
        "identify_without_traits",
        "identify",
        {"anonymousId": "a1"},
        IdentifyOp(external_id=None, device_id="a1", attributes={}),
    ),
    Case(
        "group_with_traits",
        "group",
        {"userId": "u1", "groupId": "acme-inc", "traits": {"name": "Acme", "employees": 12}},
        GroupOp(
            external_id="u1",
            device_id=None,
            group_id="acme-inc",
            traits={"name": "Acme", "employees": 12},
        ),
    ),
    Case(
        "group_anonymous_integer_group",
        "group",
        {"anonymousId": "a1", "groupId": 7},
        GroupOp(external_id=None, device_id="a1", group_id="7", traits={}),
    ),
    Case(
        "alias",
        "alias",
        {"previousId": "anon-1", "userId": "u1"},
        AliasOp(previous_id="anon-1", external_id="u1"),
    ),
]


@pytest.mark.parametrize("case", MAPPINGS, ids=[c.id for c in MAPPINGS])
def test_single_endpoint_maps_each_type(case: Case, limits: Limits) -> None:
    assert only(one(case.kind, case.message, limits)) == case.expected


@pytest.mark.parametrize("case", MAPPINGS, ids=[c.id for c in MAPPINGS])
def test_batch_item_maps_each_type(case: Case, limits: Limits) -> None:
    assert only(batch([{**case.message, "type": case.kind}], limits)) == case.expected


def test_single_endpoint_type_comes_from_the_path(limits: Limits) -> None:
    message = {"type": "identify", "userId": "u1", "event": "e"}
    assert only(one("track", message, limits)) == event("e", external_id="u1")


def test_batch_keeps_positions_of_events_and_operations(limits: Limits) -> None:
    items = [
        {"type": "identify", "userId": "u1"},
        {"type": "track", "userId": "u1", "event": "e"},
        {"type": "track", "userId": "u1"},  # refused: no event name
        {"type": "page", "userId": "u1"},
        {"type": "alias", "previousId": "a", "userId": "u1"},
    ]
    parsed = batch(items, limits)
    assert [p for p, _ in parsed.events] == [1, 3]
    assert [p for p, _ in parsed.ops] == [0, 4]
    assert [e.index for e in parsed.errors] == [2]
    assert parsed.raws[4] == items[4]
    assert parsed.prefix == "batch[{index}]."


# --- time: Segment's skew correction -----------------------------------------------------------


@dataclass(frozen=True)
class TimeCase:
    """One row: a message's time fields, batch-level fields, and the timestamp stored."""

    id: str
    message: dict[str, Any]
    expected: int
    top: dict[str, Any] | None = None


TIMES = [
    TimeCase("no_times_is_now", {}, NOW),
    TimeCase("sent_at_alone_is_now", {"sentAt": to_iso(NOW - HOUR)}, NOW),
    TimeCase("timestamp_as_sent", {"timestamp": to_iso(NOW - MINUTE)}, NOW - MINUTE),
    TimeCase("unix_ms_timestamp", {"timestamp": NOW - 1234}, NOW - 1234),
    TimeCase(
        "client_clock_one_hour_behind",
        {"originalTimestamp": to_iso(NOW - HOUR - 5 * MINUTE), "sentAt": to_iso(NOW - HOUR)},
        NOW - 5 * MINUTE,
    ),
    TimeCase(
        "client_clock_one_hour_ahead",
        {"originalTimestamp": to_iso(NOW + HOUR - 5 * MINUTE), "sentAt": to_iso(NOW + HOUR)},
        NOW - 5 * MINUTE,
    ),
    TimeCase(
        "exact_milliseconds_with_offsets",
        {"timestamp": "2024-01-15T10:59:54.321+00:00", "sentAt": "2024-01-15T11:59:59.999+01:00"},
        NOW - 5678,
    ),
    TimeCase(
        "original_timestamp_preferred_over_timestamp",
        {
            "originalTimestamp": to_iso(NOW - HOUR - 10 * SECOND),
            "timestamp": to_iso(NOW - 3 * DAY),
            "sentAt": to_iso(NOW - HOUR),
        },
        NOW - 10 * SECOND,
    ),
    TimeCase(
        "original_timestamp_preferred_without_sent_at",
        {"originalTimestamp": to_iso(NOW - 2 * MINUTE), "timestamp": to_iso(NOW - DAY)},
        NOW - 2 * MINUTE,
    ),
    TimeCase(
        "sent_at_at_batch_level",
        {"timestamp": to_iso(NOW - 2 * HOUR - 7 * SECOND)},
        NOW - 7 * SECOND,
        top={"sentAt": to_iso(NOW - 2 * HOUR)},
    ),
    TimeCase(
        "message_sent_at_wins_over_batch_level",
        {"timestamp": to_iso(NOW - 3 * SECOND), "sentAt": to_iso(NOW)},
        NOW - 3 * SECOND,
        top={"sentAt": to_iso(NOW - 5 * DAY)},
    ),
    TimeCase(
        "skew_rescues_a_clock_days_ahead",
        {"originalTimestamp": to_iso(NOW + 3 * DAY - SECOND), "sentAt": to_iso(NOW + 3 * DAY)},
        NOW - SECOND,
    ),
]


@pytest.mark.parametrize("case", TIMES, ids=[c.id for c in TIMES])
def test_event_time(case: TimeCase, limits: Limits) -> None:
    message = {"type": "track", "userId": "u1", "event": "e", **case.message}
    assert only(batch([message], limits, **(case.top or {}))).timestamp == case.expected


@pytest.mark.parametrize("kind", ["track", "page", "screen"])
def test_single_endpoint_corrects_skew(kind: str, limits: Limits) -> None:
    times = {"originalTimestamp": to_iso(NOW - HOUR - 90 * SECOND), "sentAt": to_iso(NOW - HOUR)}
    message = {"userId": "u1", "event": "e", **times}
    assert only(one(kind, message, limits)).timestamp == NOW - 90 * SECOND


# --- context -----------------------------------------------------------------------------------


def test_batch_context_merged_into_each_item_item_keys_win(limits: Limits) -> None:
    shared = {"library": {"name": "analytics-python"}, "locale": "en-US"}
    items = [
        {"type": "track", "userId": "u1", "event": "a"},
        {
            "type": "track",
            "userId": "u1",
            "event": "b",
            "context": {"locale": "fr-FR", "ip": "::1"},
        },
    ]
    parsed = batch(items, limits, context=shared)
    assert [e.context for _, e in parsed.events] == [
        shared,
        {"library": {"name": "analytics-python"}, "locale": "fr-FR", "ip": "::1"},
    ]


def test_batch_context_group_id_applies_to_items(limits: Limits) -> None:
    parsed = batch([{"type": "page", "userId": "u1"}], limits, context={"groupId": "g9"})
    assert only(parsed).group_id == "g9"


def test_batch_context_with_item_context_not_an_object(limits: Limits) -> None:
    item = {"type": "track", "userId": "u1", "event": "e", "context": "web"}
    error = only_error(batch([item], limits, context={"locale": "en"}))
    assert (error.index, error.code, error.field) == (0, "invalid_context", "batch[0].context")


# --- refusals and their field paths ------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One row: a message (with its ``type``) and the code and field (within the message)."""

    id: str
    message: Any
    code: str
    field: str | None


REFUSALS = [
    Refusal("missing_identity", {"type": "track", "event": "e"}, "missing_identity", "userId"),
    Refusal(
        "identify_missing_identity",
        {"type": "identify", "traits": {"a": 1}},
        "missing_identity",
        "userId",
    ),
    Refusal(
        "empty_user_id", {"type": "track", "userId": "", "event": "e"}, "invalid_identity", "userId"
    ),
    Refusal(
        "anonymous_id_not_a_string",
        {"type": "page", "anonymousId": ["a"]},
        "invalid_identity",
        "anonymousId",
    ),
    Refusal(
        "alias_missing_previous_id",
        {"type": "alias", "userId": "u1"},
        "missing_identity",
        "previousId",
    ),
    Refusal(
        "alias_missing_user_id",
        {"type": "alias", "previousId": "a1", "anonymousId": "a1"},
        "missing_identity",
        "userId",
    ),
    Refusal(
        "group_without_group_id", {"type": "group", "userId": "u1"}, "missing_group_id", "groupId"
    ),
    Refusal(
        "group_id_empty",
        {"type": "group", "userId": "u1", "groupId": ""},
        "invalid_identity",
        "groupId",
    ),
    Refusal(
        "track_missing_event", {"type": "track", "userId": "u1"}, "missing_event_name", "event"
    ),
    Refusal(
        "track_reserved_event",
        {"type": "track", "userId": "u1", "event": "@first_session"},
        "reserved_event_name",
        "event",
    ),
    Refusal(
        "mixed_array_property",
        {"type": "track", "userId": "u1", "event": "e", "properties": {"tags": ["a", 1]}},
        "mixed_array",
        "properties.tags",
    ),
    Refusal(
        "page_properties_invalid_array",
        {"type": "page", "userId": "u1", "properties": {"flags": [True, False]}},
        "invalid_array",
        "properties.flags",
    ),
    Refusal(
        "properties_not_an_object",
        {"type": "screen", "userId": "u1", "properties": [1, 2]},
        "invalid_properties",
        "properties",
    ),
    Refusal(
        "identify_traits_mixed_array",
        {"type": "identify", "userId": "u1", "traits": {"tags": ["a", 1]}},
        "mixed_array",
        "traits.tags",
    ),
    Refusal(
        "group_traits_not_an_object",
        {"type": "group", "userId": "u1", "groupId": "g", "traits": "big"},
        "invalid_properties",
        "traits",
    ),
    Refusal(
        "context_not_an_object",
        {"type": "track", "userId": "u1", "event": "e", "context": "web"},
        "invalid_context",
        "context",
    ),
    Refusal(
        "invalid_original_timestamp",
        {"type": "track", "userId": "u1", "event": "e", "originalTimestamp": "yesterday"},
        "invalid_timestamp",
        "originalTimestamp",
    ),
    Refusal(
        "timestamp_in_seconds",
        {"type": "track", "userId": "u1", "event": "e", "timestamp": NOW // 1000},
        "invalid_timestamp",
        "timestamp",
    ),
    Refusal(
        "invalid_message_sent_at",
        {"type": "track", "userId": "u1", "event": "e", "timestamp": NOW, "sentAt": "soon"},
        "invalid_timestamp",
        "sentAt",
    ),
    Refusal(
        "timestamp_in_future",
        {"type": "track", "userId": "u1", "event": "e", "timestamp": NOW + 2 * DAY},
        "timestamp_in_future",
        "timestamp",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_batch_refusal_names_the_field_under_batch(case: Refusal, limits: Limits) -> None:
    good = {"type": "track", "userId": "u1", "event": "ok"}
    parsed = batch([good, good, case.message], limits)
    assert [p for p, _ in parsed.events] == [0, 1]
    [error] = parsed.errors
    assert (error.index, error.code, error.field) == (2, case.code, f"batch[2].{case.field}")
    assert orjson.loads(error.payload) == case.message


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_single_refusal_has_no_index_and_a_bare_field(case: Refusal, limits: Limits) -> None:
    message = {k: v for k, v in case.message.items() if k != "type"}
    error = only_error(one(case.message["type"], message, limits))
    assert (error.index, error.code, error.field) == (None, case.code, case.field)


@pytest.mark.parametrize(
    ("item", "code", "field"),
    [
        ({"type": "bogus", "userId": "u1"}, "invalid_type", "batch[0].type"),
        ({"userId": "u1", "event": "e"}, "invalid_type", "batch[0].type"),
        ({"type": "Track", "userId": "u1", "event": "e"}, "invalid_type", "batch[0].type"),
        ("track", "invalid_event", "batch[0]"),
        (None, "invalid_event", "batch[0]"),
    ],
    ids=["unknown", "missing", "case_sensitive", "string_item", "null_item"],
)
def test_batch_item_type(item: Any, code: str, field: str, limits: Limits) -> None:
    error = only_error(batch([item], limits))
    assert (error.index, error.code, error.field) == (0, code, field)


def test_invalid_batch_level_sent_at_names_the_top_field(limits: Limits) -> None:
    item = {"type": "track", "userId": "u1", "event": "e", "timestamp": NOW}
    error = only_error(batch([item], limits, sentAt="never"))
    assert (error.code, error.field) == ("invalid_timestamp", "sentAt")


def test_sent_at_ignored_for_a_message_without_time(limits: Limits) -> None:
    item = {"type": "track", "userId": "u1", "event": "e"}
    assert only(batch([item], limits, sentAt="never")).timestamp == NOW


def test_nul_character_in_properties_refused_like_native(limits: Limits) -> None:
    message = {"userId": "u1", "event": "e", "properties": {"note": "a\x00b"}}
    error = only_error(one("track", message, limits))
    assert (error.code, error.field) == ("invalid_character", "properties.note")


@pytest.mark.parametrize("kind", ["page", "screen"])
@pytest.mark.parametrize("field", ["name", "category"])
def test_nul_character_in_a_page_name_refused_like_properties(
    limits: Limits, kind: str, field: str
) -> None:
    """``name`` and ``category`` become properties: they get the same NUL check."""
    error = only_error(one(kind, {"userId": "u1", field: "a\x00b"}, limits))
    assert (error.code, error.field) == ("invalid_character", field)


# --- leniency: unknown fields are ignored -------------------------------------------------------


def test_unknown_fields_are_ignored(limits: Limits) -> None:
    message = {
        "type": "track",
        "userId": "u1",
        "event": "e",
        "integrations": {"All": True},
        "channel": "server",
        "_metadata": {"bundled": []},
        "version": 2,
        "receivedAt": "not even a time",
        "somethingNew": {"x": 1},
    }
    assert only(batch([message], limits, writeKey="k", metadata={"x": 1})) == event(
        "e", external_id="u1"
    )


def test_page_name_and_category_only_when_strings(limits: Limits) -> None:
    message = {"userId": "u1", "name": 5, "category": None, "properties": {"path": "/"}}
    assert only(one("page", message, limits)).parameters == {"path": "/"}


# --- whole-request problems and sizes ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [[], {"events": []}, {"batch": {"type": "track"}}, "batch", None],
    ids=["list", "no_batch", "batch_not_list", "string", "null"],
)
def test_invalid_batch_body(body: Any, limits: Limits) -> None:
    with pytest.raises(InvalidInput) as info:
        segment.parse_batch(body, now_ms=NOW, limits=limits, size=10)
    assert (info.value.code, info.value.field) == ("invalid_batch", "batch")


@pytest.mark.parametrize("body", [[], "x", None, 3], ids=["list", "string", "null", "number"])
def test_single_body_must_be_an_object(body: Any, limits: Limits) -> None:
    with pytest.raises(InvalidInput) as info:
        segment.parse_one("track")(body, now_ms=NOW, limits=limits, size=10)
    assert info.value.code == "invalid_request"


def test_batch_of_the_default_limit_is_accepted(limits: Limits) -> None:
    items = [{"type": "track", "userId": "u", "event": "e"}] * 1000
    assert len(batch(items, limits).events) == 1000


@pytest.mark.parametrize("size", [1001, 5000])
def test_batch_too_large(size: int, limits: Limits) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        batch([{"type": "track", "userId": "u", "event": "e"}] * size, limits)
    assert (info.value.code, info.value.field, info.value.status) == (
        "batch_too_large",
        "batch",
        413,
    )


def test_batch_limit_follows_settings() -> None:
    small = Limits(batch_events=2)
    assert len(batch([{"type": "identify", "userId": "u"}] * 2, small).ops) == 2
    with pytest.raises(PayloadTooLarge):
        batch([{"type": "identify", "userId": "u"}] * 3, small)


def big_track(extra_bytes: int) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "e", "properties": {"b": "x" * extra_bytes}}


def test_oversized_item_refused_others_kept(limits: Limits) -> None:
    small = {"type": "track", "userId": "u1", "event": "e"}
    parsed = batch([small, big_track(EVENT_BYTES), small], limits)
    assert [p for p, _ in parsed.events] == [0, 2]
    [error] = parsed.errors
    assert (error.index, error.code, error.field) == (1, "event_too_large", "batch[1]")


def test_item_at_the_size_limit_is_accepted(limits: Limits) -> None:
    probe = big_track(0)
    exact = big_track(EVENT_BYTES - len(orjson.dumps(probe)))
    assert len(orjson.dumps(exact)) == EVENT_BYTES
    assert len(batch([exact], limits).events) == 1
    over = big_track(EVENT_BYTES - len(orjson.dumps(probe)) + 1)
    assert only_error(batch([over], limits)).code == "event_too_large"


def test_oversized_single_message_refused(limits: Limits) -> None:
    message = big_track(EVENT_BYTES)
    with pytest.raises(InvalidInput) as info:
        one("track", message, limits)
    assert info.value.code == "event_too_large"


def test_refused_item_keeps_raw_payload_and_identities(limits: Limits) -> None:
    item = {"type": "track", "userId": "u7", "anonymousId": "a7", "properties": {"k": 1}}
    error = only_error(batch([item], limits))
    assert orjson.loads(error.payload) == item
    assert (error.external_id, error.device_id) == ("u7", "a7")
