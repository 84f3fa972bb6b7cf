"""Compatibility endpoints (spec 7) through the ASGI app, on both databases: FlareLane's track
call (seed 001) and the Segment HTTP Tracking API (auth styles, every call, batch and import,
dedup, people and groups, alias, gzip, skew correction, limits, isolation)."""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.clock import FixedClock, to_iso
from trackline.settings import Limits, Settings
from trackline.storage.database import Database
from trackline.storage.schema import groups

EVENT_ID = re.compile(r"^evt_[0-9a-f]{32}$")
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"  # beside the checkout
T0 = 1_705_320_000_000  # 2024-01-15T12:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE
# Seed 001 (FlareLane), the body of the curl example exactly as the document shows it.
FLARELANE_SEED_BODY = (
    '{ "events": [ { "subjectType": "user", "subjectId": "userid1", "type": "purchase", '
    '"data": { "productId": "123", "productName": "Product Name", "amount": 10000 } } ]}'
)


# --- helpers -----------------------------------------------------------------------------------


def secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def basic(user: str) -> dict[str, str]:
    """HTTP Basic with ``user`` as the whole ``user[:password]`` string."""
    return {"Authorization": "Basic " + base64.b64encode(user.encode()).decode()}


def seg(client: TestClient, kind: str, body: Any, headers: dict[str, str]) -> Response:
    return client.post(f"/v1/{kind}", headers=headers, json=body)


