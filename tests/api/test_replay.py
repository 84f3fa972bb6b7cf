"""``POST /api/v1/failed-events/replay``: failed events re-run through today's rules, through
the ASGI app, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.clock import FixedClock, to_iso
from trackline.settings import Limits, Settings

REPLAY = "/api/v1/failed-events/replay"
DEFS = "/api/v1/event-definitions"
T0 = 1_700_000_000_000


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def timed(settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    """A client whose server reads ``clock``."""
    with TestClient(create_app(settings, clock=clock, migrate=False)) as test_client:
        yield test_client


def cart(quantity: Any) -> dict[str, Any]:
    return {"external_id": "user_1", "event": "cart_updated", "properties": {"quantity": quantity}}


def declare(client: TestClient, tenant: Tenant, kind: str) -> None:
    """Declare ``cart_updated.quantity`` as ``kind`` (creating the definition if needed)."""
    body = {"properties": {"quantity": kind}}
    response = client.patch(f"{DEFS}/cart_updated", headers=tenant.admin, json=body)
    if response.status_code == 404:
        response = client.post(DEFS, headers=tenant.admin, json={"name": "cart_updated", **body})
    assert response.is_success, response.text


def track(client: TestClient, tenant: Tenant, body: Any) -> Response:
    return client.post("/api/v1/track", headers=tenant.write, json=body)


def batch(client: TestClient, tenant: Tenant, items: list[Any]) -> dict[str, Any]:
    response = client.post("/api/v1/track/batch", headers=tenant.write, json={"events": items})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def failed(client: TestClient, tenant: Tenant) -> list[dict[str, Any]]:
    """The workspace's failed events, oldest first (the order replay takes them in)."""
    response = client.get("/api/v1/failed-events", headers=tenant.read)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["failed_events"]))


def replay(client: TestClient, tenant: Tenant, body: Any = None) -> dict[str, Any]:
    response = client.post(REPLAY, headers=tenant.admin, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["replayed"] == len(result["results"]) == result["stored"] + result["failed"]
    return result


def events(client: TestClient, tenant: Tenant, event: str = "cart_updated") -> list[Any]:
    """The stored ``event`` events, newest first."""
    response = client.get("/api/v1/events", headers=tenant.read, params={"event": event})
    assert response.status_code == 200, response.text
    return response.json()["events"]  # type: ignore[no-any-return]


def fail_some(client: TestClient, tenant: Tenant) -> list[dict[str, Any]]:
    """Four failed events of three kinds, oldest first: two of them pass once quantity is a
    string."""
    declare(client, tenant, "number")
    assert track(client, tenant, cart("two")).status_code == 400
    assert track(client, tenant, {"event": "cart_updated"}).status_code == 400
    assert track(client, tenant, cart("three")).status_code == 400
    bad = client.post("/api/v1/track", headers=tenant.write, content=b'{"event": ')
    assert bad.status_code == 400
    kept = failed(client, tenant)
    assert [f["code"] for f in kept] == [
        "invalid_property_type",
        "missing_identity",
        "invalid_property_type",
        "invalid_json",
    ]
    return kept


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["status"] for r in result["results"]}


# Filters -------------------------------------------------------------------------------------


def test_no_body_replays_everything(client: TestClient, tenant: Tenant) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    result = client.post(REPLAY, headers=tenant.admin).json()
    assert (result["replayed"], result["stored"], result["failed"]) == (4, 2, 2)
    assert [r["id"] for r in result["results"]] == [f["id"] for f in kept]  # oldest first
    assert [r["status"] for r in result["results"]] == ["stored", "failed", "stored", "failed"]
    assert [f["id"] for f in failed(client, tenant)] == [kept[1]["id"], kept[3]["id"]]
    assert [e["parameters"]["quantity"] for e in events(client, tenant)] == ["three", "two"]


