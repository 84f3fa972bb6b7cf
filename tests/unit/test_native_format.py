"""The native wire format (spec 3.2): field synonyms, identity, group and context rules, sizes,
batch shape, and the per-item errors that keep the refused item. Pure, no database."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackline.errors import InvalidInput, PayloadTooLarge
from trackline.ingest.formats import native
from trackline.ingest.model import CanonicalEvent, ItemError, Parsed
from trackline.settings import Limits

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = (datetime(2024, 1, 15, 12, 0, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
EVENT_BYTES = 32 * 1024  # spec 3.3: 32 KiB per event
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"  # beside the checkout

# Spec 3.2, written out independently of the code's table.
SPEC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "user_id", "userId"),
    "device_id": ("device_id", "anonymous_id", "anonymousId"),
    "event": ("event", "event_name", "type"),
    "parameters": ("parameters", "properties", "data"),
    "timestamp": ("timestamp",),
    "message_id": ("message_id", "messageId", "insert_id", "$insert_id"),
    "group_id": ("group_id",),
    "context": ("context",),
}


@dataclass(frozen=True)
class Case:
    """One row: an item, and either the canonical attribute it yields or its refusal."""

    id: str
    item: Any
    attr: str | None = None
    expected: Any = None
    code: str | None = None
    field: str | None = None


def ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


@pytest.fixture(scope="module")
def limits() -> Limits:
    return Limits()


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    return (datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC) - EPOCH) // timedelta(
        milliseconds=1
    )


def item(**fields: Any) -> dict[str, Any]:
    """A valid event (user ``u``, event ``e``) with ``fields`` added or replaced."""
    return {"user_id": "u", "event": "e", **fields}


def parse(item: Any, limits: Limits, prefix: str = "") -> CanonicalEvent:
    return native.parse_event(item, now_ms=NOW, limits=limits, prefix=prefix)


def refusal(item: Any, limits: Limits, prefix: str = "") -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse(item, limits, prefix)
    return info.value


def track(body: Any, limits: Limits, size: int | None = None) -> Parsed:
    size = len(orjson.dumps(body)) if size is None else size
    return native.parse_track(body, now_ms=NOW, limits=limits, size=size)


def batch(items: list[Any], limits: Limits) -> Parsed:
    body = {"events": items}
    return native.parse_batch(body, now_ms=NOW, limits=limits, size=len(orjson.dumps(body)))


def padded(size: int, **fields: Any) -> dict[str, Any]:
    """An event whose compact JSON is exactly ``size`` bytes."""
    event = {"user_id": "u1", "event": "big", **fields, "parameters": {"pad": ""}}
    event["parameters"]["pad"] = "x" * (size - len(orjson.dumps(event)))
    assert len(orjson.dumps(event)) == size
    return event


def the_error(parsed: Parsed) -> ItemError:
    assert parsed.events == []
    (error,) = parsed.errors
    return error


# --- synonyms -------------------------------------------------------------------------------


def test_the_synonym_table_is_the_spec_table() -> None:
    assert native.SYNONYMS == SPEC_SYNONYMS


def synonym_rows(meaning: str, value: Any, expected: Any) -> list[Case]:
    """One row per accepted name of ``meaning``, the others given in their canonical names."""
    rows = []
    for name in SPEC_SYNONYMS[meaning]:
        base = {k: v for k, v in item().items() if k not in SPEC_SYNONYMS[meaning]}
        rows.append(Case(f"{meaning}-{name}", {**base, name: value}, meaning, expected))
    return rows


JAN_15 = utc(2024, 1, 15, 10, 30)
SYNONYM_CASES = [
    *synonym_rows("external_id", "user_1", "user_1"),
    *synonym_rows("device_id", "dev_1", "dev_1"),
    *synonym_rows("event", "plan_upgraded", "plan_upgraded"),
    *synonym_rows("parameters", {"a": 1, "b": [1.5]}, {"a": 1, "b": [1.5]}),
    *synonym_rows("message_id", "m-1", "m-1"),
    *synonym_rows("timestamp", "2024-01-15T10:30:00Z", JAN_15),
    *synonym_rows("group_id", "acct_1", "acct_1"),
    *synonym_rows(
        "context", {"ip": "10.0.0.1", "locale": "ja-JP"}, {"ip": "10.0.0.1", "locale": "ja-JP"}
    ),
    Case("context.group_id", item(context={"group_id": "acct_2"}), "group_id", "acct_2"),
    Case("timestamp-default-now", item(), "timestamp", NOW),
    Case("context-default", item(), "context", {}),
    Case("parameters-default", item(), "parameters", {}),
    Case("device-default", item(), "device_id", None),
    Case("int-user-id", {"userId": 42, "event": "e"}, "external_id", "42"),
    Case("int-message-id", item(**{"$insert_id": 7}), "message_id", "7"),
]


@pytest.mark.parametrize("case", SYNONYM_CASES, ids=ids(SYNONYM_CASES))
def test_every_synonym_maps_to_the_canonical_field(case: Case, limits: Limits) -> None:
    assert case.attr is not None
    assert getattr(parse(case.item, limits), case.attr) == case.expected


def test_a_full_event_in_canonical_names(limits: Limits) -> None:
    sent = {
        "external_id": "user_1",
        "device_id": "dev_1",
        "event": "purchase_completed",
        "parameters": {"amount": 99.99, "qty": 2},
        "timestamp": 1705314600123,
        "message_id": "m-1",
        "group_id": "acct_1",
        "context": {"library": "js"},
    }
    assert parse(sent, limits) == CanonicalEvent(
        event="purchase_completed",
        external_id="user_1",
        device_id="dev_1",
        parameters={"amount": 99.99, "qty": 2},
        timestamp=1705314600123,
        message_id="m-1",
        group_id="acct_1",
        context={"library": "js"},
    )


CONFLICTS = [
    Case(f"{a}+{b}", {a: "x", b: "x"}, attr=meaning, expected={a, b})
    for meaning, names in SPEC_SYNONYMS.items()
    for a, b in itertools.combinations(names, 2)
]


@pytest.mark.parametrize("case", CONFLICTS, ids=ids(CONFLICTS))
def test_two_synonyms_for_one_field_conflict(case: Case, limits: Limits) -> None:
    base = {k: v for k, v in item().items() if k not in SPEC_SYNONYMS[str(case.attr)]}
    exc = refusal({**base, **case.item}, limits)
    assert (exc.code, exc.status) == ("conflicting_fields", 400)
    assert set((exc.field or "").split(",")) == case.expected


def test_two_synonyms_conflict_even_when_they_agree(limits: Limits) -> None:
    exc = refusal({"user_id": "u", "userId": "u", "event": "e"}, limits)
    assert exc.code == "conflicting_fields"


# --- refusals of one item -------------------------------------------------------------------

U = {"user_id": "u1"}
DAY_MS = 24 * 3600 * 1000
REFUSALS = [
    Case("unknown-field", item(name="x"), code="unknown_field", field="name"),
    Case("unknown-traits", item(traits={}), code="unknown_field", field="traits"),
    Case("unknown-case", {**U, "Event": "e"}, code="unknown_field", field="Event"),
    Case("no-identity", {"event": "e"}, code="missing_identity", field="external_id"),
    Case(
        "null-identities",
        {"userId": None, "anonymous_id": None, "event": "e"},
        code="missing_identity",
        field="external_id",
    ),
    Case("bool-user", {"userId": True, "event": "e"}, code="invalid_identity", field="userId"),
    Case("empty-device", {"anonymousId": ""}, code="invalid_identity", field="anonymousId"),
    Case("long-user", {"user_id": "u" * 256}, code="invalid_identity", field="user_id"),
    Case("bad-message-id", item(messageId=""), code="invalid_identity", field="messageId"),
    Case("no-event", U, code="missing_event_name", field="event"),
    Case("bad-event-synonym", {**U, "type": 5}, code="invalid_event_name", field="type"),
    Case(
        "reserved-event",
        {**U, "event_name": "@first_session"},
        code="reserved_event_name",
        field="event_name",
    ),
    Case("bad-properties", item(data=[1]), code="invalid_properties", field="data"),
    Case("mixed-array", item(properties={"a": [1, "a"]}), code="mixed_array", field="properties.a"),
    Case("seconds", item(timestamp=1705314600), code="invalid_timestamp", field="timestamp"),
    Case("future", item(timestamp=NOW + DAY_MS + 1), code="timestamp_in_future", field="timestamp"),
    Case("not-an-object", ["user_id", "u"], code="invalid_event", field=None),
    Case("context-string", item(context="web"), code="invalid_context", field="context"),
    Case("context-list", item(context=[{"ip": "x"}]), code="invalid_context", field="context"),
    Case("context-number", item(context=1), code="invalid_context", field="context"),
    Case(
        "group-differs",
        item(group_id="a", context={"group_id": "b"}),
        code="conflicting_fields",
        field="group_id,context.group_id",
    ),
    Case("bad-group", item(group_id=True), code="invalid_identity", field="group_id"),
    Case(
        "bad-context-group",
        item(context={"group_id": ""}),
        code="invalid_identity",
        field="context.group_id",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=ids(REFUSALS))
def test_refused_items_name_code_and_field(case: Case, limits: Limits) -> None:
    exc = refusal(case.item, limits)
    assert (exc.code, exc.field, exc.status) == (case.code, case.field, 400)
    assert exc.message


def test_in_a_batch_the_field_carries_the_item_index(limits: Limits) -> None:
    good = {**U, "event": "e"}
    parsed = batch(
        [good, good, good, {"event": "e"}, {**U, "event": "e", "data": {"a": [True]}}], limits
    )
    assert [(e.index, e.code, e.field) for e in parsed.errors] == [
        (3, "missing_identity", "events[3].external_id"),
        (4, "invalid_array", "events[4].data.a"),
    ]


def test_a_batch_item_that_is_not_an_object(limits: Limits) -> None:
    (error,) = batch(["nope"], limits).errors
    assert (error.index, error.code, error.field) == (0, "invalid_event", "events[0]")


PREFIX_BUGS = [
    Case("synonyms", {"user_id": "u", "userId": "u", "event": "e"}),
    Case("group", {**U, "event": "e", "group_id": "a", "context": {"group_id": "b"}}),
    Case("context-group", {**U, "event": "e", "context": {"group_id": ""}}),
]


@pytest.mark.parametrize("case", PREFIX_BUGS, ids=ids(PREFIX_BUGS))
def test_every_batch_field_path_starts_with_the_item(case: Case, limits: Limits) -> None:
    (error,) = batch([{**U, "event": "ok"}, case.item], limits).errors
    assert error.index == 1
    parts = (error.field or "").split(",")
    assert all(part.startswith("events[1].") for part in parts), error.field


# --- group and context ----------------------------------------------------------------------


GROUPS = [
    Case("top-only", {"group_id": "g1"}, expected="g1"),
    Case("context-only", {"context": {"group_id": "g2"}}, expected="g2"),
    Case("both-same", {"group_id": "g3", "context": {"group_id": "g3"}}, expected="g3"),
    Case("top-and-null-context", {"group_id": "g4", "context": {"group_id": None}}, expected="g4"),
    Case("context-int", {"context": {"group_id": 12}}, expected="12"),
    Case("neither", {"context": {"ip": "1.2.3.4"}}, expected=None),
]


@pytest.mark.parametrize("case", GROUPS, ids=ids(GROUPS))
def test_group_id_from_the_top_or_the_context(case: Case, limits: Limits) -> None:
    event = parse({**U, "event": "e", **case.item}, limits)
    assert event.group_id == case.expected
    assert event.context == case.item.get("context", {})


def test_context_depth_eight_is_accepted_nine_is_not(limits: Limits) -> None:
    ok: Any = "leaf"
    for _ in range(8):
        ok = {"k": ok}
    assert parse({**U, "event": "e", "context": ok}, limits).context == ok
    exc = refusal({**U, "event": "e", "context": {"k": ok}}, limits)
    assert (exc.code, exc.field) == ("too_deep", "context")


# --- sizes ----------------------------------------------------------------------------------


def test_a_track_of_exactly_the_limit_is_accepted(limits: Limits) -> None:
    assert limits.event_bytes == EVENT_BYTES
    parsed = track(padded(EVENT_BYTES), limits)
    assert parsed.errors == []
    assert [index for index, _ in parsed.events] == [0]


def test_a_track_one_byte_over_is_event_too_large(limits: Limits) -> None:
    sent = padded(EVENT_BYTES + 1, anonymousId="dev-9")
    error = the_error(track(sent, limits))
    assert (error.index, error.code, error.field) == (None, "event_too_large", None)
    assert orjson.loads(error.payload) == sent
    assert (error.external_id, error.device_id) == ("u1", "dev-9")


def test_track_size_is_measured_as_compact_json(limits: Limits) -> None:
    sent = padded(EVENT_BYTES - 100)
    raw = orjson.dumps(sent, option=orjson.OPT_INDENT_2) + b" " * 200
    assert len(raw) > EVENT_BYTES
    assert track(orjson.loads(raw), limits, size=len(raw)).errors == []


def test_batch_items_over_the_limit_are_refused_one_by_one(limits: Limits) -> None:
    small = {**U, "event": "e"}
    exact, over = padded(EVENT_BYTES), padded(EVENT_BYTES + 1, device_id="d-2")
    parsed = batch([small, over, exact, over], limits)
    assert [index for index, _ in parsed.events] == [0, 2]
    assert [(e.index, e.code, e.field) for e in parsed.errors] == [
        (1, "event_too_large", "events[1]"),
        (3, "event_too_large", "events[3]"),
    ]
    assert orjson.loads(parsed.errors[0].payload) == over
    assert (parsed.errors[0].external_id, parsed.errors[0].device_id) == ("u1", "d-2")


# --- batch shape ----------------------------------------------------------------------------

SHAPES = [
    Case("list", [{**U, "event": "e"}], code="invalid_batch", field="events"),
    Case("null", None, code="invalid_batch", field="events"),
    Case("string", "events", code="invalid_batch", field="events"),
    Case("no-events", {}, code="invalid_batch", field="events"),
    Case("events-object", {"events": {"0": {}}}, code="invalid_batch", field="events"),
    Case("events-null", {"events": None}, code="invalid_batch", field="events"),
    Case("extra-field", {"events": [], "batch_id": 1}, code="unknown_field", field="batch_id"),
]


@pytest.mark.parametrize("case", SHAPES, ids=ids(SHAPES))
def test_batch_shape_errors_refuse_the_whole_request(case: Case, limits: Limits) -> None:
    with pytest.raises(InvalidInput) as info:
        native.parse_batch(case.item, now_ms=NOW, limits=limits, size=100)
    assert (info.value.code, info.value.field, info.value.status) == (case.code, case.field, 400)


def test_an_empty_batch_is_fine(limits: Limits) -> None:
    parsed = batch([], limits)
    assert (parsed.events, parsed.errors) == ([], [])


def test_a_full_batch_is_accepted(limits: Limits) -> None:
    items = [{**U, "event": "e", "message_id": f"m{i}"} for i in range(limits.batch_events)]
    parsed = batch(items, limits)
    assert parsed.errors == []
    assert len(parsed.events) == limits.batch_events == 1000


def test_one_event_over_the_batch_limit_is_batch_too_large(limits: Limits) -> None:
    items = [{**U, "event": "e"}] * (limits.batch_events + 1)
    with pytest.raises(PayloadTooLarge) as info:
        batch(items, limits)
    assert (info.value.code, info.value.status, info.value.field) == (
        "batch_too_large",
        413,
        "events",
    )


def test_the_batch_limit_follows_the_settings() -> None:
    small = Limits(batch_events=3)
    assert len(batch([{**U, "event": "e"}] * 3, small).events) == 3
    with pytest.raises(PayloadTooLarge):
        batch([{**U, "event": "e"}] * 4, small)


# --- refused items keep what they were ------------------------------------------------------

KEPT = [
    Case(
        "bad-name",
        {"userId": 42, "event": "@bad"},
        code="reserved_event_name",
        expected=("42", None),
    ),
    Case(
        "empty-name",
        {"anonymousId": "dev-1", "event": ""},
        code="invalid_event_name",
        expected=(None, "dev-1"),
    ),
    Case(
        "both",
        {"user_id": "u", "device_id": "d", "event": 5},
        code="invalid_event_name",
        expected=("u", "d"),
    ),
    Case(
        "unknown",
        {"external_id": "u", "anonymous_id": "d", "foo": 1},
        code="unknown_field",
        expected=("u", "d"),
    ),
    Case(
        "bool-identity",
        {"user_id": True, "anonymous_id": "d"},
        code="invalid_identity",
        expected=(None, "d"),
    ),
    Case(
        "no-identity",
        {"event": "e", "properties": {"é": "ü"}},
        code="missing_identity",
        expected=(None, None),
    ),
    Case("not-an-object", [1, "two"], code="invalid_event", expected=(None, None)),
]


@pytest.mark.parametrize("case", KEPT, ids=ids(KEPT))
def test_a_refused_batch_item_keeps_its_json_and_identity(case: Case, limits: Limits) -> None:
    parsed = batch([{**U, "event": "ok"}, case.item], limits)
    assert [index for index, _ in parsed.events] == [0]
    (error,) = parsed.errors
    assert (error.index, error.code) == (1, case.code)
    assert orjson.loads(error.payload) == case.item
    assert (error.external_id, error.device_id) == case.expected
    assert error.public() == {
        "index": 1,
        "code": case.code,
        "message": error.message,
        "field": error.field,
    }


@pytest.mark.parametrize("case", KEPT, ids=ids(KEPT))
def test_a_refused_track_keeps_its_json_and_identity(case: Case, limits: Limits) -> None:
    error = the_error(track(case.item, limits))
    assert (error.index, error.code) == (None, case.code)
    assert orjson.loads(error.payload) == case.item
    assert (error.external_id, error.device_id) == case.expected


# --- the seeds' own examples parse verbatim -------------------------------------------------

SPEC_004 = [
    Case(
        "subscription-upgraded",
        """{
  "user_id": "user_456",
  "event": "subscription_upgraded",
  "properties": {
    "email": "AliceW@example.com"
  },
  "context": {
    "group_id": "account_789"
  },
  "timestamp": "2023-11-03T10:15:20.123Z"
}""",
        expected=CanonicalEvent(
            event="subscription_upgraded",
            external_id="user_456",
            device_id=None,
            parameters={"email": "AliceW@example.com"},
            timestamp=utc(2023, 11, 3, 10, 15, 20, 123),
            group_id="account_789",
            context={"group_id": "account_789"},
        ),
    ),
    Case(
        "feature-usage",
        """{
  "user_id": "user_789",
  "event": "feature_used",
  "properties": {
    "email": "BobS@example.com",
    "feature_name": "analytics_dashboard"
  },
  "context": {
    "group_id": "account_456"
  },
  "timestamp": "2023-11-04T14:45:30.987Z"
}
""",
        expected=CanonicalEvent(
            event="feature_used",
            external_id="user_789",
            device_id=None,
            parameters={"email": "BobS@example.com", "feature_name": "analytics_dashboard"},
            timestamp=utc(2023, 11, 4, 14, 45, 30, 987),
            group_id="account_456",
            context={"group_id": "account_456"},
        ),
    ),
    Case(
        "try-out",
        """{
  "user_id": "user_123",
  "event": "custom.event_example",
  "properties": {
    "email": "JoeD@example.com",
    "action": "clicked_button"
  },
  "context": {
    "group_id": "account_123"
  },
  "timestamp": "2023-11-02T00:30:08.276Z"
}""",
        expected=CanonicalEvent(
            event="custom.event_example",
            external_id="user_123",
            device_id=None,
            parameters={"email": "JoeD@example.com", "action": "clicked_button"},
            timestamp=utc(2023, 11, 2, 0, 30, 8, 276),
            group_id="account_123",
            context={"group_id": "account_123"},
        ),
    ),
]


@pytest.mark.parametrize("case", SPEC_004, ids=ids(SPEC_004))
def test_spec_004_samples_parse_verbatim(case: Case, limits: Limits) -> None:
    raw = case.item.encode()
    parsed = native.parse_track(orjson.loads(raw), now_ms=NOW, limits=limits, size=len(raw))
    assert parsed.errors == []
    assert parsed.events == [(0, case.expected)]


def test_the_004_samples_above_are_the_seed_file_samples(limits: Limits) -> None:
    """Guards the copies above against drift when the seed file is at hand."""
    seeds = sorted(SEEDS.glob("004_*.txt"))
    if not seeds:
        pytest.skip(f"no 004 seed under {SEEDS}")
    blocks = re.findall(r"```json\n(.*?)```", seeds[0].read_text(), flags=re.DOTALL)
    assert [orjson.loads(b) for b in blocks] == [orjson.loads(c.item) for c in SPEC_004]
    for block in blocks:
        assert track(orjson.loads(block), limits, size=len(block.encode())).errors == []


PURCHASE = {
    "order_id": "order_789",
    "amount": 99.99,
    "currency": "USD",
    "items": [
        {"sku": "PROD-001", "name": "Widget", "quantity": 2},
        {"sku": "PROD-002", "name": "Gadget", "quantity": 1},
    ],
}
FLAMEUP_TRACKS = [
    Case(
        "curl-track",
        """{
"external_id": "user_123",
"event": "purchase_completed",
"parameters": {
"order_id": "order_789",
"amount": 99.99,
"currency": "USD"
}
}""",
        expected={"order_id": "order_789", "amount": 99.99, "currency": "USD"},
    ),
    Case("page-viewed", {"page": "/pricing", "referrer": "/home"}),
    Case("purchase-with-items", PURCHASE),
    Case("feature-used", {"feature": "export_csv", "duration_seconds": 45}),
    Case("signed-up", {"method": "email", "referral_code": "FRIEND50"}),
    Case("plan-upgraded", {"from_plan": "free", "to_plan": "premium", "annual": True}),
    Case(
        "cart-updated",
        {"action": "add", "product_id": "prod_001", "quantity": 2, "cart_total": 99.98},
    ),
    Case(
        "search-performed", {"query": "integration guide", "results_count": 15, "clicked_result": 3}
    ),
    Case("nps-submitted", {"score": 9, "feedback": "Love the product!"}),
    Case("empty-parameters", {}),
]


@pytest.mark.parametrize("case", FLAMEUP_TRACKS, ids=ids(FLAMEUP_TRACKS))
def test_flameup_track_examples_parse(case: Case, limits: Limits) -> None:
    if isinstance(case.item, str):
        body, params = orjson.loads(case.item), case.expected
    else:  # the SDK's trackEvent(externalId, eventName, parameters) body
        body = {"external_id": "user_123", "event": "x_done", "parameters": case.item}
        params = case.item
    parsed = track(body, limits)
    assert parsed.errors == []
    ((_, event),) = parsed.events
    assert (event.external_id, event.timestamp) == ("user_123", NOW)
    assert orjson.dumps(event.parameters) == orjson.dumps(params)  # ints stay ints


FLAMEUP_BATCH = b"""{
"events": [
{"external_id": "user_123", "event": "page_viewed", "parameters": {"page": "/home"}},
{"external_id": "user_123", "event": "button_clicked", "parameters": {"button": "signup"}},
{"external_id": "user_456", "event": "purchase_completed", "parameters": {"amount": 99.99}}
]
}"""


def test_flameup_batch_example_parses(limits: Limits) -> None:
    parsed = native.parse_batch(
        orjson.loads(FLAMEUP_BATCH), now_ms=NOW, limits=limits, size=len(FLAMEUP_BATCH)
    )
    assert parsed.errors == []
    assert [(i, e.external_id, e.event, e.parameters) for i, e in parsed.events] == [
        (0, "user_123", "page_viewed", {"page": "/home"}),
        (1, "user_123", "button_clicked", {"button": "signup"}),
        (2, "user_456", "purchase_completed", {"amount": 99.99}),
    ]


# --- property: any choice of synonyms gives the same event ----------------------------------

CANONICAL_VALUES: dict[str, Any] = {
    "external_id": "user_1",
    "device_id": "dev_1",
    "event": "purchase_completed",
    "parameters": {"amount": 10, "tags": ["a"]},
    "message_id": "m-1",
}


@settings(max_examples=100, deadline=None)
@given(
    names=st.fixed_dictionaries({m: st.sampled_from(SPEC_SYNONYMS[m]) for m in CANONICAL_VALUES})
)
def test_any_mix_of_synonyms_gives_the_same_event(names: dict[str, str]) -> None:
    sent = {names[meaning]: value for meaning, value in CANONICAL_VALUES.items()}
    event = native.parse_event(sent, now_ms=NOW, limits=Limits())
    assert event == CanonicalEvent(**CANONICAL_VALUES, timestamp=NOW)