def seg_ok(client: TestClient, kind: str, body: Any, headers: dict[str, str]) -> None:
    """A Segment call that must succeed."""
    response = seg(client, kind, body, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


def flarelane(client: TestClient, project: str, body: Any, headers: dict[str, str]) -> Response:
    return client.post(f"/v1/projects/{project}/track", headers=headers, json=body)


def all_events(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """The workspace's events, newest first."""
    response = client.get("/api/v1/events", headers=tenant.read, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return list(response.json()["events"])


def names(events: list[dict[str, Any]]) -> list[str]:
    return sorted(e["event"] for e in events)


def failed(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/failed-events", headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["failed_events"])


def person(client: TestClient, tenant: Tenant, **params: str) -> dict[str, Any]:
    """The one person found by ``external_id=`` or ``device_id=``."""
    response = client.get("/api/v1/people", headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    [found] = response.json()["people"]
    return dict(found)


def nobody(client: TestClient, tenant: Tenant, **params: str) -> bool:
    response = client.get("/api/v1/people", headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    return response.json()["people"] == []


def assert_error(response: Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body.keys() == {"success", "error"} and body["success"] is False
    assert body["error"].keys() == {"code", "message", "field"}
    assert (body["error"]["code"], body["error"]["field"]) == (code, field)


def group_attributes(database_url: str, workspace_id: str, group_id: str) -> Any:
    db = Database(database_url)
    try:
        with db.read() as conn:
            return conn.execute(
                sa.select(groups.c.attributes).where(
                    groups.c.workspace_id == workspace_id, groups.c.id == group_id
                )
            ).scalar_one_or_none()
    finally:
        db.dispose()


@contextmanager
def app_client(
    database_url: str, *, clock: FixedClock | None = None, **limits: int
) -> Iterator[TestClient]:
    """A client around an app built here: a fixed clock and/or smaller limits."""
    settings = Settings(database_url=database_url, key_cache_s=0, limits=Limits(**limits))
    with TestClient(create_app(settings, clock=clock, migrate=False)) as test_client:
        yield test_client


def gzipped(body: Any) -> bytes:
    return gzip.compress(orjson.dumps(body))


GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


# --- FlareLane ---------------------------------------------------------------------------------


def test_flarelane_seed_body_is_the_documents() -> None:
    seeds = sorted(SEEDS.glob("001_*.txt"))
    if not seeds:
        pytest.skip("the seed documents are not in this checkout")
    assert f"--data '{FLARELANE_SEED_BODY}'" in seeds[0].read_text()


def test_flarelane_seed_example(client: TestClient, tenant: Tenant) -> None:
    headers = {**tenant.write, "accept": "application/json", "content-type": "application/json"}
    response = client.post(
        f"/v1/projects/{tenant.id}/track", headers=headers, content=FLARELANE_SEED_BODY
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"success", "accepted", "event_ids", "errors"}
    assert (body["success"], body["accepted"], body["errors"]) == (True, 1, [])
    [event_id] = body["event_ids"]
    assert EVENT_ID.match(event_id)
    [stored] = all_events(client, tenant, user_id="userid1")
    assert (stored["id"], stored["event"], stored["external_id"]) == (
        event_id,
        "purchase",
        "userid1",
    )
    assert stored["parameters"] == {
        "productId": "123",
        "productName": "Product Name",
        "amount": 10000,
    }


def test_flarelane_device_subject_and_timestamp(client: TestClient, tenant: Tenant) -> None:
    item = {
        "subjectType": "device",
        "subjectId": "dev-1",
        "type": "opened",
        "data": {"at": 1681721331085},
        "timestamp": "2024-04-19T14:23:56+09:00",
    }
    response = flarelane(client, tenant.id, {"events": [item]}, tenant.write)
    assert response.status_code == 200, response.text
    events = all_events(client, tenant, device_id="dev-1")
    assert names(events) == ["@first_session", "opened"]
    assert {e["timestamp"] for e in events} == {"2024-04-19T05:23:56.000Z"}
    assert {e["external_id"] for e in events} == {None}


def test_flarelane_refused_items_use_flarelane_names(client: TestClient, tenant: Tenant) -> None:
    items = [
        {"subjectType": "user", "subjectId": "u1", "type": "ok"},
        {"subjectType": "user", "subjectId": "u1", "type": "bad", "data": {"tags": ["a", 1]}},
        {"subjectType": "user", "type": "bad"},
        {"subjectType": "user", "subjectId": "u1"},
    ]
    response = flarelane(client, tenant.id, {"events": items}, tenant.write)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["accepted"]) == (False, 1)
    assert EVENT_ID.match(body["event_ids"][0]) and body["event_ids"][1:] == [None, None, None]
    assert [(e["index"], e["code"], e["field"]) for e in body["errors"]] == [
        (1, "mixed_array", "events[1].data.tags"),
        (2, "missing_identity", "events[2].subjectId"),
        (3, "missing_event_name", "events[3].type"),
    ]
    kept = sorted(failed(client, tenant), key=lambda f: f["index"])
    assert [(f["index"], f["source"], f["field"]) for f in kept] == [
        (1, "v1/projects/track", "events[1].data.tags"),
        (2, "v1/projects/track", "events[2].subjectId"),
        (3, "v1/projects/track", "events[3].type"),
    ]
    assert orjson.loads(kept[0]["payload"]) == items[1]
    assert names(all_events(client, tenant)) == ["ok"]


def test_flarelane_another_workspaces_project_is_404(
    client: TestClient, tenant: Tenant, make_tenant: Any
) -> None:
    other = make_tenant("other")
    body = orjson.loads(FLARELANE_SEED_BODY)
    for project in (other.id, "no-such-project"):
        assert_error(flarelane(client, project, body, tenant.write), 404, "not_found", "project_id")
    for who in (tenant, other):
        assert all_events(client, who) == []
        assert failed(client, who) == []


@pytest.mark.parametrize(
    ("scope", "status", "code"),
    [("read", 403, "insufficient_scope"), ("none", 401, "missing_key")],
)
def test_flarelane_auth(
    client: TestClient, tenant: Tenant, scope: str, status: int, code: str
) -> None:
    headers = tenant.read if scope == "read" else {}
    body = orjson.loads(FLARELANE_SEED_BODY)
    response = flarelane(client, tenant.id, body, headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert all_events(client, tenant) == []


def test_flarelane_gzip_and_limits(client: TestClient, tenant: Tenant) -> None:
    one = {"subjectType": "user", "subjectId": "u1", "type": "e"}
    response = client.post(
        f"/v1/projects/{tenant.id}/track",
        headers={**tenant.write, **GZIP},
        content=gzipped({"events": [one, one]}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    too_many = flarelane(client, tenant.id, {"events": [one] * 1001}, tenant.write)
    assert_error(too_many, 413, "batch_too_large", "events")
    assert len(all_events(client, tenant)) == 2


# --- Segment: authentication -------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """One row: how the key is sent, and the answer expected."""

    id: str
    scope: str  # which of the tenant's keys; "wrong" for an unknown one, "none" for no key
    style: str  # basic_colon, basic_bare, basic_password, bearer, write_key, none
    status: int = 200
    code: str | None = None


AUTHS = [
    Auth("basic_key_colon", "write", "basic_colon"),
    Auth("basic_key_without_colon", "write", "basic_bare"),
    Auth("basic_password_ignored", "write", "basic_password"),
    Auth("bearer", "write", "bearer"),
    Auth("write_key_in_body", "write", "write_key"),
    Auth("admin_key_basic", "admin", "basic_colon"),
    Auth("no_key", "none", "none", 401, "missing_key"),
    Auth("basic_wrong_key", "wrong", "basic_colon", 401, "invalid_key"),
    Auth("bearer_wrong_key", "wrong", "bearer", 401, "invalid_key"),
    Auth("write_key_wrong", "wrong", "write_key", 401, "invalid_key"),
    Auth("basic_read_only", "read", "basic_colon", 403, "insufficient_scope"),
    Auth("write_key_read_only", "read", "write_key", 403, "insufficient_scope"),
]


def credentials(tenant: Tenant, case: Auth) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, fields added to the body) for one auth row."""
    fixed = {"wrong": "tl_not_a_key", "none": ""}
    key = fixed[case.scope] if case.scope in fixed else secret(getattr(tenant, case.scope))
    return {
        "basic_colon": (basic(f"{key}:"), {}),
        "basic_bare": (basic(key), {}),
        "basic_password": (basic(f"{key}:anything"), {}),
        "bearer": ({"Authorization": f"Bearer {key}"}, {}),
        "write_key": ({}, {"writeKey": key}),
        "none": ({}, {}),
    }[case.style]


@pytest.mark.parametrize("case", AUTHS, ids=[c.id for c in AUTHS])
def test_segment_auth(client: TestClient, tenant: Tenant, case: Auth) -> None:
    headers, extra = credentials(tenant, case)
    response = seg(client, "track", {"userId": "u1", "event": "e", **extra}, headers)
    assert response.status_code == case.status, response.text
    if case.code is None:
        assert response.json() == {"success": True}
        assert names(all_events(client, tenant)) == ["e"]
    else:
        assert response.json()["error"]["code"] == case.code
        assert all_events(client, tenant) == []


@pytest.mark.parametrize("kind", ["batch", "import"])
def test_segment_batch_write_key_and_basic(client: TestClient, tenant: Tenant, kind: str) -> None:
    item = {"type": "track", "userId": "u1", "event": "e"}
    key = secret(tenant.write)
    seg_ok(client, kind, {"batch": [item], "writeKey": key}, {})
    seg_ok(client, kind, {"batch": [item]}, basic(f"{key}:"))
    assert_error(
        seg(client, kind, {"batch": [item]}, basic(f"{secret(tenant.read)}:")),
        403,
        "insufficient_scope",
        None,
    )
    assert len(all_events(client, tenant)) == 2


# --- Segment: each call ------------------------------------------------------------------------


@dataclass(frozen=True)
class EventCall:
    """One row: a Segment call that becomes an event."""

    kind: str
    body: dict[str, Any]
    event: str
    parameters: dict[str, Any] = field(default_factory=dict)


EVENT_CALLS = [
    EventCall(
        "track",
        {"userId": "u1", "event": "Order Completed", "properties": {"total": 30.5}},
        "Order Completed",
        {"total": 30.5},
    ),
    EventCall(
        "page",
        {"userId": "u1", "name": "Pricing", "category": "Docs", "properties": {"path": "/p"}},
        "page_viewed",
        {"name": "Pricing", "category": "Docs", "path": "/p"},
    ),
    EventCall(
        "screen",
        {"userId": "u1", "name": "Home", "properties": {"variant": "b"}},
        "screen_viewed",
        {"name": "Home", "variant": "b"},
    ),
]


@pytest.mark.parametrize("case", EVENT_CALLS, ids=[c.kind for c in EVENT_CALLS])
def test_segment_event_calls(client: TestClient, tenant: Tenant, case: EventCall) -> None:
    lenient = {"integrations": {"All": True}, "channel": "server", "_metadata": {"x": 1}}
    seg_ok(client, case.kind, {**case.body, **lenient, "context": {"ip": "::1"}}, tenant.write)
    [stored] = all_events(client, tenant, user_id="u1")
    assert (stored["event"], stored["parameters"]) == (case.event, case.parameters)
    assert stored["context"] == {"ip": "::1"}


def test_segment_identify_traits_then_null_deletes(client: TestClient, tenant: Tenant) -> None:
    traits = {"email": "ada@example.com", "plan": "pro", "age": 36}
    seg_ok(client, "identify", {"userId": "u1", "traits": traits}, tenant.write)
    assert person(client, tenant, external_id="u1")["attributes"] == traits
    seg_ok(client, "identify", {"userId": "u1", "traits": {"plan": None, "age": 37}}, tenant.write)
    assert person(client, tenant, external_id="u1")["attributes"] == {
        "email": "ada@example.com",
        "age": 37,
    }


def test_segment_identify_links_anonymous_id(client: TestClient, tenant: Tenant) -> None:
    seg_ok(client, "track", {"anonymousId": "anon-1", "event": "Viewed"}, tenant.write)
    seg_ok(client, "identify", {"userId": "u1", "anonymousId": "anon-1"}, tenant.write)
    found = person(client, tenant, device_id="anon-1")
    assert (found["external_id"], found["device_ids"]) == ("u1", ["anon-1"])
    assert names(all_events(client, tenant, user_id="u1")) == ["@first_session", "Viewed"]


def test_segment_group_traits_merge_and_link(
    client: TestClient, tenant: Tenant, database_url: str
) -> None:
    first = {"name": "Acme", "employees": 10, "industry": "tools"}
    seg_ok(client, "group", {"userId": "u1", "groupId": "g1", "traits": first}, tenant.write)
    second = {"employees": 12, "industry": None, "plan": "enterprise"}
    seg_ok(client, "group", {"userId": "u2", "groupId": "g1", "traits": second}, tenant.write)
    seg_ok(client, "group", {"userId": "u1", "groupId": "g2"}, tenant.write)
    assert group_attributes(database_url, tenant.id, "g1") == {
        "name": "Acme",
        "employees": 12,
        "plan": "enterprise",
    }
    assert group_attributes(database_url, tenant.id, "g2") == {}
    assert person(client, tenant, external_id="u1")["group_ids"] == ["g1", "g2"]
    assert person(client, tenant, external_id="u2")["group_ids"] == ["g1"]
    assert person(client, tenant, external_id="u1")["attributes"] == {}


def test_segment_alias_merges_anonymous_person(client: TestClient, tenant: Tenant) -> None:
    seg_ok(client, "track", {"anonymousId": "anon-1", "event": "Viewed"}, tenant.write)
    anonymous = person(client, tenant, device_id="anon-1")
    seg_ok(client, "identify", {"userId": "u1", "traits": {"name": "Ada"}}, tenant.write)
    seg_ok(client, "track", {"userId": "u1", "event": "Bought"}, tenant.write)
    user = person(client, tenant, external_id="u1")
    assert anonymous["id"] != user["id"]

    seg_ok(client, "alias", {"previousId": "anon-1", "userId": "u1"}, tenant.write)

    merged = person(client, tenant, device_id="anon-1")
    assert (merged["id"], merged["external_id"]) == (user["id"], "u1")
    assert merged["attributes"] == {"name": "Ada"}
    assert names(all_events(client, tenant, user_id="u1")) == ["@first_session", "Bought", "Viewed"]
    response = client.get(f"/api/v1/people/{anonymous['id']}", headers=tenant.read)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]


def test_segment_alias_of_unknown_previous_id_links_it(client: TestClient, tenant: Tenant) -> None:
    seg_ok(client, "alias", {"previousId": "anon-9", "userId": "u9"}, tenant.write)
    assert person(client, tenant, device_id="anon-9")["external_id"] == "u9"


def conflict_setup(client: TestClient, tenant: Tenant) -> None:
    seg_ok(client, "identify", {"userId": "u1"}, tenant.write)
    seg_ok(client, "identify", {"userId": "u2"}, tenant.write)


def test_segment_alias_conflict_single(client: TestClient, tenant: Tenant) -> None:
    conflict_setup(client, tenant)
    response = seg(client, "alias", {"previousId": "u2", "userId": "u1"}, tenant.write)
    assert_error(response, 400, "alias_conflict", "previousId")
    assert (
        person(client, tenant, external_id="u2")["id"]
        != person(client, tenant, external_id="u1")["id"]
    )
    [kept] = failed(client, tenant, code="alias_conflict")
    assert (kept["source"], kept["index"], kept["field"]) == ("v1/alias", None, "previousId")
    assert orjson.loads(kept["payload"])["previousId"] == "u2"


def test_segment_alias_conflict_in_batch(client: TestClient, tenant: Tenant) -> None:
    conflict_setup(client, tenant)
    items = [
        {"type": "track", "userId": "u1", "event": "ok"},
        {"type": "alias", "previousId": "u2", "userId": "u1"},
    ]
    response = seg(client, "batch", {"batch": items}, tenant.write)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is False
    [error] = body["errors"]
    assert (error["index"], error["code"]) == (1, "alias_conflict")
    assert names(all_events(client, tenant)) == ["ok"]
    [kept] = failed(client, tenant, code="alias_conflict")
    assert (kept["source"], kept["index"]) == ("v1/batch", 1)
    assert orjson.loads(kept["payload"]) == items[1]


def test_segment_alias_conflict_field_path_in_batch(client: TestClient, tenant: Tenant) -> None:
    conflict_setup(client, tenant)
    items = [
        {"type": "identify", "userId": "u3"},
        {"type": "alias", "previousId": "u2", "userId": "u1"},
    ]
    response = seg(client, "batch", {"batch": items}, tenant.write)
    assert [e["field"] for e in response.json()["errors"]] == ["batch[1].previousId"]
    assert [f["field"] for f in failed(client, tenant)] == ["batch[1].previousId"]


# --- Segment: batch and import -----------------------------------------------------------------


MIXED = [
    {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
    {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"trial": True}},
    {"type": "page", "userId": "u1", "name": "Home"},
    {"type": "screen", "anonymousId": "dev-1", "name": "Main"},
    {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
    {"type": "alias", "previousId": "dev-1", "userId": "u1"},
]


@pytest.mark.parametrize("kind", ["batch", "import"])
def test_segment_batch_mixed_types(
    client: TestClient, tenant: Tenant, database_url: str, kind: str
) -> None:
    seg_ok(client, kind, {"batch": MIXED, "context": {"library": {"name": "t"}}}, tenant.write)
    user = person(client, tenant, external_id="u1")
    assert user["attributes"] == {"plan": "pro"}
    assert user["group_ids"] == ["g1"]
    assert user["device_ids"] == ["dev-1"]
    events = all_events(client, tenant, user_id="u1")
    assert names(events) == ["@first_session", "Signed Up", "page_viewed", "screen_viewed"]
    assert all(e["context"] == {"library": {"name": "t"}} for e in events if e["event"][0] != "@")
    assert group_attributes(database_url, tenant.id, "g1") == {"name": "Acme"}


def test_segment_batch_refused_item_among_good_ones(client: TestClient, tenant: Tenant) -> None:
    items = [
        {"type": "track", "userId": "u1", "event": "a"},
        {"type": "track", "userId": "u1", "properties": {"x": 1}},
        {"type": "page", "userId": "u1", "properties": {"tags": ["a", 1]}},
        {"type": "page", "userId": "u1", "name": "ok"},
    ]
    response = seg(client, "batch", {"batch": items}, tenant.write)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"success", "errors"} and body["success"] is False
    assert [tuple(e) for e in body["errors"]] == [("index", "code", "message", "field")] * 2
    assert [(e["index"], e["code"], e["field"]) for e in body["errors"]] == [
        (1, "missing_event_name", "batch[1].event"),
        (2, "mixed_array", "batch[2].properties.tags"),
    ]
    assert names(all_events(client, tenant)) == ["a", "page_viewed"]
    kept = sorted(failed(client, tenant), key=lambda f: f["index"])
    assert [(f["source"], f["index"], f["code"]) for f in kept] == [
        ("v1/batch", 1, "missing_event_name"),
        ("v1/batch", 2, "mixed_array"),
    ]
    assert orjson.loads(kept[0]["payload"]) == items[1]


def test_segment_single_refusal_is_400_and_kept(client: TestClient, tenant: Tenant) -> None:
    response = seg(client, "track", {"userId": "u1", "properties": {"x": 1}}, tenant.write)
    assert_error(response, 400, "missing_event_name", "event")
    assert_error(
        seg(client, "identify", {"traits": {}}, tenant.write), 400, "missing_identity", "userId"
    )
    assert_error(
        seg(client, "group", {"userId": "u1"}, tenant.write), 400, "missing_group_id", "groupId"
    )
    kept = failed(client, tenant)
    assert sorted((f["source"], f["index"]) for f in kept) == [
        ("v1/group", None),
        ("v1/identify", None),
        ("v1/track", None),
    ]
    assert all_events(client, tenant) == []


def test_segment_message_id_dedup_across_requests(
    client: TestClient, tenant: Tenant, make_tenant: Any
) -> None:
    first = {"userId": "u1", "event": "e", "messageId": "m-1", "properties": {"n": 1}}
    seg_ok(client, "track", first, tenant.write)
    seg_ok(client, "track", {**first, "properties": {"n": 2}}, tenant.write)
    repeat = {**first, "type": "track", "properties": {"n": 3}}
    fresh = {"type": "track", "userId": "u1", "event": "e", "messageId": "m-2"}
    seg_ok(client, "batch", {"batch": [repeat, fresh, fresh]}, tenant.write)
    stored = all_events(client, tenant)
    assert sorted((e["parameters"].get("n", 0), e["event"]) for e in stored) == [(0, "e"), (1, "e")]
    other = make_tenant("other")
    seg_ok(client, "track", first, other.write)
    assert len(all_events(client, other)) == 1


# --- Segment: gzip, limits ---------------------------------------------------------------------


def test_segment_gzip_batch_with_write_key(client: TestClient, tenant: Tenant) -> None:
    body = {"batch": MIXED[1:3], "writeKey": secret(tenant.write), "sentAt": to_iso(T0)}
    response = client.post("/v1/batch", headers=GZIP, content=gzipped(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert names(all_events(client, tenant)) == ["Signed Up", "page_viewed"]


def test_segment_gzip_single_call(client: TestClient, tenant: Tenant) -> None:
    headers = {**basic(f"{secret(tenant.write)}:"), **GZIP}
    body = gzipped({"userId": "u1", "event": "zipped"})
    response = client.post("/v1/track", headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert names(all_events(client, tenant)) == ["zipped"]


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch", "/v1/identify", "flarelane"])
def test_gzip_limit_applies_to_decompressed_size(
    database_url: str, tenant: Tenant, path: str
) -> None:
    padding = "x" * 20_000  # compresses to a few dozen bytes
    if path == "flarelane":
        path = f"/v1/projects/{tenant.id}/track"
        body: Any = {"events": [{"subjectType": "user", "subjectId": "u1", "type": padding[:9]}]}
    elif path == "/v1/batch":
        body = {"batch": [{"type": "track", "userId": "u1", "event": "e", "pad": padding}]}
    else:
        body = {"userId": "u1", "event": "e", "pad": padding}
    body["padding"] = padding
    compressed = gzipped(body)
    assert len(compressed) < 4096
    with app_client(database_url, request_bytes=4096) as c:
        response = c.post(path, headers={**tenant.write, **GZIP}, content=compressed)
        assert_error(response, 413, "payload_too_large", None)
        assert all_events(c, tenant) == []


def test_segment_invalid_gzip_is_400(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/v1/batch", headers={**tenant.write, **GZIP}, content=b"not gzip")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_encoding"


def test_segment_limits(client: TestClient, tenant: Tenant) -> None:
    item = {"type": "track", "userId": "u1", "event": "e"}
    assert_error(
        seg(client, "batch", {"batch": [item] * 1001}, tenant.write),
        413,
        "batch_too_large",
        "batch",
    )
    big = {"userId": "u1", "event": "big", "properties": {"b": "x" * 33_000}}
    assert_error(seg(client, "track", big, tenant.write), 400, "event_too_large", None)
    response = seg(client, "batch", {"batch": [item, {**big, "type": "track"}]}, tenant.write)
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert [(e["index"], e["code"], e["field"]) for e in errors] == [
        (1, "event_too_large", "batch[1]")
    ]
    huge = b'{"batch": [], "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = client.post("/v1/batch", headers=tenant.write, content=huge)
    assert_error(response, 413, "payload_too_large", None)
    assert names(all_events(client, tenant)) == ["e"]


def test_segment_nul_in_properties_refused_on_both_databases(
    client: TestClient, tenant: Tenant
) -> None:
    body = {"userId": "u1", "event": "e", "properties": {"note": "a\u0000b"}}
    assert_error(
        seg(client, "track", body, tenant.write), 400, "invalid_character", "properties.note"
    )


def test_segment_nul_in_batch_refuses_only_that_item(client: TestClient, tenant: Tenant) -> None:
    items = [
        {"type": "track", "userId": "u1", "event": "good"},
        {"type": "identify", "userId": "u2", "traits": {"note": "a\u0000b"}},
    ]
    response = seg(client, "batch", {"batch": items}, tenant.write)
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert [(e["index"], e["code"], e["field"]) for e in errors] == [
        (1, "invalid_character", "batch[1].traits.note")
    ]
    assert names(all_events(client, tenant)) == ["good"]


def test_segment_batch_context_with_bad_item_context(client: TestClient, tenant: Tenant) -> None:
    items = [
        {"type": "track", "userId": "u1", "event": "good"},
        {"type": "track", "userId": "u1", "event": "e", "context": "web"},
    ]
    response = seg(client, "batch", {"batch": items, "context": {"ip": "::1"}}, tenant.write)
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert [(e["index"], e["code"], e["field"]) for e in errors] == [
        (1, "invalid_context", "batch[1].context")
    ]


# --- Segment: skew correction end to end -------------------------------------------------------


def test_segment_skew_correction_with_fixed_clock(database_url: str, tenant: Tenant) -> None:
    times = {"sentAt": to_iso(T0 + HOUR), "originalTimestamp": to_iso(T0 + HOUR - 5 * MINUTE)}
    with app_client(database_url, clock=FixedClock(T0)) as c:
        seg_ok(c, "track", {"userId": "u1", "event": "single", **times}, tenant.write)
        item = {"type": "page", "userId": "u1", "originalTimestamp": times["originalTimestamp"]}
        seg_ok(c, "batch", {"batch": [item], "sentAt": times["sentAt"]}, tenant.write)
        events = all_events(c, tenant)
    assert names(events) == ["page_viewed", "single"]
    assert {e["timestamp"] for e in events} == {to_iso(T0 - 5 * MINUTE)}
    assert {e["created_at"] for e in events} == {to_iso(T0)}


# --- isolation ---------------------------------------------------------------------------------


def test_segment_isolation(
    client: TestClient, tenant: Tenant, make_tenant: Any, database_url: str
) -> None:
    other = make_tenant("other")
    conflict_setup(client, tenant)
    seg_ok(client, "batch", {"batch": MIXED}, tenant.write)
    seg(client, "track", {"userId": "u1"}, tenant.write)  # a refusal, kept for tenant only
    assert all_events(client, other) == []
    assert failed(client, other) == []
    assert nobody(client, other, external_id="u1") and nobody(client, other, device_id="dev-1")
    seg_ok(client, "alias", {"previousId": "u2", "userId": "u1"}, other.write)  # no conflict here
    assert person(client, other, device_id="u2")["external_id"] == "u1"
    assert person(client, tenant, external_id="u2")["device_ids"] == []
    assert person(client, tenant, external_id="u1")["group_ids"] == ["g1"]
    assert person(client, other, external_id="u1")["group_ids"] == []
    seg_ok(client, "group", {"userId": "u1", "groupId": "g1", "traits": {"x": 1}}, other.write)
    assert group_attributes(database_url, tenant.id, "g1") == {"name": "Acme"}
    assert group_attributes(database_url, other.id, "g1") == {"x": 1}