def test_code_filter(client: TestClient, tenant: Tenant) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    result = replay(client, tenant, {"code": "invalid_property_type"})
    assert statuses(result) == {kept[0]["id"]: "stored", kept[2]["id"]: "stored"}
    assert failed(client, tenant) == [kept[1], kept[3]]  # untouched
    assert replay(client, tenant, {"code": "no_such_code"})["replayed"] == 0


def test_ids_filter(client: TestClient, tenant: Tenant) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    result = replay(client, tenant, {"ids": [kept[2]["id"], kept[3]["id"], "fev_unknown"]})
    assert statuses(result) == {kept[2]["id"]: "stored", kept[3]["id"]: "failed"}
    assert [f["id"] for f in failed(client, tenant)] == [
        kept[0]["id"],
        kept[1]["id"],
        kept[3]["id"],
    ]
    assert replay(client, tenant, {"ids": []})["replayed"] == 0
    assert [e["parameters"]["quantity"] for e in events(client, tenant)] == ["three"]


def test_code_and_ids_together(client: TestClient, tenant: Tenant) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    body = {"code": "invalid_property_type", "ids": [kept[1]["id"], kept[2]["id"]]}
    assert statuses(replay(client, tenant, body)) == {kept[2]["id"]: "stored"}


def test_limit_takes_the_oldest(client: TestClient, tenant: Tenant) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    result = replay(client, tenant, {"limit": 2})
    assert [r["id"] for r in result["results"]] == [kept[0]["id"], kept[1]["id"]]
    result = replay(client, tenant, {"limit": 1, "code": "invalid_property_type"})
    assert [r["id"] for r in result["results"]] == [kept[2]["id"]]
    assert [f["id"] for f in failed(client, tenant)] == [kept[1]["id"], kept[3]["id"]]


def test_an_empty_store_replays_nothing(client: TestClient, tenant: Tenant) -> None:
    result = replay(client, tenant, {})
    assert result == {"replayed": 0, "stored": 0, "failed": 0, "results": []}


# What a replay keeps -------------------------------------------------------------------------


def test_a_failing_replay_records_the_new_reason(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "number")
    assert track(client, tenant, cart("two")).status_code == 400
    (before,) = failed(client, tenant)
    declare(client, tenant, "boolean")
    (result,) = replay(client, tenant)["results"]
    assert result["status"] == "failed"
    assert result["code"] == "invalid_property_type"
    assert result["field"] == "properties.quantity"
    assert "boolean" in result["message"]
    (after,) = failed(client, tenant)
    assert after["id"] == before["id"]
    assert (after["code"], after["message"], after["field"]) == (
        result["code"],
        result["message"],
        result["field"],
    )
    assert after["payload"] == before["payload"]
    assert after["received_at"] == before["received_at"]


def test_batch_items_keep_their_index_and_field_path(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "number")
    items = [
        {"external_id": "u", "event": "cart_updated", "data": {"quantity": 1}},
        {"external_id": "u", "event": "page_viewed"},
        {"event": "cart_updated", "data": {"quantity": 2}},
        {"external_id": "u", "event": "cart_updated", "data": {"quantity": "x"}},
    ]
    result = batch(client, tenant, items)
    paths = [(e["index"], e["code"], e["field"]) for e in result["errors"]]
    assert paths == [
        (2, "missing_identity", "events[2].external_id"),
        (3, "invalid_property_type", "events[3].data.quantity"),
    ]
    before = failed(client, tenant)

    again = replay(client, tenant)
    assert [(r["status"], r["code"], r["field"]) for r in again["results"]] == [
        ("failed", code, path) for _, code, path in paths
    ]
    assert failed(client, tenant) == before

    declare(client, tenant, "string")
    again = replay(client, tenant)
    assert [r["status"] for r in again["results"]] == ["failed", "stored"]
    (left,) = failed(client, tenant)
    assert (left["index"], left["field"], left["source"]) == (
        2,
        "events[2].external_id",
        "api/v1/track/batch",
    )
    stored = again["results"][1]
    assert stored["new_failures"] == []
    assert [e["id"] for e in events(client, tenant)][:1] == stored["event_ids"]
    assert events(client, tenant)[0]["parameters"] == {"quantity": "x"}


