"""``POST /api/v1/track/batch`` through the ASGI app, on both databases: partial acceptance,
per-item errors with their ``events[i]`` paths, dedup inside a batch, the size limits, the
Flameup example verbatim and a full batch of the default size."""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.settings import Limits, Settings

EVENT_ID = re.compile(r"^evt_[0-9a-f]{32}$")
BATCH = "/api/v1/track/batch"

# Flameup (seed 003), the body of the batch curl example, exactly as the document shows it.
FLAMEUP_BATCH_CURL = """{
"events": [
{"external_id": "user_123", "event": "page_viewed", "parameters": {"page": "/home"}},
{"external_id": "user_123", "event": "button_clicked", "parameters": {"button": "signup"}}
]
}"""
# The same document's JavaScript / Python batch example (three events, two users).
FLAMEUP_BATCH_SDK = {
    "events": [
        {"external_id": "user_123", "event": "page_viewed", "parameters": {"page": "/home"}},
        {"external_id": "user_123", "event": "button_clicked", "parameters": {"button": "signup"}},
        {"external_id": "user_456", "event": "purchase_completed", "parameters": {"amount": 99.99}},
    ]
}


@contextmanager
def limited_client(database_url: str, **limits: int) -> Iterator[TestClient]:
    """A client whose server has smaller limits than the defaults."""
    settings = Settings(database_url=database_url, key_cache_s=0, limits=Limits(**limits))
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


def ev(n: int = 0, **fields: Any) -> dict[str, Any]:
    return {"external_id": "u1", "event": f"e_{n}", **fields}


def post_batch(client: TestClient, tenant: Tenant, events: Any) -> dict[str, Any]:
    """Post a batch that must be answered 200; the answer."""
    response = client.post(BATCH, headers=tenant.write, json={"events": events})
    assert response.status_code == 200, response.text
    return dict(response.json())


