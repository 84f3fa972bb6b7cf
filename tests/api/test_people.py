"""People through the API (spec 4): identify, attributes, lookups, merge, device moves, groups
and erasure, on both databases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.clock import FixedClock, to_iso
from trackline.settings import Settings
from trackline.storage.database import Database
from trackline.storage.schema import (
    events,
    failed_events,
    identities,
    people,
    person_groups,
    person_merges,
    timeline,
    timeline_recent,
)

T0 = 1_705_314_600_000  # 2024-01-15T10:30:00Z
PERSON_KEYS = {"id", "external_id", "device_ids", "attributes", "group_ids", "first_seen"}
PERSON_KEYS |= {"last_seen"}
ERASABLE = (events, identities, people, person_groups, person_merges, failed_events)
ERASABLE += (timeline, timeline_recent)


@pytest.fixture
def settings(timeline_settings: Settings) -> Settings:
    """Every test here runs with the timeline entries unmoved and moved (``conftest``)."""
    return timeline_settings


def track(client: TestClient, headers: dict[str, str], **event: Any) -> str:
    event.setdefault("event", "page_viewed")
    response = client.post("/api/v1/track", headers=headers, json=event)
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


def identify(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = client.post("/api/v1/identify", headers=headers, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    return str(response.json()["person_id"])


def get_person(client: TestClient, tenant: Tenant, person_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/people/{person_id}", headers=tenant.read)
    assert response.status_code == 200, response.text
    return dict(response.json())


def lookup(client: TestClient, tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/people", headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["people"])


def timeline(client: TestClient, tenant: Tenant, person_id: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/api/v1/people/{person_id}/events", headers=tenant.read, params={"limit": 500}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def failed(client: TestClient, tenant: Tenant) -> list[dict[str, Any]]:
    response = client.get("/api/v1/failed-events", headers=tenant.read, params={"limit": 500})
    assert response.status_code == 200, response.text
    return list(response.json()["failed_events"])


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    if field is not None:
        assert body["error"]["field"] == field


# --- identify and attributes -------------------------------------------------------------


@dataclass(frozen=True)
class ValueCase:
    name: str
    value: Any


VALUE_CASES = [
    ValueCase("string", "pro"),
    ValueCase("integer", 42),
    ValueCase("float", 99.99),
    ValueCase("boolean", True),
    ValueCase("false", False),
    ValueCase("time", "2024-04-19T14:23:56+09:00"),
    ValueCase("string_array", ["red", "blue"]),
    ValueCase("number_array", [1, 2.5, 3]),
    ValueCase("empty_array", []),
    ValueCase("object", {"city": "Seoul", "zip": 4321, "geo": {"lat": 37.5}}),
    ValueCase("array_of_objects", [{"sku": "PROD-001", "quantity": 2}, {"sku": "PROD-002"}]),
    ValueCase("empty_string", ""),
]


@pytest.mark.parametrize("case", VALUE_CASES, ids=lambda c: c.name)
def test_identify_creates_person_with_attribute_of_each_type(
    client: TestClient, tenant: Tenant, case: ValueCase
) -> None:
    person_id = identify(
        client, tenant.write, {"external_id": "user_1", "attributes": {"value": case.value}}
    )
    person = get_person(client, tenant, person_id)
    assert person["attributes"] == {"value": case.value}
    assert type(person["attributes"]["value"]) is type(case.value)  # 42 stays an int


def test_later_identify_updates_and_null_deletes(client: TestClient, tenant: Tenant) -> None:
    first = identify(
        client,
        tenant.write,
        {"external_id": "user_1", "attributes": {"plan": "free", "age": 30, "old_flag": True}},
    )
    second = identify(
        client,
        tenant.write,
        {"external_id": "user_1", "attributes": {"plan": "pro", "old_flag": None, "city": "Oslo"}},
    )
    assert second == first
    assert get_person(client, tenant, first)["attributes"] == {
        "plan": "pro",
        "age": 30,
        "city": "Oslo",
    }


def test_identify_without_attributes_keeps_them(client: TestClient, tenant: Tenant) -> None:
    person_id = identify(client, tenant.write, {"external_id": "user_1", "attributes": {"a": 1}})
    assert identify(client, tenant.write, {"external_id": "user_1"}) == person_id
    assert get_person(client, tenant, person_id)["attributes"] == {"a": 1}


def test_null_for_unknown_attribute_is_harmless(client: TestClient, tenant: Tenant) -> None:
    person_id = identify(
        client, tenant.write, {"external_id": "user_1", "attributes": {"never_set": None}}
    )
    assert get_person(client, tenant, person_id)["attributes"] == {}


def test_traits_is_an_alias_of_attributes(client: TestClient, tenant: Tenant) -> None:
    person_id = identify(
        client, tenant.write, {"userId": "user_1", "traits": {"email": "ada@example.com"}}
    )
    identify(client, tenant.write, {"user_id": "user_1", "traits": {"email": None, "n": 1}})
    assert get_person(client, tenant, person_id)["attributes"] == {"n": 1}


@dataclass(frozen=True)
class IdentityCase:
    name: str
    body: dict[str, Any]
    external_id: str | None
    device_ids: list[str]


IDENTITY_CASES = [
    IdentityCase("external_id", {"external_id": "u"}, "u", []),
    IdentityCase("user_id", {"user_id": "u"}, "u", []),
    IdentityCase("userId", {"userId": "u"}, "u", []),
    IdentityCase("device_id", {"device_id": "d"}, None, ["d"]),
    IdentityCase("anonymous_id", {"anonymous_id": "d"}, None, ["d"]),
    IdentityCase("anonymousId", {"anonymousId": "d"}, None, ["d"]),
    IdentityCase("user_and_device", {"external_id": "u", "anonymousId": "d"}, "u", ["d"]),
]


@pytest.mark.parametrize("case", IDENTITY_CASES, ids=lambda c: c.name)
def test_identify_accepts_every_identity_synonym(
    client: TestClient, tenant: Tenant, case: IdentityCase
) -> None:
    person = get_person(client, tenant, identify(client, tenant.write, case.body))
    assert person["external_id"] == case.external_id
    assert person["device_ids"] == case.device_ids


@dataclass(frozen=True)
class RefusedCase:
    name: str
    body: dict[str, Any]
    code: str
    field: str | None


REFUSED_CASES = [
    RefusedCase(
        "attributes_and_traits",
        {"external_id": "u", "attributes": {"a": 1}, "traits": {"b": 2}},
        "conflicting_fields",
        "attributes",
    ),
    RefusedCase(
        "two_user_synonyms",
        {"external_id": "u", "user_id": "u"},
        "conflicting_fields",
        "external_id,user_id",
    ),
    RefusedCase("no_identity", {"attributes": {"plan": "pro"}}, "missing_identity", "external_id"),
    RefusedCase("traits_only", {"traits": {"plan": "pro"}}, "missing_identity", "external_id"),
    RefusedCase("empty_object", {}, "missing_identity", "external_id"),
    RefusedCase("null_identity", {"external_id": None}, "missing_identity", "external_id"),
    RefusedCase("unknown_field", {"external_id": "u", "plan": "pro"}, "unknown_field", "plan"),
    RefusedCase(
        "mixed_array",
        {"external_id": "u", "attributes": {"a": [1, "x"]}},
        "mixed_array",
        "attributes.a",
    ),
    RefusedCase(
        "attributes_not_object",
        {"external_id": "u", "attributes": [1]},
        "invalid_properties",
        "attributes",
    ),
]


@pytest.mark.parametrize("case", REFUSED_CASES, ids=lambda c: c.name)
def test_refused_identify_is_kept_in_failed_events(
    client: TestClient, tenant: Tenant, case: RefusedCase
) -> None:
    raw = json.dumps(case.body)
    response = client.post(
        "/api/v1/identify",
        headers={**tenant.write, "Content-Type": "application/json"},
        content=raw,
    )
    assert_error(response, 400, case.code, case.field)
    (kept,) = failed(client, tenant)
    assert kept["code"] == case.code
    assert kept["source"] == "api/v1/identify"
    assert json.loads(kept["payload"]) == case.body
    assert kept["payload"] == raw
    assert lookup(client, tenant, external_id="u") == []


# --- reading a person --------------------------------------------------------------------


def test_person_shape_and_seen_times_from_events(client: TestClient, tenant: Tenant) -> None:
    for offset in (1_000, 0, 5_000, 2_000):
        track(client, tenant.write, external_id="user_1", timestamp=T0 + offset)
    (person,) = lookup(client, tenant, external_id="user_1")
    assert set(person) == PERSON_KEYS
    assert person == {
        "id": person["id"],
        "external_id": "user_1",
        "device_ids": [],
        "attributes": {},
        "group_ids": [],
        "first_seen": to_iso(T0),
        "last_seen": to_iso(T0 + 5_000),
    }
    assert get_person(client, tenant, person["id"]) == person


def test_seen_times_fall_back_to_creation_without_events(
    settings: Settings, tenant: Tenant
) -> None:
    now = 1_710_000_000_123
    app = create_app(settings, clock=FixedClock(now), migrate=False)
    with TestClient(app) as client:
        person_id = identify(client, tenant.write, {"external_id": "quiet", "attributes": {"a": 1}})
        person = get_person(client, tenant, person_id)
        assert timeline(client, tenant, person_id) == []
    assert set(person) == PERSON_KEYS
    assert (person["first_seen"], person["last_seen"]) == (to_iso(now), to_iso(now))


def test_device_identify_records_first_session(client: TestClient, tenant: Tenant) -> None:
    person_id = identify(client, tenant.write, {"device_id": "dev_1"})
    identify(client, tenant.write, {"device_id": "dev_1", "attributes": {"a": 1}})
    assert [e["event"] for e in timeline(client, tenant, person_id)] == ["@first_session"]


def test_unknown_person_is_404(client: TestClient, tenant: Tenant) -> None:
    response = client.get(
        "/api/v1/people/00000000-0000-0000-0000-000000000000", headers=tenant.read
    )
    assert_error(response, 404, "not_found")


@dataclass(frozen=True)
class LookupCase:
    name: str
    params: dict[str, str]
    found: bool


LOOKUP_CASES = [
    LookupCase("by_external_id", {"external_id": "user_1"}, True),
    LookupCase("by_device_id", {"device_id": "dev_1"}, True),
    LookupCase("by_second_device", {"device_id": "dev_2"}, True),
    LookupCase("unknown_external_id", {"external_id": "nobody"}, False),
    LookupCase("unknown_device_id", {"device_id": "nobody"}, False),
    LookupCase("device_id_as_external_id", {"external_id": "dev_1"}, False),
    LookupCase("external_id_as_device_id", {"device_id": "user_1"}, False),
]


@pytest.mark.parametrize("case", LOOKUP_CASES, ids=lambda c: c.name)
def test_lookup(client: TestClient, tenant: Tenant, case: LookupCase) -> None:
    person_id = identify(client, tenant.write, {"external_id": "user_1", "device_id": "dev_1"})
    identify(client, tenant.write, {"external_id": "user_1", "device_id": "dev_2"})
    identify(client, tenant.write, {"external_id": "someone_else"})
    found = lookup(client, tenant, **case.params)
    if case.found:
        assert found == [get_person(client, tenant, person_id)]
        assert set(found[0]) == PERSON_KEYS
    else:
        assert found == []


@pytest.mark.parametrize(
    "params",
    [{}, {"external_id": "user_1", "device_id": "dev_1"}],
    ids=["neither", "both"],
)
def test_lookup_needs_exactly_one_key(
    client: TestClient, tenant: Tenant, params: dict[str, str]
) -> None:
    identify(client, tenant.write, {"external_id": "user_1", "device_id": "dev_1"})
    response = client.get("/api/v1/people", headers=tenant.read, params=params)
    assert_error(response, 400, "invalid_request")


# --- merge ------------------------------------------------------------------------------


def _anonymous_history(client: TestClient, tenant: Tenant, device: str) -> tuple[str, list[str]]:
    """An anonymous person: two events, a group and attributes, by device id only."""
    ids = [
        track(client, tenant.write, device_id=device, event="app_opened", timestamp=T0),
        track(
            client,
            tenant.write,
            anonymous_id=device,
            event="product_viewed",
            group_id="anon_group",
            timestamp=T0 + 1_000,
        ),
    ]
    person_id = identify(
        client,
        tenant.write,
        {"device_id": device, "attributes": {"plan": "free", "color": "red"}},
    )
    return person_id, ids


def _link(client: TestClient, tenant: Tenant, how: str, user: str, device: str) -> None:
    if how == "event":
        track(client, tenant.write, user_id=user, device_id=device, timestamp=T0 + 3_000)
    else:
        identify(client, tenant.write, {"external_id": user, "anonymous_id": device})


@pytest.mark.parametrize("how", ["event", "identify"])
def test_anonymous_person_merges_into_known_user(
    client: TestClient, tenant: Tenant, how: str
) -> None:
    anon_id, anon_events = _anonymous_history(client, tenant, "dev_1")
    user_id = identify(
        client, tenant.write, {"external_id": "user_1", "attributes": {"plan": "pro"}}
    )
    user_event = track(client, tenant.write, external_id="user_1", timestamp=T0 + 2_000)
    assert user_id != anon_id

    _link(client, tenant, how, "user_1", "dev_1")

    survivor = get_person(client, tenant, user_id)
    assert survivor["id"] == user_id
    assert survivor["external_id"] == "user_1"
    assert survivor["device_ids"] == ["dev_1"]
    assert survivor["attributes"] == {"plan": "pro", "color": "red"}  # the user's value wins
    assert survivor["group_ids"] == ["anon_group"]
    assert survivor["first_seen"] == to_iso(T0)
    assert get_person(client, tenant, anon_id) == survivor
    merged = timeline(client, tenant, user_id)
    assert {*anon_events, user_event} <= {e["id"] for e in merged}
    assert {e["person_id"] for e in merged} == {user_id}
    assert timeline(client, tenant, anon_id) == merged
    assert lookup(client, tenant, device_id="dev_1") == [survivor]
    assert lookup(client, tenant, external_id="user_1") == [survivor]


def test_anonymous_person_learns_new_user_id(client: TestClient, tenant: Tenant) -> None:
    anon_id, anon_events = _anonymous_history(client, tenant, "dev_1")
    linked = identify(client, tenant.write, {"external_id": "user_1", "device_id": "dev_1"})
    assert linked == anon_id
    person = get_person(client, tenant, anon_id)
    assert (person["external_id"], person["device_ids"]) == ("user_1", ["dev_1"])
    assert person["attributes"] == {"plan": "free", "color": "red"}
    assert set(anon_events) <= {e["id"] for e in timeline(client, tenant, anon_id)}


def test_merge_into_user_created_in_same_batch(client: TestClient, tenant: Tenant) -> None:
    anon_id, anon_events = _anonymous_history(client, tenant, "dev_2")
    response = client.post(
        "/api/v1/track/batch",
        headers=tenant.write,
        json={
            "events": [
                {"external_id": "user_2", "event": "signed_up", "timestamp": T0 + 5_000},
                {"external_id": "user_2", "device_id": "dev_2", "event": "logged_in"},
            ]
        },
    )
    assert response.json()["accepted"] == 2, response.text
    (survivor,) = lookup(client, tenant, device_id="dev_2")
    assert survivor["id"] != anon_id
    assert survivor["external_id"] == "user_2"
    assert survivor["device_ids"] == ["dev_2"]
    assert survivor["attributes"] == {"plan": "free", "color": "red"}
    assert get_person(client, tenant, anon_id) == survivor
    merged = {e["id"] for e in timeline(client, tenant, survivor["id"])}
    assert {*anon_events, *response.json()["event_ids"]} <= merged
    assert timeline(client, tenant, anon_id) == timeline(client, tenant, survivor["id"])


def test_merge_inside_one_batch(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/track/batch",
        headers=tenant.write,
        json={
            "events": [
                {"device_id": "dev_3", "event": "app_opened", "timestamp": T0},
                {"user_id": "user_3", "device_id": "dev_3", "event": "signed_up"},
            ]
        },
    )
    assert response.json()["accepted"] == 2, response.text
    (person,) = lookup(client, tenant, external_id="user_3")
    assert lookup(client, tenant, device_id="dev_3") == [person]
    assert person["device_ids"] == ["dev_3"]
    events_ = timeline(client, tenant, person["id"])
    assert set(response.json()["event_ids"]) <= {e["id"] for e in events_}
    assert sorted(e["event"] for e in events_) == ["@first_session", "app_opened", "signed_up"]
    assert {e["person_id"] for e in events_} == {person["id"]}


def test_device_of_another_user_moves_and_history_stays(client: TestClient, tenant: Tenant) -> None:
    a_event = track(client, tenant.write, external_id="user_a", device_id="dev_x", timestamp=T0)
    (person_a,) = lookup(client, tenant, external_id="user_a")
    b_event = track(
        client, tenant.write, external_id="user_b", device_id="dev_x", timestamp=T0 + 1_000
    )
    (person_b,) = lookup(client, tenant, external_id="user_b")
    assert person_b["id"] != person_a["id"]
    assert person_b["device_ids"] == ["dev_x"]
    assert lookup(client, tenant, device_id="dev_x") == [person_b]
    assert get_person(client, tenant, person_a["id"])["device_ids"] == []
    a_events = timeline(client, tenant, person_a["id"])
    assert a_event in {e["id"] for e in a_events}
    assert {e["device_id"] for e in a_events} == {"dev_x"}
    assert [e["id"] for e in timeline(client, tenant, person_b["id"])] == [b_event]


def test_device_moves_between_users_inside_one_batch(client: TestClient, tenant: Tenant) -> None:
    names = ["e1", "e2", "e3", "e4"]
    idents = [("user_a", "dev_x"), (None, "dev_x"), ("user_b", "dev_x"), (None, "dev_x")]
    items = [
        {"event": n, "device_id": d, "timestamp": T0 + i * 1_000} | ({"user_id": u} if u else {})
        for i, (n, (u, d)) in enumerate(zip(names, idents, strict=True))
    ]
    response = client.post("/api/v1/track/batch", headers=tenant.write, json={"events": items})
    assert response.json()["accepted"] == 4, response.text
    (person_a,) = lookup(client, tenant, external_id="user_a")
    (person_b,) = lookup(client, tenant, external_id="user_b")
    assert (person_a["device_ids"], person_b["device_ids"]) == ([], ["dev_x"])
    assert [e["event"] for e in timeline(client, tenant, person_a["id"])] == [
        "e2",
        "e1",
        "@first_session",
    ]
    assert [e["event"] for e in timeline(client, tenant, person_b["id"])] == ["e4", "e3"]


def test_group_ids_from_events(client: TestClient, tenant: Tenant) -> None:
    track(client, tenant.write, external_id="user_1", group_id="zeta")
    track(client, tenant.write, external_id="user_1", context={"group_id": "alpha"})
    track(client, tenant.write, external_id="user_1", group_id="zeta")
    track(client, tenant.write, external_id="user_2", group_id="other")
    (person,) = lookup(client, tenant, external_id="user_1")
    assert person["group_ids"] == ["alpha", "zeta"]


# --- erasure ----------------------------------------------------------------------------


@dataclass
class Victim:
    person_id: str
    merged_id: str
    needles: tuple[str, ...]


def _seed_victim(client: TestClient, tenant: Tenant) -> Victim:
    """A person with everything erasure must remove: events, devices, a merged-away person,
    groups, attributes and failed events naming its ids."""
    merged_id, _ = _anonymous_history(client, tenant, "victim_dev_anon")
    person_id = identify(
        client,
        tenant.write,
        {"external_id": "victim_user", "device_id": "victim_dev", "attributes": {"x": 1}},
    )
    track(client, tenant.write, external_id="victim_user", group_id="victim_group")
    track(client, tenant.write, user_id="victim_user", device_id="victim_dev_anon")
    for bad in (
        {"external_id": "victim_user", "event": "@nope"},
        {"device_id": "victim_dev", "event": ""},
    ):
        assert client.post("/api/v1/track", headers=tenant.write, json=bad).status_code == 400
    assert get_person(client, tenant, merged_id)["id"] == person_id
    needles = (person_id, merged_id, "victim_user", "victim_dev", "victim_dev_anon")
    return Victim(person_id, merged_id, needles)


def _seed_bystander(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    identify(client, tenant.write, {"external_id": "keeper", "device_id": "keeper_dev"})
    track(client, tenant.write, external_id="keeper", group_id="anon_group")
    assert (
        client.post(
            "/api/v1/track", headers=tenant.write, json={"external_id": "keeper", "event": "@no"}
        ).status_code
        == 400
    )
    (person,) = lookup(client, tenant, external_id="keeper")
    return person


def _rows_mentioning(db: Database, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    with db.read() as conn:
        for table in ERASABLE:
            for row in conn.execute(sa.select(table)):
                text = json.dumps(dict(row._mapping), default=str)
                found += [(table.name, n) for n in needles if n in text]
    return found


def test_erasure_removes_every_trace(client: TestClient, tenant: Tenant, db: Database) -> None:
    victim = _seed_victim(client, tenant)
    keeper = _seed_bystander(client, tenant)
    keeper_events = timeline(client, tenant, keeper["id"])
    assert _rows_mentioning(db, victim.needles)  # the check below would notice them

    response = client.delete(f"/api/v1/people/{victim.person_id}", headers=tenant.admin)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True

    for person_id in (victim.person_id, victim.merged_id):
        assert_error(
            client.get(f"/api/v1/people/{person_id}", headers=tenant.read), 404, "not_found"
        )
        timeline_response = client.get(f"/api/v1/people/{person_id}/events", headers=tenant.read)
        assert_error(timeline_response, 404, "not_found")
    assert lookup(client, tenant, external_id="victim_user") == []
    for device in ("victim_dev", "victim_dev_anon"):
        assert lookup(client, tenant, device_id=device) == []
    recent = client.get("/api/v1/events", headers=tenant.read, params={"limit": 500}).json()
    assert not [n for n in victim.needles if n in json.dumps(recent)]
    assert not [n for n in victim.needles if n in json.dumps(failed(client, tenant))]
    assert _rows_mentioning(db, victim.needles) == []

    assert get_person(client, tenant, keeper["id"]) == keeper
    assert timeline(client, tenant, keeper["id"]) == keeper_events
    assert [f["code"] for f in failed(client, tenant)] == ["reserved_event_name"]


def test_erasure_removes_refused_identify_naming_the_user(
    client: TestClient, tenant: Tenant
) -> None:
    refused = {"external_id": "victim_user", "attributes": {"a": [1, "x"]}}
    assert client.post("/api/v1/identify", headers=tenant.write, json=refused).status_code == 400
    person_id = identify(client, tenant.write, {"external_id": "victim_user"})
    response = client.delete(f"/api/v1/people/{person_id}", headers=tenant.admin)
    assert response.status_code == 200, response.text
    assert [f for f in failed(client, tenant) if "victim_user" in f["payload"]] == []


@pytest.mark.parametrize("key", ["write", "read", "both"])
def test_erasure_needs_admin(client: TestClient, tenant: Tenant, key: str) -> None:
    person_id = identify(client, tenant.write, {"external_id": "user_1"})
    response = client.delete(f"/api/v1/people/{person_id}", headers=getattr(tenant, key))
    assert_error(response, 403, "insufficient_scope")
    assert get_person(client, tenant, person_id)["id"] == person_id


def test_erasing_merged_away_id_erases_survivor(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    victim = _seed_victim(client, tenant)
    response = client.delete(f"/api/v1/people/{victim.merged_id}", headers=tenant.admin)
    assert response.status_code == 200, response.text
    response = client.get(f"/api/v1/people/{victim.person_id}", headers=tenant.read)
    assert_error(response, 404, "not_found")
    assert _rows_mentioning(db, victim.needles) == []


def test_erasing_unknown_person_is_404(client: TestClient, tenant: Tenant) -> None:
    identify(client, tenant.write, {"external_id": "user_1"})
    response = client.delete(
        "/api/v1/people/00000000-0000-0000-0000-000000000000", headers=tenant.admin
    )
    assert_error(response, 404, "not_found")
    assert len(lookup(client, tenant, external_id="user_1")) == 1


def test_erasing_twice_is_404(client: TestClient, tenant: Tenant) -> None:
    person_id = identify(client, tenant.write, {"external_id": "user_1"})
    assert client.delete(f"/api/v1/people/{person_id}", headers=tenant.admin).status_code == 200
    response = client.delete(f"/api/v1/people/{person_id}", headers=tenant.admin)
    assert_error(response, 404, "not_found")


def test_user_can_return_after_erasure(client: TestClient, tenant: Tenant) -> None:
    old = identify(client, tenant.write, {"external_id": "user_1", "device_id": "dev_1"})
    assert client.delete(f"/api/v1/people/{old}", headers=tenant.admin).status_code == 200
    new = identify(client, tenant.write, {"external_id": "user_1", "device_id": "dev_1"})
    assert new != old
    person = get_person(client, tenant, new)
    assert (person["external_id"], person["device_ids"], person["attributes"]) == (
        "user_1",
        ["dev_1"],
        {},
    )
    assert [e["event"] for e in timeline(client, tenant, new)] == ["@first_session"]


def _refuse_whole(client: TestClient, tenant: Tenant, body: bytes) -> None:
    response = client.post(
        "/api/v1/track/batch",
        headers={**tenant.write, "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 400, response.text


def test_erasure_finds_refused_requests_however_the_id_was_written(
    client: TestClient, tenant: Tenant
) -> None:
    accented = identify(client, tenant.write, {"external_id": "José/1"})
    numeric = identify(client, tenant.write, {"external_id": "12345"})
    identify(client, tenant.write, {"external_id": "JOSÉ/1"})
    erased = [
        json.dumps({"events": "x", "external_id": "José/1"}).encode(),  # ASCII escapes
        b'{"events": "x", "external_id": "Jos\\u00e9\\/1"}',  # and PHP's escaped slash
        b'{"events": "x", "user_id": 12345}',  # a number
        b'{"events": [{"user_id": 12345, "event": "a"',  # not JSON: cut short
    ]
    kept = [
        b'{"events": "x", "external_id": "JOS\\u00c9/1"}',  # another user (case differs)
        b'{"events": "x", "user_id": 123456}',
        b'{"events": [{"user_id": 123456, "event": "a"',
        b'{"events": "x", "external_id": "someone", "properties": {"qty": 12345}}',  # not an id
    ]
    for body in erased + kept:
        _refuse_whole(client, tenant, body)
    assert {f["payload"] for f in failed(client, tenant)} == {b.decode() for b in erased + kept}

    for person_id in (accented, numeric):
        response = client.delete(f"/api/v1/people/{person_id}", headers=tenant.admin)
        assert response.status_code == 200, response.text
    assert {f["payload"] for f in failed(client, tenant)} == {b.decode() for b in kept}