@pytest.mark.parametrize("path", ["/api/v1/track", "/api/v1/track/batch"])
def test_a_whole_request_invalid_json_stays_failing(
    client: TestClient, tenant: Tenant, path: str
) -> None:
    response = client.post(path, headers=tenant.write, content=b'{"events": [')
    assert response.status_code == 400
    (before,) = failed(client, tenant)
    assert (before["code"], before["index"]) == ("invalid_json", None)
    (result,) = replay(client, tenant)["results"]
    assert (result["status"], result["code"], result["field"]) == ("failed", "invalid_json", None)
    assert failed(client, tenant) == [before]


def test_a_whole_batch_refused_by_a_limit_replays_under_new_limits(
    database_url: str, client: TestClient, tenant: Tenant
) -> None:
    """A batch refused as too large is kept whole; once the limit allows it, a replay stores its
    good items and keeps the bad one with its index."""
    small = Settings(database_url=database_url, key_cache_s=0, limits=Limits(batch_events=2))
    items = [
        {"external_id": "u", "event": "page_viewed"},
        {"external_id": "u", "event": "@custom"},
        {"external_id": "u", "event": "page_viewed"},
    ]
    with TestClient(create_app(small, migrate=False)) as strict:
        response = strict.post("/api/v1/track/batch", headers=tenant.write, json={"events": items})
        assert response.status_code == 413
        assert [e["code"] for e in replay(strict, tenant)["results"]] == ["batch_too_large"]
    (whole,) = failed(client, tenant)
    assert (whole["code"], whole["index"]) == ("batch_too_large", None)

    (result,) = replay(client, tenant)["results"]
    assert result["status"] == "stored"
    assert len(result["event_ids"]) == 2
    assert [(f["index"], f["code"], f["field"]) for f in result["new_failures"]] == [
        (1, "reserved_event_name", "events[1].event")
    ]
    (left,) = failed(client, tenant)
    assert (left["index"], left["code"], left["field"]) == (
        1,
        "reserved_event_name",
        "events[1].event",
    )
    assert left["id"] != whole["id"]
    assert len(events(client, tenant, "page_viewed")) == 2


def test_a_replayed_event_keeps_the_time_it_was_sent(
    timed: TestClient, tenant: Tenant, clock: FixedClock
) -> None:
    declare(timed, tenant, "number")
    assert track(timed, tenant, cart("two")).status_code == 400
    clock.advance(3_600_000)
    declare(timed, tenant, "string")
    assert replay(timed, tenant)["stored"] == 1
    (event,) = events(timed, tenant)
    assert event["timestamp"] == to_iso(T0)
    assert event["created_at"] == to_iso(T0 + 3_600_000)


def test_replayed_events_are_counted_in_the_catalog(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "number")
    track(client, tenant, cart("2"))
    track(client, tenant, cart("two"))
    declare(client, tenant, "string")
    replay(client, tenant)
    definition = client.get(f"{DEFS}/cart_updated", headers=tenant.read).json()
    assert definition["count"] == 2
    (quantity,) = definition["properties"]
    assert {t["type"]: t["count"] for t in quantity["types"]} == {"number": 1, "string": 1}


