"""The event catalog (spec 5) and declared property types at ingest (spec 3.3), through the
ASGI app, on both databases."""

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
from trackline.settings import Settings

DEFS = "/api/v1/event-definitions"
T0 = 1_700_000_000_000
STANDARD = (
    "signed_up",
    "logged_in",
    "logged_out",
    "purchase_completed",
    "subscription_started",
    "subscription_cancelled",
)


class _Refusal:
    def __repr__(self) -> str:
        return "REFUSED"


REFUSED: Any = _Refusal()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def timed(settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    """A client whose server reads ``clock``."""
    with TestClient(create_app(settings, clock=clock, migrate=False)) as test_client:
        yield test_client


def track(client: TestClient, tenant: Tenant, **body: Any) -> Response:
    body.setdefault("external_id", "user_1")
    return client.post("/api/v1/track", headers=tenant.write, json=body)


def batch(client: TestClient, tenant: Tenant, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/api/v1/track/batch", headers=tenant.write, json={"events": items})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def listing(client: TestClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    response = client.get(DEFS, headers=tenant.read)
    assert response.status_code == 200, response.text
    return {d["name"]: d for d in response.json()["event_definitions"]}


def one(client: TestClient, tenant: Tenant, name: str) -> dict[str, Any]:
    response = client.get(f"{DEFS}/{name}", headers=tenant.read)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def props(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in definition["properties"]}


def seen(prop: dict[str, Any]) -> dict[str, int]:
    return {t["type"]: t["count"] for t in prop["types"]}


def declare(client: TestClient, tenant: Tenant, name: str, **properties: Any) -> None:
    body = {"name": name, "properties": properties}
    response = client.post(DEFS, headers=tenant.admin, json=body)
    assert response.status_code == 201, response.text


def patch(client: TestClient, tenant: Tenant, name: str, body: Any) -> Response:
    return client.patch(f"{DEFS}/{name}", headers=tenant.admin, json=body)


def stored(client: TestClient, tenant: Tenant, event: str) -> list[dict[str, Any]]:
    """The parameters of the stored ``event`` events, newest first."""
    response = client.get("/api/v1/events", headers=tenant.read, params={"event": event})
    assert response.status_code == 200, response.text
    return [e["parameters"] for e in response.json()["events"]]


def failed(client: TestClient, tenant: Tenant) -> list[dict[str, Any]]:
    response = client.get("/api/v1/failed-events", headers=tenant.read)
    assert response.status_code == 200, response.text
    return response.json()["failed_events"]  # type: ignore[no-any-return]


def replay(client: TestClient, tenant: Tenant, body: Any = None) -> dict[str, Any]:
    response = client.post("/api/v1/failed-events/replay", headers=tenant.admin, json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    return body["error"]  # type: ignore[no-any-return]


def typed(value: Any) -> Any:
    """``value`` with the Python type of every scalar in it (tells 2 from 2.0 and "2")."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


# Discovery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inferred:
    prop: str
    value: Any
    type: str | None  # None: carries no type and is not listed


INFERRED = [
    Inferred("plan", "pro", "string"),
    Inferred("empty_text", "", "string"),
    Inferred("quantity", 3, "number"),
    Inferred("price", 9.99, "number"),
    Inferred("gift", True, "boolean"),
    Inferred("renewed_at", "2024-04-19T14:23:56+09:00", "time"),
    Inferred("paid_at", "2024-04-19T05:23:56Z", "time"),
    Inferred("day", "2024-04-19", "string"),  # a date without a time is not a time
    Inferred("tags", ["a", "b"], "array_string"),
    Inferred("sizes", [1, 2.5], "array_number"),
    Inferred("address", {"city": "Seoul"}, "json"),
    Inferred("items", [{"sku": "a"}, {"sku": "b"}], "json"),
    Inferred("coupon", None, None),
    Inferred("notes", [], None),
]


def test_a_new_name_appears_right_after_track(timed: TestClient, tenant: Tenant) -> None:
    sent = track(
        timed, tenant, event="cart_updated", parameters={c.prop: c.value for c in INFERRED}
    )
    assert sent.status_code == 200, sent.text
    (definition,) = listing(timed, tenant).values()
    assert definition == one(timed, tenant, "cart_updated")
    assert definition["name"] == "cart_updated"
    assert definition["count"] == 1
    assert definition["first_seen"] == definition["last_seen"] == to_iso(T0)
    assert definition["declared"] is False
    assert definition["description"] is None
    assert definition["naming"] == "ok"
    assert definition["auto_collected"] is definition["standard"] is False
    found = props(definition)
    assert sorted(found) == sorted(c.prop for c in INFERRED if c.type is not None)
    for case in INFERRED:
        if case.type is None:
            continue
        prop = found[case.prop]
        assert prop["type"] == case.type, case
        assert prop["types"] == [{"type": case.type, "count": 1, "last_seen": to_iso(T0)}], case
        assert prop["declared"] is prop["conflict"] is False, case
        assert prop["description"] is None


def test_first_and_last_seen_follow_the_arrivals(
    timed: TestClient, tenant: Tenant, clock: FixedClock
) -> None:
    assert track(timed, tenant, event="page_viewed", parameters={"path": "/a"}).status_code == 200
    clock.advance(60_000)
    sent = track(timed, tenant, event="page_viewed", parameters={"path": "/b", "ms": 5})
    assert sent.status_code == 200
    definition = one(timed, tenant, "page_viewed")
    assert definition["count"] == 2
    assert definition["first_seen"] == to_iso(T0)
    assert definition["last_seen"] == to_iso(T0 + 60_000)
    found = props(definition)
    assert found["path"]["types"] == [
        {"type": "string", "count": 2, "last_seen": to_iso(T0 + 60_000)}
    ]
    assert found["ms"]["types"] == [
        {"type": "number", "count": 1, "last_seen": to_iso(T0 + 60_000)}
    ]


def test_counts_aggregate_over_a_batch(client: TestClient, tenant: Tenant) -> None:
    items = [
        {
            "external_id": f"user_{i % 7}",
            "event": "page_viewed",
            "parameters": {"n": i, "ref": "mail" if i % 3 == 0 else None, "tags": ["x"] * (i % 2)},
        }
        for i in range(120)
    ]
    assert batch(client, tenant, items)["accepted"] == 120
    definition = one(client, tenant, "page_viewed")
    assert definition["count"] == 120
    found = props(definition)
    assert seen(found["n"]) == {"number": 120}
    assert seen(found["ref"]) == {"string": 40}  # nulls carry no type
    assert seen(found["tags"]) == {"array_string": 60}  # empty arrays carry no type
    assert not any(p["conflict"] for p in found.values())
    assert batch(client, tenant, items[:5])["accepted"] == 5
    assert one(client, tenant, "page_viewed")["count"] == 125
    assert seen(props(one(client, tenant, "page_viewed"))["n"]) == {"number": 125}


def test_a_batch_counts_each_name_apart(client: TestClient, tenant: Tenant) -> None:
    items = [{"external_id": "u", "event": "a_b"}] * 3 + [{"external_id": "u", "event": "c_d"}]
    batch(client, tenant, items)
    counts = {name: d["count"] for name, d in listing(client, tenant).items()}
    assert counts == {"a_b": 3, "c_d": 1}


def test_repeated_message_ids_are_counted_once(client: TestClient, tenant: Tenant) -> None:
    for _ in range(3):
        assert track(client, tenant, event="order_paid", message_id="m-1").status_code == 200
    item = {"external_id": "u", "event": "order_paid", "message_id": "m-2"}
    batch(client, tenant, [item, item])
    assert one(client, tenant, "order_paid")["count"] == 2


def test_conflicting_types_are_listed_not_hidden(client: TestClient, tenant: Tenant) -> None:
    for quantity in (2, 3, "2", 4):
        sent = track(client, tenant, event="cart_updated", parameters={"quantity": quantity})
        assert sent.status_code == 200, sent.text
    prop = props(one(client, tenant, "cart_updated"))["quantity"]
    assert prop["conflict"] is True
    assert seen(prop) == {"number": 3, "string": 1}
    assert [t["type"] for t in prop["types"]] == ["number", "string"]  # most seen first
    assert prop["type"] == "number"
    assert prop["declared"] is False
    assert props(listing(client, tenant)["cart_updated"])["quantity"] == prop
    assert [p["quantity"] for p in stored(client, tenant, "cart_updated")] == [4, "2", 3, 2]


def test_the_listing_is_sorted_by_name(client: TestClient, tenant: Tenant) -> None:
    names = ["user_signed_up", "UserSignedUp", "a_b", "user-signed-up", "@clicked", "Zed", "b"]
    batch(client, tenant, [{"device_id": "d1", "event": name} for name in names])
    listed = list(listing(client, tenant))
    assert listed == sorted([*names, "@first_session"])


@dataclass(frozen=True)
class NameFlags:
    name: str
    naming: str  # "ok" or the start of the reason
    standard: bool = False
    auto_collected: bool = False


NAME_FLAGS = [
    *(NameFlags(name, "ok", standard=True) for name in STANDARD),
    NameFlags("cart_updated", "ok"),
    NameFlags("UserSignedUp", "not snake_case"),
    NameFlags("user-signed-up", "not snake_case"),
    NameFlags("custom.event_example", "not snake_case"),
    NameFlags("signup", "one word"),
    NameFlags("purchase", "one word"),
    NameFlags("@clicked", "ok", auto_collected=True),
    NameFlags("@iam_displayed", "ok", auto_collected=True),
    NameFlags("@first_session", "ok", auto_collected=True),  # recorded for the new device
]


def test_naming_standard_and_auto_collected_flags(client: TestClient, tenant: Tenant) -> None:
    sendable = [c.name for c in NAME_FLAGS if c.name != "@first_session"]
    result = batch(client, tenant, [{"device_id": "d1", "event": name} for name in sendable])
    assert result["success"] is True, result
    found = listing(client, tenant)
    assert sorted(found) == sorted(c.name for c in NAME_FLAGS)
    for case in NAME_FLAGS:
        definition = found[case.name]
        assert definition["naming"].startswith(case.naming), case
        assert definition["standard"] is case.standard, case
        assert definition["auto_collected"] is case.auto_collected, case
        assert definition["count"] == 1, case


def test_first_session_is_counted_once_per_device(client: TestClient, tenant: Tenant) -> None:
    refused = track(client, tenant, event="app_opened", external_id=None)  # no identity
    assert refused.status_code == 400
    assert listing(client, tenant) == {}  # a refused event teaches the catalog nothing
    track(client, tenant, event="app_opened")  # a user without a device: no first session
    assert "@first_session" not in listing(client, tenant)
    for _ in range(2):
        assert track(client, tenant, event="app_opened", device_id="d1").status_code == 200
    identified = client.post(
        "/api/v1/identify", headers=tenant.write, json={"external_id": "user_2", "device_id": "d2"}
    )
    assert identified.status_code == 200, identified.text
    first = one(client, tenant, "@first_session")
    assert first["count"] == 2
    assert first["auto_collected"] is True
    assert first["standard"] is False
    assert first["naming"] == "ok"
    assert first["properties"] == []


# Definitions by hand -------------------------------------------------------------------------


def test_declare_before_any_event(client: TestClient, tenant: Tenant) -> None:
    body = {
        "name": "cart_updated",
        "description": "A product was added to or removed from the cart.",
        "properties": {
            "quantity": "number",
            "cart_total": {"type": "number", "description": "USD"},
            "coupon": {"type": "string"},
        },
    }
    created = client.post(DEFS, headers=tenant.admin, json=body)
    assert created.status_code == 201, created.text
    definition = created.json()
    assert definition == one(client, tenant, "cart_updated")
    assert listing(client, tenant) == {"cart_updated": definition}
    assert definition["description"] == body["description"]
    assert definition["declared"] is True
    assert definition["count"] == 0
    assert definition["first_seen"] is definition["last_seen"] is None
    assert definition["properties"] == [
        {
            "name": "cart_total",
            "type": "number",
            "declared": True,
            "description": "USD",
            "types": [],
            "conflict": False,
        },
        {
            "name": "coupon",
            "type": "string",
            "declared": True,
            "description": None,
            "types": [],
            "conflict": False,
        },
        {
            "name": "quantity",
            "type": "number",
            "declared": True,
            "description": None,
            "types": [],
            "conflict": False,
        },
    ]


def test_a_declared_definition_then_counts_events(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "cart_updated", quantity="number")
    track(client, tenant, event="cart_updated", parameters={"quantity": "2", "note": "x"})
    definition = one(client, tenant, "cart_updated")
    assert definition["count"] == 1
    assert definition["declared"] is True
    assert definition["first_seen"] is not None
    found = props(definition)
    assert found["quantity"]["declared"] is True
    assert seen(found["quantity"]) == {"number": 1}  # what is counted is what was stored
    assert found["note"]["declared"] is False
    assert found["note"]["type"] == "string"


@dataclass(frozen=True)
class Bad:
    id: str
    body: Any
    code: str
    field: str | None
    raw: bytes | None = None


BAD_POSTS = [
    Bad("unknown-type", {"name": "cart_updated", "properties": {"quantity": "integer"}},
        "invalid_type", "properties.quantity"),
    Bad("unknown-type-long-form",
        {"name": "cart_updated", "properties": {"quantity": {"type": "int"}}},
        "invalid_type", "properties.quantity.type"),
    Bad("type-not-a-string", {"name": "cart_updated", "properties": {"quantity": 5}},
        "invalid_request", "properties.quantity"),
    Bad("extra-key-in-spec",
        {"name": "cart_updated", "properties": {"q": {"type": "number", "unit": "kg"}}},
        "invalid_request", "properties.q"),
    Bad("properties-not-object", {"name": "cart_updated", "properties": ["quantity"]},
        "invalid_request", "properties"),
    Bad("description-not-string", {"name": "cart_updated", "description": 5},
        "invalid_request", "description"),
    Bad("description-too-long", {"name": "cart_updated", "description": "x" * 2001},
        "invalid_request", "description"),
    Bad("reserved-first-session", {"name": "@first_session"}, "reserved_event_name", "name"),
    Bad("reserved-auto-collected", {"name": "@clicked"}, "reserved_event_name", "name"),
    Bad("reserved-other-at", {"name": "@custom_event"}, "reserved_event_name", "name"),
    Bad("no-name", {"properties": {"quantity": "number"}}, "missing_event_name", "name"),
    Bad("name-not-string", {"name": 5}, "invalid_event_name", "name"),
    Bad("name-too-long", {"name": "a_" * 101}, "invalid_event_name", "name"),
    Bad("empty-name", {"name": ""}, "invalid_event_name", "name"),
    Bad("unknown-field", {"name": "cart_updated", "colour": "red"}, "unknown_field", "colour"),
    Bad("not-an-object", ["cart_updated"], "invalid_request", None),
    Bad("not-json", None, "invalid_json", None, raw=b'{"name": '),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_POSTS, ids=lambda c: c.id)
def test_bad_definitions_are_refused(client: TestClient, tenant: Tenant, case: Bad) -> None:
    if case.raw is not None:
        response = client.post(DEFS, headers=tenant.admin, content=case.raw)
    else:
        response = client.post(DEFS, headers=tenant.admin, json=case.body)
    assert response.status_code == 400, response.text
    assert error(response)["code"] == case.code
    assert error(response)["field"] == case.field
    assert listing(client, tenant) == {}  # nothing half-made


def test_an_existing_name_conflicts(client: TestClient, tenant: Tenant) -> None:
    first = {"name": "cart_updated", "description": "first", "properties": {"q": "number"}}
    assert client.post(DEFS, headers=tenant.admin, json=first).status_code == 201
    again = {"name": "cart_updated", "description": "second", "properties": {"q": "string"}}
    response = client.post(DEFS, headers=tenant.admin, json=again)
    assert response.status_code == 409
    assert error(response)["code"] == "already_exists"
    assert error(response)["field"] == "name"
    kept = one(client, tenant, "cart_updated")
    assert kept["description"] == "first"
    assert props(kept)["q"]["type"] == "number"


def test_a_name_seen_in_events_conflicts(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant, event="cart_updated")
    response = client.post(DEFS, headers=tenant.admin, json={"name": "cart_updated"})
    assert response.status_code == 409
    assert error(response)["code"] == "already_exists"
    assert one(client, tenant, "cart_updated")["count"] == 1


def test_patch_changes_description_and_declared_types(client: TestClient, tenant: Tenant) -> None:
    body = {"name": "cart_updated", "description": "old", "properties": {"quantity": "number"}}
    client.post(DEFS, headers=tenant.admin, json=body)
    changes = {
        "description": "new",
        "properties": {"quantity": "string", "size": {"type": "number", "description": "cm"}},
    }
    response = patch(client, tenant, "cart_updated", changes)
    assert response.status_code == 200, response.text
    assert response.json() == one(client, tenant, "cart_updated")
    assert response.json()["description"] == "new"
    found = props(response.json())
    assert (found["quantity"]["type"], found["quantity"]["description"]) == ("string", None)
    assert (found["size"]["type"], found["size"]["description"]) == ("number", "cm")

    response = patch(client, tenant, "cart_updated", {"properties": {"quantity": None}})
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "new"  # absent: unchanged
    assert list(props(response.json())) == ["size"]  # undeclared and never seen: gone

    response = patch(client, tenant, "cart_updated", {"description": None})
    assert response.json()["description"] is None
    assert list(props(response.json())) == ["size"]


def test_undeclaring_keeps_what_was_seen(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "cart_updated", quantity="number")
    track(client, tenant, event="cart_updated", parameters={"quantity": "2"})
    patch(client, tenant, "cart_updated", {"properties": {"quantity": None}})
    prop = props(one(client, tenant, "cart_updated"))["quantity"]
    assert prop["declared"] is False
    assert seen(prop) == {"number": 1}
    sent = track(client, tenant, event="cart_updated", parameters={"quantity": "two"})
    assert sent.status_code == 200, sent.text  # no longer enforced
    assert stored(client, tenant, "cart_updated")[0] == {"quantity": "two"}


def test_patch_declares_a_name_seen_in_events(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant, event="cart_updated", parameters={"quantity": "2"})
    response = patch(client, tenant, "cart_updated", {"properties": {"quantity": "number"}})
    assert response.status_code == 200, response.text
    definition = response.json()
    assert definition["declared"] is True
    assert definition["count"] == 1
    prop = props(definition)["quantity"]
    assert prop["type"] == "number"  # the declared type, whatever was seen before
    assert prop["declared"] is True
    assert seen(prop) == {"string": 1}


BAD_PATCHES = [
    Bad("unknown-type", {"properties": {"quantity": "integer"}}, "invalid_type",
        "properties.quantity"),
    Bad("unknown-type-long-form", {"properties": {"quantity": {"type": "float"}}},
        "invalid_type", "properties.quantity.type"),
    Bad("rename", {"name": "cart_changed"}, "unknown_field", "name"),
    Bad("description-not-string", {"description": ["x"]}, "invalid_request", "description"),
    Bad("not-an-object", "quantity", "invalid_request", None),
    Bad("not-json", None, "invalid_json", None, raw=b"{"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_PATCHES, ids=lambda c: c.id)
def test_bad_patches_change_nothing(client: TestClient, tenant: Tenant, case: Bad) -> None:
    body = {"name": "cart_updated", "description": "d", "properties": {"quantity": "number"}}
    client.post(DEFS, headers=tenant.admin, json=body)
    before = one(client, tenant, "cart_updated")
    path = f"{DEFS}/cart_updated"
    if case.raw is not None:
        response = client.patch(path, headers=tenant.admin, content=case.raw)
    else:
        response = client.patch(path, headers=tenant.admin, json=case.body)
    assert response.status_code == 400, response.text
    assert (error(response)["code"], error(response)["field"]) == (case.code, case.field)
    assert one(client, tenant, "cart_updated") == before


def test_unknown_names_are_not_found(client: TestClient, tenant: Tenant) -> None:
    response = client.get(f"{DEFS}/cart_updated", headers=tenant.read)
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"
    response = patch(client, tenant, "cart_updated", {"description": "x"})
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"
    assert listing(client, tenant) == {}  # PATCH does not create


def test_a_name_with_a_slash_can_be_read_and_changed(client: TestClient, tenant: Tenant) -> None:
    assert track(client, tenant, event="checkout/step_2").status_code == 200
    assert "checkout/step_2" in listing(client, tenant)
    assert one(client, tenant, "checkout%2Fstep_2")["count"] == 1
    response = patch(client, tenant, "checkout%2Fstep_2", {"description": "x"})
    assert response.status_code == 200, response.text


@dataclass(frozen=True)
class Access:
    method: str
    path: str
    key: str  # a Tenant attribute, or "" for no key
    status: int
    code: str


ACCESS = [
    Access("GET", DEFS, "write", 403, "insufficient_scope"),
    Access("GET", f"{DEFS}/cart_updated", "write", 403, "insufficient_scope"),
    Access("POST", DEFS, "read", 403, "insufficient_scope"),
    Access("POST", DEFS, "write", 403, "insufficient_scope"),
    Access("POST", DEFS, "both", 403, "insufficient_scope"),
    Access("PATCH", f"{DEFS}/cart_updated", "read", 403, "insufficient_scope"),
    Access("PATCH", f"{DEFS}/cart_updated", "both", 403, "insufficient_scope"),
    Access("GET", DEFS, "", 401, "missing_key"),
    Access("POST", DEFS, "", 401, "missing_key"),
    Access("GET", DEFS, "admin", 200, ""),
    Access("GET", f"{DEFS}/cart_updated", "read", 200, ""),
    Access("PATCH", f"{DEFS}/cart_updated", "admin", 200, ""),
]


@pytest.mark.parametrize(
    "case",
    ACCESS,
    ids=lambda c: f"{c.method}-{'list' if c.path == DEFS else 'one'}-{c.key or 'no-key'}",
)
def test_scopes(client: TestClient, tenant: Tenant, case: Access) -> None:
    declare(client, tenant, "cart_updated", quantity="number")
    body = {"name": "other_event"} if case.method == "POST" else {"description": "changed"}
    headers = getattr(tenant, case.key) if case.key else {}
    response = client.request(
        case.method, case.path, headers=headers, json=None if case.method == "GET" else body
    )
    assert response.status_code == case.status, response.text
    if case.code:
        assert error(response)["code"] == case.code
    changed = case.method != "GET" and case.status == 200
    assert (one(client, tenant, "cart_updated")["description"] == "changed") is changed
    assert list(listing(client, tenant)) == ["cart_updated"]


def test_workspaces_do_not_share_the_catalog(
    client: TestClient, tenant: Tenant, make_tenant: Callable[[str], Tenant]
) -> None:
    other = make_tenant("other")
    declare(client, tenant, "cart_updated", quantity="number")
    track(client, tenant, event="cart_updated", parameters={"quantity": 1})
    track(client, tenant, event="page_viewed")
    assert listing(client, other) == {}
    assert client.get(f"{DEFS}/cart_updated", headers=other.read).status_code == 404
    assert patch(client, other, "cart_updated", {"description": "x"}).status_code == 404

    declare(client, other, "cart_updated", quantity="string")
    sent = track(client, other, event="cart_updated", parameters={"quantity": "two"})
    assert sent.status_code == 200, sent.text
    assert track(client, other, event="cart_updated", parameters={"quantity": 3}).status_code == 200
    assert stored(client, other, "cart_updated") == [{"quantity": "3"}, {"quantity": "two"}]
    assert one(client, other, "cart_updated")["count"] == 2

    refused = track(client, tenant, event="cart_updated", parameters={"quantity": "two"})
    assert refused.status_code == 400
    mine = one(client, tenant, "cart_updated")
    assert mine["count"] == 1
    assert props(mine)["quantity"]["type"] == "number"
    assert sorted(listing(client, tenant)) == ["cart_updated", "page_viewed"]


# Declared types at ingest --------------------------------------------------------------------


def test_issue_acceptance_scenario(client: TestClient, tenant: Tenant) -> None:
    """Declare quantity: number; "2" is stored as 2 and "two" is refused and kept; replaying
    without a fix changes nothing; after declaring string, replay stores it."""
    declare(client, tenant, "cart_updated", quantity="number")
    good = track(client, tenant, event="cart_updated", properties={"quantity": "2"})
    assert good.status_code == 200, good.text
    bad = track(client, tenant, event="cart_updated", properties={"quantity": "two"})
    assert bad.status_code == 400
    assert error(bad)["code"] == "invalid_property_type"
    assert error(bad)["field"] == "properties.quantity"
    assert "two" in error(bad)["message"]

    assert typed(stored(client, tenant, "cart_updated")) == typed([{"quantity": 2}])
    (kept,) = failed(client, tenant)
    assert (kept["code"], kept["field"]) == ("invalid_property_type", "properties.quantity")
    assert kept["message"] == error(bad)["message"]

    result = replay(client, tenant)
    assert (result["replayed"], result["stored"], result["failed"]) == (1, 0, 1)
    (item,) = result["results"]
    assert item["id"] == kept["id"]
    assert item["status"] == "failed"
    assert (item["code"], item["field"]) == ("invalid_property_type", "properties.quantity")
    assert failed(client, tenant) == [kept]

    assert patch(client, tenant, "cart_updated", {"properties": {"quantity": "string"}}).is_success
    result = replay(client, tenant)
    assert (result["replayed"], result["stored"], result["failed"]) == (1, 1, 0)
    assert result["results"][0]["status"] == "stored"
    assert failed(client, tenant) == []
    assert typed(stored(client, tenant, "cart_updated")) == typed(
        [{"quantity": "two"}, {"quantity": 2}]
    )


@pytest.mark.parametrize("synonym", ["parameters", "properties", "data"])
def test_the_field_path_names_the_synonym_used(
    client: TestClient, tenant: Tenant, synonym: str
) -> None:
    declare(client, tenant, "cart_updated", quantity="number")
    response = track(client, tenant, event="cart_updated", **{synonym: {"quantity": "two"}})
    assert response.status_code == 400
    assert error(response)["field"] == f"{synonym}.quantity"
    assert failed(client, tenant)[0]["field"] == f"{synonym}.quantity"


def test_a_batch_refuses_only_the_bad_items(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "cart_updated", quantity="number")
    items = [
        {"external_id": "u", "event": "cart_updated", "properties": {"quantity": "1"}},
        {"external_id": "u", "event": "cart_updated", "data": {"quantity": "two"}},
        {"external_id": "u", "event": "page_viewed", "data": {"quantity": "two"}},
        {"external_id": "u", "event": "cart_updated", "parameters": {"quantity": 3}},
        {"external_id": "u", "event": "cart_updated", "parameters": {"quantity": [3]}},
    ]
    result = batch(client, tenant, items)
    assert result["success"] is False
    assert result["accepted"] == 3
    ids = result["event_ids"]
    assert [i is None for i in ids] == [False, True, False, False, True]
    assert [(e["index"], e["code"], e["field"]) for e in result["errors"]] == [
        (1, "invalid_property_type", "events[1].data.quantity"),
        (4, "invalid_property_type", "events[4].parameters.quantity"),
    ]
    kept = sorted(failed(client, tenant), key=lambda f: f["index"])
    assert [(f["index"], f["field"]) for f in kept] == [
        (1, "events[1].data.quantity"),
        (4, "events[4].parameters.quantity"),
    ]
    assert kept[0]["source"] == "api/v1/track/batch"
    assert typed(stored(client, tenant, "cart_updated")) == typed(
        [{"quantity": 3}, {"quantity": 1}]
    )
    assert stored(client, tenant, "page_viewed") == [{"quantity": "two"}]  # not declared there


def test_undeclared_properties_keep_their_json_type(client: TestClient, tenant: Tenant) -> None:
    declare(client, tenant, "cart_updated", quantity="number")
    sent = {"quantity": "2", "sku": 42, "price": "9.99", "gift": "true"}
    assert track(client, tenant, event="cart_updated", data=sent).status_code == 200
    (params,) = stored(client, tenant, "cart_updated")
    assert typed(params) == typed({"quantity": 2, "sku": 42, "price": "9.99", "gift": "true"})


@dataclass(frozen=True)
class Ingest:
    declared: str
    value: Any
    want: Any  # the stored value, or REFUSED

    @property
    def id(self) -> str:
        return f"{self.declared}-{self.value!r}"


INGEST = [
    Ingest("number", "39", 39),
    Ingest("number", "3.5", 3.5),
    Ingest("number", True, REFUSED),
    Ingest("string", 9, "9"),
    Ingest("string", {"a": 1}, REFUSED),
    Ingest("boolean", "TRUE", True),
    Ingest("boolean", 1, REFUSED),
    Ingest("time", "2024-04-19T14:23:56+09:00", "2024-04-19T05:23:56.000Z"),
    Ingest("time", 1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
    Ingest("time", 1_700_000_000, REFUSED),
    Ingest("array_string", [1, 2.5], ["1", "2.5"]),
    Ingest("array_number", ["1", "2.5"], [1, 2.5]),
    Ingest("array_number", ["x"], REFUSED),
    Ingest("json", [{"sku": "a"}], [{"sku": "a"}]),
    Ingest("json", "x", REFUSED),
    Ingest("number", None, None),
]


@pytest.mark.parametrize("case", INGEST, ids=lambda c: c.id)
def test_declared_types_at_ingest(client: TestClient, tenant: Tenant, case: Ingest) -> None:
    declare(client, tenant, "typed_event", value=case.declared)
    response = track(client, tenant, event="typed_event", parameters={"value": case.value})
    if case.want is REFUSED:
        assert response.status_code == 400, response.text
        assert error(response)["code"] == "invalid_property_type"
        assert error(response)["field"] == "parameters.value"
        assert stored(client, tenant, "typed_event") == []
        assert [f["code"] for f in failed(client, tenant)] == ["invalid_property_type"]
    else:
        assert response.status_code == 200, response.text
        assert typed(stored(client, tenant, "typed_event")) == typed([{"value": case.want}])
        assert failed(client, tenant) == []


# Known bugs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unstorable:
    id: str
    declared: str
    value: Any


UNSTORABLE = [
    Unstorable("number-beyond-64-bits", "number", "123456789012345678901234567890"),
    Unstorable("time-past-year-9999", "time", 10**17),
]


@pytest.mark.parametrize("case", UNSTORABLE, ids=lambda c: c.id)
def test_unstorable_values_are_refused_not_a_500(
    client: TestClient, tenant: Tenant, case: Unstorable
) -> None:
    declare(client, tenant, "typed_event", value=case.declared)
    items = [
        {"external_id": "u", "event": "typed_event"},
        {"external_id": "u", "event": "typed_event", "data": {"value": case.value}},
    ]
    response = client.post("/api/v1/track/batch", headers=tenant.write, json={"events": items})
    assert response.status_code == 200, response.text
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [
        (1, "invalid_property_type")
    ]
    assert len(stored(client, tenant, "typed_event")) == 1
    assert [f["field"] for f in failed(client, tenant)] == ["events[1].data.value"]


def test_a_retry_of_a_stored_event_answers_with_its_id(client: TestClient, tenant: Tenant) -> None:
    """Spec 3.2: the repeat of a message id answers 200 with the original event id, even when a
    type declared in between would refuse the payload."""
    body = {"event": "cart_updated", "message_id": "m-1", "parameters": {"quantity": "two"}}
    first = track(client, tenant, **body)
    assert first.status_code == 200, first.text
    patch(client, tenant, "cart_updated", {"properties": {"quantity": "number"}})
    retry = track(client, tenant, **body)
    assert retry.status_code == 200, retry.text
    assert retry.json()["event_id"] == first.json()["event_id"]
    assert failed(client, tenant) == []
