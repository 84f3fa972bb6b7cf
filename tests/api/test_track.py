"""``POST /api/v1/track`` through the ASGI app, on both databases: the answer, the seeds'
examples posted verbatim, how each field reads back, every item error, dedup, request-level
problems (JSON, size, gzip) and the server-recorded ``@first_session`` event."""

from __future__ import annotations

import gzip
import json
import re
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.settings import Limits, Settings

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
EVENT_ID = re.compile(r"^evt_[0-9a-f]{32}$")
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
JSON_HEADERS = {"Content-Type": "application/json"}

# Flameup (seed 003), the body of the curl example, exactly as the document shows it.
FLAMEUP_TRACK_CURL = """{
"external_id": "user_123",
"event": "purchase_completed",
"parameters": {
"order_id": "order_789",
"amount": 99.99,
"currency": "USD"
}
}"""

# Custom events spec (seed 004), its three JSON samples exactly as the document shows them.
SPEC_004_SUBSCRIPTION = """{
  "user_id": "user_456",
  "event": "subscription_upgraded",
  "properties": {
    "email": "AliceW@example.com"
  },
  "context": {
    "group_id": "account_789"
  },
  "timestamp": "2023-11-03T10:15:20.123Z"
}"""
SPEC_004_FEATURE = """{
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
}"""
SPEC_004_TRY_OUT = """{
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
}"""


# --- helpers -------------------------------------------------------------------------------


@contextmanager
def limited_client(database_url: str, **limits: int) -> Iterator[TestClient]:
    """A client whose server has smaller limits than the defaults."""
    settings = Settings(database_url=database_url, key_cache_s=0, limits=Limits(**limits))
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