def test_message_ids_are_not_duplicated_by_replays(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "number")
    for _ in range(2):  # a client retrying a refused event
        assert track(client, tenant, {**cart("two"), "message_id": "m-1"}).status_code == 400
    assert track(client, tenant, {**cart("many"), "messageId": "m-2"}).status_code == 400
    stored_first = track(client, tenant, {**cart("3"), "messageId": "m-2"})  # fixed, then sent
    assert stored_first.status_code == 200
    declare(client, tenant, "string")

    result = replay(client, tenant)
    assert (result["replayed"], result["stored"]) == (3, 3)
    ids = [r["event_ids"] for r in result["results"]]
    assert ids[0] == ids[1]  # both copies of m-1 are one event
    assert ids[2] == [stored_first.json()["event_id"]]  # m-2 was stored already
    assert failed(client, tenant) == []
    assert [e["parameters"]["quantity"] for e in events(client, tenant)] == [3, "two"]

    assert replay(client, tenant)["replayed"] == 0
    assert len(events(client, tenant)) == 2
    definition = client.get(f"{DEFS}/cart_updated", headers=tenant.read).json()
    assert definition["count"] == 2


# Access and bad requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        ("write", 403, "insufficient_scope"),
        ("read", 403, "insufficient_scope"),
        ("both", 403, "insufficient_scope"),
        ("", 401, "missing_key"),
    ],
)
def test_only_admin_keys_replay(
    client: TestClient, tenant: Tenant, key: str, status: int, code: str
) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    headers = getattr(tenant, key) if key else {}
    response = client.post(REPLAY, headers=headers, json={})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert failed(client, tenant) == kept
    assert events(client, tenant) == []


def test_another_workspace_is_untouched(
    client: TestClient, tenant: Tenant, make_tenant: Callable[[str], Tenant]
) -> None:
    other = make_tenant("other")
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    assert track(client, other, {"event": "cart_updated"}).status_code == 400
    (theirs,) = failed(client, other)

    assert replay(client, other, {"ids": [f["id"] for f in kept]})["replayed"] == 0
    result = replay(client, other)
    assert statuses(result) == {theirs["id"]: "failed"}
    assert failed(client, tenant) == kept
    assert events(client, tenant) == []

    assert replay(client, tenant, {"ids": [theirs["id"]]})["replayed"] == 0
    assert failed(client, other) == [theirs]


@dataclass(frozen=True)
class BadBody:
    id: str
    raw: bytes
    code: str
    field: str | None


BAD_BODIES = [
    BadBody("limit-zero", b'{"limit": 0}', "invalid_request", "limit"),
    BadBody("limit-over-1000", b'{"limit": 1001}', "invalid_request", "limit"),
    BadBody("limit-negative", b'{"limit": -1}', "invalid_request", "limit"),
    BadBody("limit-string", b'{"limit": "5"}', "invalid_request", "limit"),
    BadBody("limit-float", b'{"limit": 1.5}', "invalid_request", "limit"),
    BadBody("limit-bool", b'{"limit": true}', "invalid_request", "limit"),
    BadBody("code-number", b'{"code": 5}', "invalid_request", "code"),
    BadBody("ids-string", b'{"ids": "fev_1"}', "invalid_request", "ids"),
    BadBody("ids-numbers", b'{"ids": [1]}', "invalid_request", "ids"),
    BadBody("unknown-field", b'{"code": "x", "all": true}', "invalid_request", None),
    BadBody("array", b'["invalid_property_type"]', "invalid_request", None),
    BadBody("string", b'"invalid_property_type"', "invalid_request", None),
    BadBody("not-json", b'{"code": ', "invalid_json", None),
]

BAD_BODIES_PARAMS = [
    *(pytest.param(b, id=b.id) for b in BAD_BODIES),
    pytest.param(BadBody("empty-array", b"[]", "invalid_request", None), id="[]"),
    pytest.param(BadBody("false", b"false", "invalid_request", None), id="false"),
]


@pytest.mark.parametrize("case", BAD_BODIES_PARAMS)
def test_bad_bodies_are_refused(client: TestClient, tenant: Tenant, case: BadBody) -> None:
    kept = fail_some(client, tenant)
    declare(client, tenant, "string")
    response = client.post(REPLAY, headers=tenant.admin, content=case.raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == case.code
    assert response.json()["error"]["field"] == case.field
    assert failed(client, tenant) == kept