def all_events(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """Every event of the workspace, newest first, following the cursor."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 500, **params} | ({"cursor": cursor} if cursor else {})
        response = client.get("/api/v1/events", headers=tenant.read, params=query)
        assert response.status_code == 200, response.text
        found += response.json()["events"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


def assert_error(response: Any, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() == {"success", "error"}
    assert body["success"] is False
    assert body["error"].keys() == {"code", "message", "field"}
    assert (body["error"]["code"], body["error"]["field"]) == (code, field)


# --- partial acceptance -------------------------------------------------------------------------


def test_mixed_batch(client: TestClient, tenant: Tenant) -> None:
    events = [ev(0), ev(1, parameters={"a": [1, "x"]}), ev(2), {"event": "e_3"}]
    answer = post_batch(client, tenant, events)
    assert answer.keys() == {"success", "accepted", "event_ids", "errors"}
    assert (answer["success"], answer["accepted"]) == (False, 2)
    ids = answer["event_ids"]
    assert len(ids) == 4 and ids[1] is None and ids[3] is None
    assert all(EVENT_ID.match(i) for i in (ids[0], ids[2]))
    errors = answer["errors"]
    assert [e.keys() for e in errors] == [{"index", "code", "message", "field"}] * 2
    assert [(e["index"], e["code"], e["field"]) for e in errors] == [
        (1, "mixed_array", "events[1].parameters.a"),
        (3, "missing_identity", "events[3].external_id"),
    ]
    assert all(isinstance(e["message"], str) and e["message"] for e in errors)
    assert [e["id"] for e in all_events(client, tenant)] == [ids[2], ids[0]]


def test_all_good_batch(client: TestClient, tenant: Tenant) -> None:
    answer = post_batch(client, tenant, [ev(n) for n in range(5)])
    assert (answer["success"], answer["accepted"], answer["errors"]) == (True, 5, [])
    assert len(set(answer["event_ids"])) == 5
    assert sorted(answer["event_ids"]) == answer["event_ids"]  # time-ordered, in batch order
    stored = all_events(client, tenant)
    assert [e["event"] for e in stored] == [f"e_{n}" for n in range(4, -1, -1)]


def test_all_bad_batch(client: TestClient, tenant: Tenant) -> None:
    answer = post_batch(client, tenant, [{"event": "x"}, ev(1, event="@nope")])
    assert (answer["success"], answer["accepted"], answer["event_ids"]) == (False, 0, [None, None])
    assert [e["index"] for e in answer["errors"]] == [0, 1]
    assert all_events(client, tenant) == []


def test_empty_batch(client: TestClient, tenant: Tenant) -> None:
    answer = post_batch(client, tenant, [])
    assert answer == {"success": True, "accepted": 0, "event_ids": [], "errors": []}


@dataclass(frozen=True)
class ItemCase:
    name: str
    item: Any
    code: str
    field: str | None


ITEM_CASES = [
    ItemCase("not_an_object", [1], "invalid_event", "events[1]"),
    ItemCase("null_item", None, "invalid_event", "events[1]"),
    ItemCase("no_identity", {"event": "x"}, "missing_identity", "events[1].external_id"),
    ItemCase("bad_identity", ev(external_id=True), "invalid_identity", "events[1].external_id"),
    ItemCase("no_name", {"external_id": "u"}, "missing_event_name", "events[1].event"),
    ItemCase("bad_name", ev(event=""), "invalid_event_name", "events[1].event"),
    ItemCase(
        "bad_name_synonym", {"userId": "u", "type": 3}, "invalid_event_name", "events[1].type"
    ),
    ItemCase("reserved", ev(event="@first_session"), "reserved_event_name", "events[1].event"),
    ItemCase("bad_properties", ev(properties=[]), "invalid_properties", "events[1].properties"),
    ItemCase(
        "bad_property_name",
        ev(parameters={"a\nb": 1}),
        "invalid_property_name",
        "events[1].parameters.a\nb",
    ),
    ItemCase("mixed", ev(parameters={"a": [1, "b"]}), "mixed_array", "events[1].parameters.a"),
    ItemCase("bools", ev(data={"a": [True]}), "invalid_array", "events[1].data.a"),
    ItemCase(
        "too_deep",
        ev(parameters={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}),
        "too_deep",
        "events[1].parameters",
    ),
    ItemCase("too_large", ev(parameters={"s": "x" * 40_000}), "event_too_large", "events[1]"),
    ItemCase("bad_time", ev(timestamp="soon"), "invalid_timestamp", "events[1].timestamp"),
    ItemCase(
        "future", ev(timestamp=4_102_444_800_000), "timestamp_in_future", "events[1].timestamp"
    ),
    ItemCase("bad_context", ev(context=1), "invalid_context", "events[1].context"),
    ItemCase("unknown", ev(writeKey="k"), "unknown_field", "events[1].writeKey"),
    ItemCase(
        "two_user_ids",
        ev(user_id="u2"),
        "conflicting_fields",
        "events[1].external_id,events[1].user_id",
    ),
    ItemCase(
        "two_group_ids",
        ev(group_id="g1", context={"group_id": "g2"}),
        "conflicting_fields",
        "events[1].group_id,events[1].context.group_id",
    ),
    ItemCase(
        "context_group_id",
        ev(context={"group_id": []}),
        "invalid_identity",
        "events[1].context.group_id",
    ),
]


@pytest.mark.parametrize("case", ITEM_CASES, ids=lambda c: c.name)
def test_item_error_paths(client: TestClient, tenant: Tenant, case: ItemCase) -> None:
    answer = post_batch(client, tenant, [ev(0), case.item, ev(2)])
    assert (answer["success"], answer["accepted"]) == (False, 2)
    assert answer["event_ids"][1] is None
    (error,) = answer["errors"]
    assert (error["index"], error["code"], error["field"]) == (1, case.code, case.field)


def test_nul_in_a_refused_item_costs_only_that_item(
    client: TestClient, tenant: Tenant, database_url: str, request: pytest.FixtureRequest
) -> None:
    answer = post_batch(client, tenant, [ev(0), ev(1, parameters={"a\x00": 1})])
    assert (answer["accepted"], answer["errors"][0]["code"]) == (1, "invalid_property_name")
    assert [e["id"] for e in all_events(client, tenant)] == [answer["event_ids"][0]]


# --- dedup ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("synonym", ["message_id", "messageId", "insert_id", "$insert_id"])
def test_duplicate_message_id_in_one_batch(
    client: TestClient, tenant: Tenant, synonym: str
) -> None:
    answer = post_batch(client, tenant, [ev(0, **{synonym: "m1"}), ev(1, **{synonym: "m1"})])
    first, second = answer["event_ids"]
    assert first == second and answer["accepted"] == 2
    (stored,) = all_events(client, tenant)
    assert (stored["id"], stored["event"]) == (first, "e_0")


def test_batch_repeats_an_earlier_message_id(client: TestClient, tenant: Tenant) -> None:
    (earlier,) = post_batch(client, tenant, [ev(0, message_id="m1")])["event_ids"]
    answer = post_batch(client, tenant, [ev(1, message_id="m2"), ev(2, message_id="m1")])
    assert answer["event_ids"][1] == earlier
    assert len(all_events(client, tenant)) == 2


def test_retrying_a_whole_batch_stores_nothing_new(client: TestClient, tenant: Tenant) -> None:
    events = [ev(n, message_id=f"m{n}") for n in range(4)]
    first = post_batch(client, tenant, events)
    assert post_batch(client, tenant, events)["event_ids"] == first["event_ids"]
    assert len(all_events(client, tenant)) == 4


def test_a_large_batch_with_earlier_message_ids_stores_only_the_new(
    client: TestClient, tenant: Tenant
) -> None:
    """Large enough for PostgreSQL's COPY path, where a stored message id is only found by
    the insert conflicting; the repeats answer with their first ids and count once."""
    first = post_batch(client, tenant, [ev(7, message_id=f"m{n}") for n in range(60)])
    again = post_batch(client, tenant, [ev(7, message_id=f"m{n}") for n in range(30, 90)])
    assert again["event_ids"][:30] == first["event_ids"][30:]
    assert len(set(again["event_ids"][30:]) - set(first["event_ids"])) == 30
    assert len(all_events(client, tenant)) == 90
    listed = client.get("/api/v1/event-definitions/e_7", headers=tenant.read)
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 90


# --- whole-request problems -------------------------------------------------------------------


def test_batch_at_the_limit(database_url: str, tenant: Tenant) -> None:
    with limited_client(database_url, batch_events=3) as client:
        assert post_batch(client, tenant, [ev(n) for n in range(3)])["accepted"] == 3


def test_batch_over_the_limit(database_url: str, tenant: Tenant) -> None:
    with limited_client(database_url, batch_events=3) as client:
        response = client.post(
            BATCH, headers=tenant.write, json={"events": [ev(n) for n in range(4)]}
        )
        assert_error(response, 413, "batch_too_large", "events")
        assert all_events(client, tenant) == []


@pytest.mark.parametrize(
    "body",
    [{"events": {}}, {"events": "x"}, {"events": None}, {}, [ev()], "events", 1],
    ids=["object", "string", "null", "missing", "top_level_list", "top_level_string", "number"],
)
def test_events_not_a_list(client: TestClient, tenant: Tenant, body: Any) -> None:
    response = client.post(BATCH, headers=tenant.write, content=json.dumps(body))
    assert_error(response, 400, "invalid_batch", "events")


def test_unknown_top_level_field(client: TestClient, tenant: Tenant) -> None:
    response = client.post(BATCH, headers=tenant.write, json={"events": [ev()], "sentAt": 1})
    assert_error(response, 400, "unknown_field", "sentAt")
    assert all_events(client, tenant) == []


def test_invalid_json(client: TestClient, tenant: Tenant) -> None:
    response = client.post(BATCH, headers=tenant.write, content=b'{"events": [')
    assert_error(response, 400, "invalid_json", None)


@pytest.mark.parametrize("parse_thread_bytes", [0, 10**9], ids=["parse_thread", "event_loop"])
def test_whole_request_problems_are_the_same_wherever_the_body_is_parsed(
    database_url: str, tenant: Tenant, parse_thread_bytes: int
) -> None:
    """Bodies of ``parse_thread_bytes`` or more are parsed on the parse thread: its answers,
    stored events and kept refusals are those of parsing on the event loop."""
    settings = Settings(
        database_url=database_url,
        key_cache_s=0,
        parse_thread_bytes=parse_thread_bytes,
        limits=Limits(request_bytes=64 * 1024),
    )
    broken = b'{"events": [' + b'{"external_id": "u1", "event": "e"},' * 300
    too_large = {"events": [ev(n, parameters={"s": "x" * 1000}) for n in range(100)]}
    with TestClient(create_app(settings, migrate=False)) as client:
        assert_error(
            client.post(BATCH, headers=tenant.write, content=broken), 400, "invalid_json", None
        )
        assert parse_thread_running() == (parse_thread_bytes == 0)
        response = client.post(BATCH, headers=tenant.write, json=too_large)
        assert_error(response, 413, "payload_too_large", None)
        answer = post_batch(client, tenant, [ev(n) for n in range(300)] + [{"event": "x"}])
        assert (answer["accepted"], answer["errors"][0]["index"]) == (300, 300)
        assert len(all_events(client, tenant)) == 300
        kept = client.get("/api/v1/failed-events", headers=tenant.read).json()["failed_events"]
    assert not parse_thread_running()  # ended with the app
    assert sorted(f["code"] for f in kept) == [
        "invalid_json",
        "missing_identity",
        "payload_too_large",
    ]
    assert any(f["payload"] == broken.decode() for f in kept)


def parse_thread_running() -> bool:
    return any(t.name.startswith("trackline-parse") for t in threading.enumerate())


@pytest.mark.parametrize("path", [BATCH, "/api/v1/track"])
def test_nesting_deeper_than_json_encoding_goes(
    client: TestClient, tenant: Tenant, path: str
) -> None:
    """JSON decodes up to 1,024 levels but encodes only 255: such an item is refused with the
    whole request (it cannot be kept alone), and the request is kept as received."""
    deep = ev(parameters={"a": functools.reduce(lambda inner, _: [inner], range(300), 1)})
    body = json.dumps({"events": [ev(1), deep]} if path == BATCH else deep)
    response = client.post(path, headers=tenant.write, content=body)
    assert_error(response, 400, "too_deep", None)
    kept = client.get("/api/v1/failed-events", headers=tenant.read).json()["failed_events"]
    assert [(f["code"], f["payload"]) for f in kept] == [("too_deep", body)]
    assert all_events(client, tenant) == []


def test_body_over_request_bytes(database_url: str, tenant: Tenant) -> None:
    events = [ev(n, parameters={"s": "x" * 500}) for n in range(5)]
    with limited_client(database_url, request_bytes=2048) as client:
        response = client.post(BATCH, headers=tenant.write, json={"events": events})
        assert_error(response, 413, "payload_too_large", None)


def test_item_size_checked_when_body_is_large(database_url: str, tenant: Tenant) -> None:
    events = [ev(0, parameters={"s": "x" * 600}), ev(1, parameters={"s": "x" * 100})]
    with limited_client(database_url, event_bytes=512) as client:
        answer = post_batch(client, tenant, events)
    assert answer["event_ids"][0] is None and answer["event_ids"][1] is not None
    assert [(e["index"], e["code"], e["field"]) for e in answer["errors"]] == [
        (0, "event_too_large", "events[0]")
    ]


# --- examples and volume ------------------------------------------------------------------------


def test_flameup_batch_curl_example(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        BATCH,
        headers={**tenant.write, "Content-Type": "application/json"},
        content=FLAMEUP_BATCH_CURL,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["success"], answer["accepted"], answer["errors"]) == (True, 2, [])
    stored = all_events(client, tenant, user_id="user_123")
    assert [(e["id"], e["event"], e["parameters"]) for e in stored] == [
        (answer["event_ids"][1], "button_clicked", {"button": "signup"}),
        (answer["event_ids"][0], "page_viewed", {"page": "/home"}),
    ]


def test_flameup_batch_sdk_example(client: TestClient, tenant: Tenant) -> None:
    answer = post_batch(client, tenant, FLAMEUP_BATCH_SDK["events"])
    assert (answer["success"], answer["accepted"]) == (True, 3)
    assert len(all_events(client, tenant, user_id="user_123")) == 2
    (purchase,) = all_events(client, tenant, user_id="user_456")
    assert purchase["parameters"] == {"amount": 99.99}


def test_thousand_events(client: TestClient, tenant: Tenant) -> None:
    events = [ev(n, external_id=f"user_{n % 10}", parameters={"n": n}) for n in range(1000)]
    answer = post_batch(client, tenant, events)
    assert (answer["success"], answer["accepted"]) == (True, 1000)
    stored = all_events(client, tenant)
    assert len(stored) == 1000
    assert {e["id"] for e in stored} == set(answer["event_ids"])
    by_id = {e["id"]: e["parameters"]["n"] for e in stored}
    assert [by_id[i] for i in answer["event_ids"]] == list(range(1000))
    assert len(all_events(client, tenant, user_id="user_3")) == 100


def test_thousand_and_one_events(client: TestClient, tenant: Tenant) -> None:
    response = client.post(BATCH, headers=tenant.write, json={"events": [ev()] * 1001})
    assert_error(response, 413, "batch_too_large", "events")
