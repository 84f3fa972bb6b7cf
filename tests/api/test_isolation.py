"""Workspaces never see each other's data: a key of workspace B reads nothing of A, and A's
people answer 404 to it, on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant

T0 = 1_705_314_600_000  # 2024-01-15T10:30:00Z


@dataclass
class World:
    """Two workspaces with data; ``a_marks`` are strings only A's data contains."""

    a: Tenant
    b: Tenant
    a_person: str
    a_merged: str
    b_person: str
    a_marks: list[str] = field(default_factory=list)


def track(client: TestClient, headers: dict[str, str], **event: Any) -> str:
    event.setdefault("event", "page_viewed")
    event.setdefault("timestamp", T0)
    response = client.post("/api/v1/track", headers=headers, json=event)
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


def identify(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = client.post("/api/v1/identify", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["person_id"])


def person(client: TestClient, tenant: Tenant, person_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/people/{person_id}", headers=tenant.read)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _refuse(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> None:
    assert client.post("/api/v1/track", headers=headers, json=body).status_code == 400


@pytest.fixture
def world(client: TestClient, make_tenant: Callable[[str], Tenant]) -> World:
    a, b = make_tenant("acme"), make_tenant("other")
    a_merged = identify(client, a.write, {"device_id": "a_dev_anon", "attributes": {"x": 1}})
    a_person = identify(
        client,
        a.write,
        {"external_id": "shared_user", "device_id": "a_dev", "attributes": {"owner": "acme"}},
    )
    a_events = [
        track(client, a.write, external_id="a_only_user", event="a_secret_event", group_id="a_g"),
        track(client, a.write, user_id="shared_user", device_id="a_dev_anon", event="linked"),
        track(client, a.write, external_id="shared_user", parameters={"a_param": 1}),
    ]
    _refuse(client, a.write, {"external_id": "shared_user", "event": "@a_refused"})
    _refuse(client, a.write, {"device_id": "a_dev", "event": ""})
    b_person = identify(client, b.write, {"external_id": "b_user", "attributes": {"o": "b"}})
    track(client, b.write, external_id="b_user", device_id="b_dev")
    _refuse(client, b.write, {"external_id": "b_user", "event": "@b_refused"})
    assert person(client, a, a_merged)["id"] == a_person
    marks = [a.id, a_person, a_merged, "a_only_user", "a_dev", "a_secret", "a_param", "a_g"]
    marks += [*a_events, "@a_refused", "acme"]
    return World(a, b, a_person, a_merged, b_person, marks)


@dataclass(frozen=True)
class ReadCase:
    name: str
    path: str
    params: dict[str, Any]
    key: str = "read"


READ_CASES = [
    ReadCase("people_by_a_user", "/api/v1/people", {"external_id": "a_only_user"}),
    ReadCase("people_by_shared_user", "/api/v1/people", {"external_id": "shared_user"}),
    ReadCase("people_by_a_device", "/api/v1/people", {"device_id": "a_dev"}),
    ReadCase("people_by_a_anon_device", "/api/v1/people", {"device_id": "a_dev_anon"}),
    ReadCase("recent_all", "/api/v1/events", {"limit": 500}),
    ReadCase("recent_admin", "/api/v1/events", {"limit": 500}, key="admin"),
    ReadCase("recent_by_a_user", "/api/v1/events", {"user_id": "a_only_user"}),
    ReadCase("recent_by_shared_user", "/api/v1/events", {"user_id": "shared_user"}),
    ReadCase("recent_by_a_device", "/api/v1/events", {"device_id": "a_dev"}),
    ReadCase("recent_by_a_event", "/api/v1/events", {"event": "a_secret_event"}),
    ReadCase("failed_all", "/api/v1/failed-events", {"limit": 500}),
    ReadCase("failed_admin", "/api/v1/failed-events", {"limit": 500}, key="admin"),
    ReadCase("failed_by_code", "/api/v1/failed-events", {"code": "reserved_event_name"}),
]


@pytest.mark.parametrize("case", READ_CASES, ids=lambda c: c.name)
def test_reads_with_b_key_see_nothing_of_a(
    client: TestClient, world: World, case: ReadCase
) -> None:
    response = client.get(case.path, headers=getattr(world.b, case.key), params=case.params)
    assert response.status_code == 200, response.text
    text = json.dumps(response.json())
    assert [mark for mark in world.a_marks if mark in text] == []


@pytest.mark.parametrize("case", READ_CASES[:4], ids=lambda c: c.name)
def test_the_same_lookups_work_with_a_key(client: TestClient, world: World, case: ReadCase) -> None:
    """The reads above do find A's data with A's own key, so their emptiness means something."""
    response = client.get(case.path, headers=world.a.read, params=case.params)
    assert [p["id"] for p in response.json()["people"]] != []


def test_b_sees_its_own_data(client: TestClient, world: World) -> None:
    recent = client.get("/api/v1/events", headers=world.b.read).json()["events"]
    assert {e["workspace_id"] for e in recent} == {world.b.id}
    assert {e["person_id"] for e in recent} == {world.b_person}
    failed = client.get("/api/v1/failed-events", headers=world.b.read).json()["failed_events"]
    assert [f["code"] for f in failed] == ["reserved_event_name"]
    assert "@b_refused" in failed[0]["payload"]


@pytest.mark.parametrize("which", ["a_person", "a_merged"])
@pytest.mark.parametrize("key", ["read", "admin"])
def test_a_person_is_404_for_b(client: TestClient, world: World, which: str, key: str) -> None:
    person_id = getattr(world, which)
    headers = getattr(world.b, key)
    for path in (f"/api/v1/people/{person_id}", f"/api/v1/people/{person_id}/events"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
        # the message may echo the id asked for, but nothing else of A (e.g. the survivor)
        leaks = [m for m in world.a_marks if m in response.text and m != person_id]
        assert leaks == []


@pytest.mark.parametrize("which", ["a_person", "a_merged"])
def test_b_cannot_delete_a_person(client: TestClient, world: World, which: str) -> None:
    before = person(client, world.a, world.a_person)
    timeline_before = client.get(
        f"/api/v1/people/{world.a_person}/events", headers=world.a.read
    ).json()
    response = client.delete(f"/api/v1/people/{getattr(world, which)}", headers=world.b.admin)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert person(client, world.a, world.a_person) == before
    timeline_after = client.get(f"/api/v1/people/{world.a_person}/events", headers=world.a.read)
    assert timeline_after.json() == timeline_before


def test_same_user_id_is_two_people(client: TestClient, world: World) -> None:
    b_shared = identify(client, world.b.write, {"external_id": "shared_user"})
    assert b_shared != world.a_person
    lookups = [
        client.get("/api/v1/people", headers=t.read, params={"external_id": "shared_user"}).json()
        for t in (world.a, world.b)
    ]
    assert [[p["id"] for p in found["people"]] for found in lookups] == [
        [world.a_person],
        [b_shared],
    ]


def test_identify_in_b_leaves_a_untouched(client: TestClient, world: World) -> None:
    before = person(client, world.a, world.a_person)
    a_events = client.get("/api/v1/events", headers=world.a.read, params={"limit": 500}).json()
    body = {
        "external_id": "shared_user",
        "device_id": "a_dev",
        "attributes": {"owner": "other", "extra": True},
    }
    b_shared = identify(client, world.b.write, body)
    track(client, world.b.write, user_id="shared_user", device_id="a_dev_anon")
    assert b_shared != world.a_person
    assert person(client, world.a, world.a_person) == before
    after = client.get("/api/v1/events", headers=world.a.read, params={"limit": 500}).json()
    assert after == a_events
    b_view = person(client, world.b, b_shared)
    assert b_view["attributes"] == {"owner": "other", "extra": True}
    assert b_view["device_ids"] == ["a_dev", "a_dev_anon"]


def test_erasure_in_a_leaves_b_untouched(client: TestClient, world: World) -> None:
    b_shared = identify(client, world.b.write, {"external_id": "shared_user", "device_id": "a_dev"})
    track(client, world.b.write, external_id="shared_user")
    before = person(client, world.b, b_shared)
    b_failed = client.get("/api/v1/failed-events", headers=world.b.read).json()
    response = client.delete(f"/api/v1/people/{world.a_person}", headers=world.a.admin)
    assert response.status_code == 200, response.text
    assert person(client, world.b, b_shared) == before
    assert client.get("/api/v1/failed-events", headers=world.b.read).json() == b_failed