def track(client: TestClient, tenant: Tenant, body: Any) -> str:
    """Post one event that must be accepted; its event id."""
    response = client.post("/api/v1/track", headers=tenant.write, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


def recent(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def person_of(client: TestClient, tenant: Tenant, external_id: str) -> str:
    response = client.get(
        "/api/v1/people", headers=tenant.read, params={"external_id": external_id}
    )
    (person,) = response.json()["people"]
    return str(person["id"])


def timeline(client: TestClient, tenant: Tenant, person_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/people/{person_id}/events", headers=tenant.read)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def only_event(client: TestClient, tenant: Tenant, external_id: str) -> dict[str, Any]:
    """The one event of ``external_id``, checked to read the same in both read paths."""
    (from_recent,) = recent(client, tenant, user_id=external_id)
    (from_timeline,) = timeline(client, tenant, person_of(client, tenant, external_id))
    assert from_recent == from_timeline
    return from_recent


def same_json(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON type at every level (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def assert_error(response: Any, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() == {"success", "error"}
    assert body["success"] is False
    assert body["error"].keys() == {"code", "message", "field"}
    assert (body["error"]["code"], body["error"]["field"]) == (code, field)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def gzip_stream(chunk: bytes, times: int) -> bytes:
    """``chunk * times`` gzip-compressed without holding the uncompressed whole in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(chunk) for _ in range(times)]
    return b"".join(parts) + packer.flush()


# --- the answer ----------------------------------------------------------------------------


def test_success_shape(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/track", headers=tenant.write, json={"external_id": "u1", "event": "signed_up"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {"success", "event_id"}
    assert body["success"] is True
    assert EVENT_ID.match(body["event_id"])


def test_event_ids_sort_in_time_order(client: TestClient, tenant: Tenant) -> None:
    ids = [track(client, tenant, {"external_id": "u1", "event": f"step_{n}"}) for n in range(8)]
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids
    stored = [e["id"] for e in recent(client, tenant, user_id="u1")]
    assert stored == ids[::-1]


# --- the seeds' examples, verbatim -----------------------------------------------------------


def test_examples_are_the_seeds_text() -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"the seed documents are not at {SEEDS}")
    (flameup,) = SEEDS.glob("003_*.txt")
    assert FLAMEUP_TRACK_CURL in flameup.read_text()
    (spec,) = SEEDS.glob("004_*.txt")
    blocks = re.findall(r"```json\n(.*?)```", spec.read_text(), flags=re.S)
    assert [b.strip() for b in blocks] == [
        SPEC_004_SUBSCRIPTION,
        SPEC_004_FEATURE,
        SPEC_004_TRY_OUT,
    ]


def test_flameup_curl_example(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/track", headers={**tenant.write, **JSON_HEADERS}, content=FLAMEUP_TRACK_CURL
    )
    assert response.status_code == 200, response.text
    event = only_event(client, tenant, "user_123")
    assert event["id"] == response.json()["event_id"]
    assert event["workspace_id"] == tenant.id
    assert event["person_id"] == person_of(client, tenant, "user_123")
    assert (event["external_id"], event["device_id"]) == ("user_123", None)
    assert event["event"] == "purchase_completed"
    assert same_json(
        event["parameters"], {"order_id": "order_789", "amount": 99.99, "currency": "USD"}
    )
    assert (event["group_id"], event["context"]) == (None, {})
    assert ISO_MS.match(event["timestamp"]) and ISO_MS.match(event["created_at"])


@dataclass(frozen=True)
class Sample:
    name: str
    body: str
    user: str
    event: str
    parameters: dict[str, Any]
    group_id: str
    timestamp: str


SAMPLES = [
    Sample(
        "subscription_upgraded",
        SPEC_004_SUBSCRIPTION,
        "user_456",
        "subscription_upgraded",
        {"email": "AliceW@example.com"},
        "account_789",
        "2023-11-03T10:15:20.123Z",
    ),
    Sample(
        "feature_used",
        SPEC_004_FEATURE,
        "user_789",
        "feature_used",
        {"email": "BobS@example.com", "feature_name": "analytics_dashboard"},
        "account_456",
        "2023-11-04T14:45:30.987Z",
    ),
    Sample(
        "try_out",
        SPEC_004_TRY_OUT,
        "user_123",
        "custom.event_example",
        {"email": "JoeD@example.com", "action": "clicked_button"},
        "account_123",
        "2023-11-02T00:30:08.276Z",
    ),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_spec_004_samples(client: TestClient, tenant: Tenant, sample: Sample) -> None:
    response = client.post(
        "/api/v1/track", headers={**tenant.write, **JSON_HEADERS}, content=sample.body
    )
    assert response.status_code == 200, response.text
    event = only_event(client, tenant, sample.user)
    assert event["id"] == response.json()["event_id"]
    assert (event["external_id"], event["device_id"]) == (sample.user, None)
    assert event["event"] == sample.event
    assert event["parameters"] == sample.parameters
    assert event["group_id"] == sample.group_id
    assert event["context"] == {"group_id": sample.group_id}
    assert event["timestamp"] == sample.timestamp
    assert ISO_MS.match(event["created_at"])


# --- how values read back ---------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    name: str
    sent: Any
    stored: str


STAMPS = [
    Stamp("iso_ms_z", "2023-11-03T10:15:20.123Z", "2023-11-03T10:15:20.123Z"),
    Stamp("iso_offset", "2024-04-19T14:23:56+09:00", "2024-04-19T05:23:56.000Z"),
    Stamp("iso_negative_offset", "2024-01-15T05:30:00-05:00", "2024-01-15T10:30:00.000Z"),
    Stamp("iso_seconds_z", "2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000Z"),
    Stamp("iso_no_offset_is_utc", "2024-01-15T10:30:00", "2024-01-15T10:30:00.000Z"),
    Stamp("iso_microseconds", "2024-01-15T10:30:00.123456Z", "2024-01-15T10:30:00.123Z"),
    # float seconds * 1000 would make this one ...313Z: the conversion must be exact.
    Stamp("iso_ms_2004", "2004-09-22T23:42:42.314Z", "2004-09-22T23:42:42.314Z"),
    Stamp("unix_ms", 1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
    Stamp("unix_ms_float", 1_700_000_000_123.0, "2023-11-14T22:13:20.123Z"),
]


@pytest.mark.parametrize("stamp", STAMPS, ids=lambda s: s.name)
def test_timestamp_normalised(client: TestClient, tenant: Tenant, stamp: Stamp) -> None:
    track(client, tenant, {"external_id": "u1", "event": "x", "timestamp": stamp.sent})
    assert only_event(client, tenant, "u1")["timestamp"] == stamp.stored


@dataclass(frozen=True)
class Value:
    name: str
    value: Any


VALUES = [
    Value("string", "hello"),
    Value("empty_string", ""),
    Value("unicode_string", "héllo ✓ 日本語 🚀"),
    Value("iso_string_stays_string", "2024-04-19T14:23:56+09:00"),
    Value("int", 42),
    Value("zero", 0),
    Value("negative_int", -7),
    Value("big_int", 2**53 + 1),
    Value("float", 99.99),
    Value("float_integral", 1.0),
    Value("small_float", 1.5e-7),
    Value("negative_float", -0.5),
    Value("true", True),
    Value("false", False),
    Value("null", None),
    Value("array_of_strings", ["product_a", "product_b"]),
    Value("array_of_ints", [1, 2, 3]),
    Value("array_of_numbers", [1, 2.5, -3]),
    Value("empty_array", []),
    Value("object", {"sku": "PROD-001", "n": 2, "ok": True, "none": None, "f": 0.25}),
    Value("nested_object", {"a": {"b": {"c": [1, 2], "d": "x"}}}),
    Value(
        "array_of_objects",
        [
            {"sku": "PROD-001", "name": "Widget", "quantity": 2},
            {"sku": "PROD-002", "name": "Gadget", "quantity": 1},
        ],
    ),
]


@pytest.mark.parametrize("case", VALUES, ids=lambda v: v.name)
def test_value_keeps_its_json_type(client: TestClient, tenant: Tenant, case: Value) -> None:
    params = {"v": case.value}
    track(client, tenant, {"external_id": "u1", "event": "typed", "parameters": params})
    assert same_json(only_event(client, tenant, "u1")["parameters"], params)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"parameters": {"v": "a\u0000b"}}, "parameters.v"),
        ({"parameters": {"v": [{"w": "\u0000"}]}}, "parameters.v[0].w"),
        ({"context": {"ip": "\u0000"}}, "context.ip"),
    ],
)
def test_string_with_nul_character_is_refused_on_every_database(
    client: TestClient, tenant: Tenant, body: dict[str, object], field: str
) -> None:
    # PostgreSQL cannot store NUL in text or JSONB; SQLite answers the same for portability.
    sent = {"external_id": "u1", "event": "typed", **body}
    response = client.post("/api/v1/track", headers=tenant.write, json=sent)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_character"
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("synonym", ["parameters", "properties", "data"])
def test_event_data_synonyms(client: TestClient, tenant: Tenant, synonym: str) -> None:
    track(client, tenant, {"external_id": "u1", "event": "x", synonym: {"k": 1}})
    assert only_event(client, tenant, "u1")["parameters"] == {"k": 1}


def test_group_id_at_top_level(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant, {"external_id": "u1", "event": "x", "group_id": "acct_1"})
    event = only_event(client, tenant, "u1")
    assert (event["group_id"], event["context"]) == ("acct_1", {})


def test_auto_collected_name_accepted(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant, {"external_id": "u1", "event": "@clicked"})
    assert only_event(client, tenant, "u1")["event"] == "@clicked"


# --- item errors --------------------------------------------------------------------------------

NESTED_9 = {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": {"l8": {"l9": 1}}}}}}}}}
NESTED_7 = {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": 1}}}}}}}


@dataclass(frozen=True)
class Refusal:
    name: str
    body: Any
    code: str
    field: str | None


def ev(**fields: Any) -> dict[str, Any]:
    """A valid event, changed by ``fields`` (a value of ``...`` removes the field)."""
    base: dict[str, Any] = {"external_id": "u1", "event": "x"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


REFUSALS = [
    Refusal("no_identity", {"event": "x"}, "missing_identity", "external_id"),
    Refusal(
        "null_identities", ev(external_id=None, device_id=None), "missing_identity", "external_id"
    ),
    Refusal("identity_bool", ev(external_id=True), "invalid_identity", "external_id"),
    Refusal("identity_empty_synonym", ev(external_id=..., userId=""), "invalid_identity", "userId"),
    Refusal("identity_object", ev(external_id=..., user_id={}), "invalid_identity", "user_id"),
    Refusal("device_too_long", ev(device_id="d" * 256), "invalid_identity", "device_id"),
    Refusal("device_control", ev(anonymous_id="a\nb"), "invalid_identity", "anonymous_id"),
    Refusal("message_id_empty", ev(message_id=""), "invalid_identity", "message_id"),
    Refusal("group_id_object", ev(group_id={}), "invalid_identity", "group_id"),
    Refusal(
        "context_group_id_float",
        ev(context={"group_id": 5.5}),
        "invalid_identity",
        "context.group_id",
    ),
    Refusal("no_event_name", ev(event=...), "missing_event_name", "event"),
    Refusal("event_name_null", ev(event=None), "missing_event_name", "event"),
    Refusal("event_name_empty", ev(event=""), "invalid_event_name", "event"),
    Refusal("event_name_number", ev(event=5), "invalid_event_name", "event"),
    Refusal("event_name_too_long", ev(event="x" * 201), "invalid_event_name", "event"),
    Refusal(
        "event_name_control", ev(event=..., event_name="a\tb"), "invalid_event_name", "event_name"
    ),
    Refusal("reserved_name", ev(event="@custom"), "reserved_event_name", "event"),
    Refusal("first_session_by_client", ev(event="@first_session"), "reserved_event_name", "event"),
    Refusal("parameters_array", ev(parameters=[1]), "invalid_properties", "parameters"),
    Refusal("properties_string", ev(properties="x"), "invalid_properties", "properties"),
    Refusal(
        "property_name_control",
        ev(parameters={"bad\nname": 1}),
        "invalid_property_name",
        "parameters.bad\nname",
    ),
    Refusal("property_name_empty", ev(parameters={"": 1}), "invalid_property_name", "parameters."),
    Refusal("mixed_array", ev(parameters={"a": [1, "a"]}), "mixed_array", "parameters.a"),
    Refusal("mixed_objects", ev(data={"a": [{"k": 1}, 2]}), "mixed_array", "data.a"),
    Refusal("bool_array", ev(parameters={"a": [True, False]}), "invalid_array", "parameters.a"),
    Refusal("null_array", ev(parameters={"a": [None]}), "invalid_array", "parameters.a"),
    Refusal("nested_array", ev(parameters={"a": [[1], [2]]}), "invalid_array", "parameters.a"),
    Refusal("too_deep", ev(parameters=NESTED_9), "too_deep", "parameters"),
    Refusal("context_too_deep", ev(context=NESTED_9), "too_deep", "context"),
    Refusal("event_too_large", ev(parameters={"s": "x" * 40_000}), "event_too_large", None),
    Refusal("timestamp_words", ev(timestamp="yesterday"), "invalid_timestamp", "timestamp"),
    Refusal("timestamp_seconds", ev(timestamp=1_700_000_000), "invalid_timestamp", "timestamp"),
    Refusal("timestamp_bool", ev(timestamp=True), "invalid_timestamp", "timestamp"),
    Refusal("timestamp_date_only", ev(timestamp="2024-01-15"), "invalid_timestamp", "timestamp"),
    Refusal(
        "timestamp_month_13", ev(timestamp="2024-13-01T00:00:00Z"), "invalid_timestamp", "timestamp"
    ),
    Refusal(
        "timestamp_before_1970",
        ev(timestamp="1960-01-01T00:00:00Z"),
        "invalid_timestamp",
        "timestamp",
    ),
    Refusal(
        "timestamp_future", ev(timestamp=4_102_444_800_000), "timestamp_in_future", "timestamp"
    ),
    Refusal(
        "timestamp_future_iso",
        ev(timestamp="2100-01-01T00:00:00Z"),
        "timestamp_in_future",
        "timestamp",
    ),
    Refusal("context_string", ev(context="x"), "invalid_context", "context"),
    Refusal("context_array", ev(context=[1]), "invalid_context", "context"),
    Refusal("two_user_ids", ev(user_id="u2"), "conflicting_fields", "external_id,user_id"),
    Refusal("two_names", ev(type="y"), "conflicting_fields", "event,type"),
    Refusal(
        "two_data", ev(parameters={}, properties={}), "conflicting_fields", "parameters,properties"
    ),
    Refusal(
        "two_message_ids",
        ev(message_id="m", messageId="m"),
        "conflicting_fields",
        "message_id,messageId",
    ),
    Refusal(
        "two_group_ids",
        ev(group_id="g1", context={"group_id": "g2"}),
        "conflicting_fields",
        "group_id,context.group_id",
    ),
    Refusal("unknown_field", ev(foo=1), "unknown_field", "foo"),
    Refusal("body_array", [ev()], "invalid_event", None),
    Refusal("body_string", "x", "invalid_event", None),
    Refusal("body_null", None, "invalid_event", None),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.name)
def test_item_error(client: TestClient, tenant: Tenant, case: Refusal) -> None:
    response = client.post(
        "/api/v1/track", headers={**tenant.write, **JSON_HEADERS}, content=json.dumps(case.body)
    )
    assert_error(response, 400, case.code, case.field)
    assert recent(client, tenant) == []


def test_depth_eight_accepted(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant, ev(parameters=NESTED_7))
    assert only_event(client, tenant, "u1")["parameters"] == NESTED_7


# --- dedup ------------------------------------------------------------------------------------

MESSAGE_ID_SYNONYMS = ["message_id", "messageId", "insert_id", "$insert_id"]


@pytest.mark.parametrize("synonym", MESSAGE_ID_SYNONYMS)
def test_same_message_id_stored_once(client: TestClient, tenant: Tenant, synonym: str) -> None:
    body = {"external_id": "u1", "event": "x", synonym: "msg-1"}
    first = track(client, tenant, body)
    assert track(client, tenant, body) == first
    assert [e["id"] for e in recent(client, tenant)] == [first]


@pytest.mark.parametrize("synonym", MESSAGE_ID_SYNONYMS[1:])
def test_message_id_synonyms_are_one_id(client: TestClient, tenant: Tenant, synonym: str) -> None:
    first = track(client, tenant, {"external_id": "u1", "event": "x", "message_id": "m"})
    assert track(client, tenant, {"external_id": "u1", "event": "x", synonym: "m"}) == first
    assert len(recent(client, tenant)) == 1


def test_repeat_keeps_the_original(client: TestClient, tenant: Tenant) -> None:
    first = track(client, tenant, ev(message_id="m", parameters={"n": 1}))
    assert track(client, tenant, ev(message_id="m", event="other", parameters={"n": 2})) == first
    (event,) = recent(client, tenant)
    assert (event["event"], event["parameters"]) == ("x", {"n": 1})


def test_numeric_message_id_is_its_text(client: TestClient, tenant: Tenant) -> None:
    first = track(client, tenant, ev(message_id=123))
    assert track(client, tenant, ev(message_id="123")) == first


def test_other_workspace_reuses_message_id(
    client: TestClient, tenant: Tenant, make_tenant: Any
) -> None:
    other: Tenant = make_tenant("other")
    mine = track(client, tenant, ev(message_id="m"))
    theirs = track(client, other, ev(message_id="m"))
    assert mine != theirs
    assert [e["id"] for e in recent(client, tenant)] == [mine]
    assert [e["id"] for e in recent(client, other)] == [theirs]


def test_message_id_like_first_session_key(client: TestClient, tenant: Tenant) -> None:
    body = {"device_id": "dev_1", "event": "app_opened", "message_id": "@first_session:dev_1"}
    event_id = track(client, tenant, body)
    stored = {e["id"]: e["event"] for e in recent(client, tenant, device_id="dev_1")}
    assert stored.get(event_id) == "app_opened"
    assert sorted(stored.values()) == ["@first_session", "app_opened"]


# --- request-level problems -------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{", b'{"event": }', b"not json", b"\xff\xfe"])
def test_invalid_json(client: TestClient, tenant: Tenant, body: bytes) -> None:
    response = client.post("/api/v1/track", headers={**tenant.write, **JSON_HEADERS}, content=body)
    assert_error(response, 400, "invalid_json", None)


def test_body_over_request_bytes(database_url: str, tenant: Tenant) -> None:
    body = json.dumps(ev(parameters={"s": "x" * 2000}))
    with limited_client(database_url, request_bytes=1024) as client:
        response = client.post("/api/v1/track", headers=tenant.write, content=body)
        assert_error(response, 413, "payload_too_large", None)
        assert recent(client, tenant) == []


def test_body_at_request_bytes_accepted(database_url: str, tenant: Tenant) -> None:
    body = json.dumps(ev(parameters={"s": ""})).encode()
    body = body.replace(b'""', b'"' + b"x" * (1024 - len(body)) + b'"')
    assert len(body) == 1024
    with limited_client(database_url, request_bytes=1024) as client:
        assert client.post("/api/v1/track", headers=tenant.write, content=body).status_code == 200


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("GZIP", gzip.compress)],
)
def test_compressed_body(client: TestClient, tenant: Tenant, encoding: str, pack: Any) -> None:
    body = pack(json.dumps(ev(parameters={"k": "v"})).encode())
    headers = {**tenant.write, **JSON_HEADERS, "Content-Encoding": encoding}
    response = client.post("/api/v1/track", headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert only_event(client, tenant, "u1")["parameters"] == {"k": "v"}


def test_compressed_limit_applies_to_decompressed_size(database_url: str, tenant: Tenant) -> None:
    body = gzip.compress(json.dumps(ev(parameters={"s": "x" * 5000})).encode())
    assert len(body) < 1024
    headers = {**tenant.write, "Content-Encoding": "gzip"}
    with limited_client(database_url, request_bytes=1024) as client:
        response = client.post("/api/v1/track", headers=headers, content=body)
        assert_error(response, 413, "payload_too_large", None)


def test_gzip_bomb_refused_without_inflating(database_url: str, tenant: Tenant) -> None:
    bomb = gzip_stream(b" " * (1 << 20), 50)  # 50 MiB of JSON whitespace
    assert len(bomb) < 1 << 20
    headers = {**tenant.write, "Content-Encoding": "gzip"}
    with limited_client(database_url, request_bytes=64 * 1024) as client:
        tracemalloc.start()
        try:
            response = client.post("/api/v1/track", headers=headers, content=bomb)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert_error(response, 413, "payload_too_large", None)
    assert peak < 8 << 20, f"peak {peak} bytes: the body was inflated"


def test_gzip_bomb_of_zero_bytes(
    database_url: str, tenant: Tenant, request: pytest.FixtureRequest
) -> None:
    bomb = gzip_stream(b"\x00" * (1 << 20), 50)
    headers = {**tenant.write, "Content-Encoding": "gzip"}
    with limited_client(database_url, request_bytes=64 * 1024) as client:
        response = client.post("/api/v1/track", headers=headers, content=bomb)
    assert_error(response, 413, "payload_too_large", None)


def test_corrupt_gzip(client: TestClient, tenant: Tenant) -> None:
    headers = {**tenant.write, "Content-Encoding": "gzip"}
    response = client.post("/api/v1/track", headers=headers, content=b"this is not gzip at all")
    assert_error(response, 400, "invalid_encoding", None)


def test_truncated_gzip(client: TestClient, tenant: Tenant) -> None:
    packed = gzip.compress(json.dumps(ev(parameters={"s": "abc" * 100})).encode())
    headers = {**tenant.write, "Content-Encoding": "gzip"}
    response = client.post("/api/v1/track", headers=headers, content=packed[: len(packed) // 2])
    assert_error(response, 400, "invalid_encoding", None)


def test_unsupported_encoding(client: TestClient, tenant: Tenant) -> None:
    headers = {**tenant.write, "Content-Encoding": "br"}
    response = client.post("/api/v1/track", headers=headers, content=json.dumps(ev()))
    assert_error(response, 400, "unsupported_encoding", None)


# --- @first_session -----------------------------------------------------------------------------

WHEN = "2024-01-15T10:30:00.000Z"


@dataclass(frozen=True)
class FirstSession:
    name: str
    first: dict[str, Any]
    later: list[dict[str, Any]] = field(default_factory=list)


FIRST_SESSIONS = [
    FirstSession("device_only", {"device_id": "dev_1"}, [{"device_id": "dev_1"}]),
    FirstSession(
        "user_and_device",
        {"external_id": "u1", "device_id": "dev_1"},
        [{"external_id": "u1", "device_id": "dev_1"}, {"device_id": "dev_1"}],
    ),
    FirstSession("anonymous_synonym", {"anonymousId": "dev_1"}, [{"anonymous_id": "dev_1"}]),
]


@pytest.mark.parametrize("case", FIRST_SESSIONS, ids=lambda c: c.name)
def test_first_session_once_per_device(
    client: TestClient, tenant: Tenant, case: FirstSession
) -> None:
    first_id = track(client, tenant, {**case.first, "event": "app_opened", "timestamp": WHEN})
    for n, later in enumerate(case.later):
        track(client, tenant, {**later, "event": f"later_{n}"})
    events = recent(client, tenant, device_id="dev_1")
    firsts = [e for e in events if e["event"] == "@first_session"]
    assert len(firsts) == 1
    (trigger,) = [e for e in events if e["id"] == first_id]
    assert firsts[0]["timestamp"] == trigger["timestamp"] == WHEN
    assert firsts[0]["person_id"] == trigger["person_id"]
    assert events.index(firsts[0]) == events.index(trigger) + 1  # stored just before it
    assert len(events) == 2 + len(case.later)


def test_first_session_per_new_device_of_a_user(client: TestClient, tenant: Tenant) -> None:
    for device in ("dev_1", "dev_2", "dev_1"):
        track(client, tenant, {"external_id": "u1", "device_id": device, "event": "x"})
    firsts = recent(client, tenant, event="@first_session")
    assert sorted(e["device_id"] for e in firsts) == ["dev_1", "dev_2"]


def test_user_only_event_has_no_first_session(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant, {"external_id": "u1", "event": "x"})
    track(client, tenant, {"external_id": "u1", "event": "y"})
    assert recent(client, tenant, event="@first_session") == []


def test_repeat_of_first_event_adds_no_first_session(client: TestClient, tenant: Tenant) -> None:
    body = {"device_id": "dev_1", "event": "x", "message_id": "m1"}
    assert track(client, tenant, body) == track(client, tenant, body)
    assert len(recent(client, tenant, event="@first_session")) == 1
    assert len(recent(client, tenant)) == 2
