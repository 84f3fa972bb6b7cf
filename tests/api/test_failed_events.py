"""``GET /api/v1/failed-events`` through the ASGI app, on both databases: every refused item,
single or in a batch, and every refused request is kept with its raw payload, reason, key and
time; filters, cursor paging, workspace isolation and the scope it needs."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.clock import FixedClock
from trackline.settings import Limits, Settings
from trackline.storage.database import Database
from trackline.storage.schema import api_keys

T0 = 1_713_500_000_000
T0_ISO = "2024-04-19T04:13:20.000Z"
FIELDS = {
    "id",
    "code",
    "message",
    "field",
    "payload",
    "payload_truncated",
    "source",
    "index",
    "key_id",
    "received_at",
}
FAILED = "/api/v1/failed-events"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def fixed(settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    """A client whose server reads time from ``clock``."""
    with TestClient(create_app(settings, clock=clock, migrate=False)) as test_client:
        yield test_client


@contextmanager
def limited_client(database_url: str, **limits: int) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, key_cache_s=0, limits=Limits(**limits))
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


def key_id(db: Database, tenant: Tenant, name: str) -> str:
    """The id of the tenant's key called ``name`` (the fixture names keys by their scope)."""
    query = sa.select(api_keys.c.id).where(
        api_keys.c.workspace_id == tenant.id, api_keys.c.name == name
    )
    with db.read() as conn:
        return str(conn.execute(query).scalar_one())


def failed(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = client.get(FAILED, headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"failed_events", "next_cursor"}
    assert all(item.keys() == FIELDS for item in body["failed_events"])
    return dict(body)


def failures(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    return list(failed(client, tenant, **params)["failed_events"])


def refuse(client: TestClient, tenant: Tenant, n: int = 0) -> None:
    """Send one event that is refused (no identity), numbered ``n`` in its parameters."""
    response = client.post(
        "/api/v1/track", headers=tenant.write, json={"event": "x", "parameters": {"n": n}}
    )
    assert response.status_code == 400, response.text


def n_of(kept: dict[str, Any]) -> int:
    """The number ``refuse`` put into a kept payload."""
    return int(json.loads(kept["payload"])["parameters"]["n"])


def refuse_json(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/v1/track", headers=tenant.write, content=b"{oops")
    assert response.status_code == 400, response.text


# --- what is kept --------------------------------------------------------------------------------


def test_refused_single_event(fixed: TestClient, tenant: Tenant, db: Database) -> None:
    body = {"event": "signed_up", "parameters": {"plan": "pro", "seats": 3, "ok": True}}
    response = fixed.post("/api/v1/track", headers=tenant.write, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    (kept,) = failures(fixed, tenant)
    assert isinstance(kept["id"], str) and kept["id"]
    assert json.loads(kept["payload"]) == body
    assert (kept["code"], kept["message"], kept["field"]) == (
        error["code"],
        error["message"],
        error["field"],
    )
    assert (kept["code"], kept["field"]) == ("missing_identity", "external_id")
    assert (kept["source"], kept["index"], kept["payload_truncated"]) == (
        "api/v1/track",
        None,
        False,
    )
    assert kept["key_id"] == key_id(db, tenant, "write")
    assert kept["received_at"] == T0_ISO


def test_refused_batch_items(fixed: TestClient, tenant: Tenant, db: Database) -> None:
    bad_1 = {"external_id": "u1", "event": "x", "parameters": {"a": [1, "b"], "f": 1.5}}
    bad_3 = {"external_id": "u1", "event": "@nope", "timestamp": "2024-01-01T00:00:00Z"}
    events = [{"external_id": "u1", "event": "ok"}, bad_1, {"device_id": "d", "event": "ok"}, bad_3]
    response = fixed.post("/api/v1/track/batch", headers=tenant.both, json={"events": events})
    answer = response.json()
    newest, oldest = failures(fixed, tenant)
    for kept, item, index in ((oldest, bad_1, 1), (newest, bad_3, 3)):
        (error,) = [e for e in answer["errors"] if e["index"] == index]
        assert json.loads(kept["payload"]) == item
        assert (kept["code"], kept["message"], kept["field"], kept["index"]) == (
            error["code"],
            error["message"],
            error["field"],
            index,
        )
        assert (kept["source"], kept["payload_truncated"]) == ("api/v1/track/batch", False)
        assert kept["key_id"] == key_id(db, tenant, "both")
        assert kept["received_at"] == T0_ISO
    assert (oldest["code"], oldest["field"]) == ("mixed_array", "events[1].parameters.a")
    assert (newest["code"], newest["field"]) == ("reserved_event_name", "events[3].event")


def test_batch_item_payload_is_that_item_only(client: TestClient, tenant: Tenant) -> None:
    item = {"userId": "ü", "type": "", "data": {"list": [{"k": None}], "n": 10, "x": 0.5}}
    events = [{"external_id": "u", "event": "ok"}, item]
    client.post("/api/v1/track/batch", headers=tenant.write, json={"events": events})
    (kept,) = failures(client, tenant)
    payload = json.loads(kept["payload"])
    assert payload == item
    assert type(payload["data"]["n"]) is int and type(payload["data"]["x"]) is float


@dataclass(frozen=True)
class RawCase:
    name: str
    path: str
    body: bytes
    status: int
    code: str
    field: str | None


RAW_CASES = [
    RawCase(
        "invalid_json",
        "/api/v1/track",
        b'{"external_id": "u1", "event": ',
        400,
        "invalid_json",
        None,
    ),
    RawCase(
        "invalid_json_batch", "/api/v1/track/batch", b'{"events": [1,', 400, "invalid_json", None
    ),
    RawCase(
        "invalid_batch",
        "/api/v1/track/batch",
        b'{"events": {"a": 1}}',
        400,
        "invalid_batch",
        "events",
    ),
    RawCase(
        "invalid_identify",
        "/api/v1/identify",
        b'{"attributes": {}}',
        400,
        "missing_identity",
        "external_id",
    ),
    RawCase("identify_not_json", "/api/v1/identify", b"attributes=1", 400, "invalid_json", None),
]


@pytest.mark.parametrize("case", RAW_CASES, ids=lambda c: c.name)
def test_refused_request_keeps_raw_body(
    fixed: TestClient, tenant: Tenant, db: Database, case: RawCase
) -> None:
    response = fixed.post(case.path, headers=tenant.write, content=case.body)
    assert response.status_code == case.status
    (kept,) = failures(fixed, tenant)
    assert kept["payload"] == case.body.decode()
    assert (kept["code"], kept["field"], kept["index"]) == (case.code, case.field, None)
    assert kept["message"] == response.json()["error"]["message"]
    assert (kept["source"], kept["payload_truncated"]) == (case.path.removeprefix("/"), False)
    assert (kept["key_id"], kept["received_at"]) == (key_id(db, tenant, "write"), T0_ISO)


def test_batch_too_large_is_kept(database_url: str, tenant: Tenant) -> None:
    body = json.dumps({"events": [{"external_id": "u", "event": "x"}] * 3})
    with limited_client(database_url, batch_events=2) as client:
        assert (
            client.post("/api/v1/track/batch", headers=tenant.write, content=body).status_code
            == 413
        )
        (kept,) = failures(client, tenant)
    assert (kept["code"], kept["field"], kept["payload"]) == ("batch_too_large", "events", body)


def test_payload_too_large_is_kept_truncated(
    database_url: str, tenant: Tenant, db: Database
) -> None:
    body = json.dumps({"external_id": "u1", "event": "x", "parameters": {"s": "y" * 100_000}})
    with limited_client(database_url, request_bytes=1024) as client:
        response = client.post("/api/v1/track", headers=tenant.write, content=body)
        assert response.status_code == 413
        (kept,) = failures(client, tenant)
    assert (kept["code"], kept["payload_truncated"]) == ("payload_too_large", True)
    assert kept["message"] == response.json()["error"]["message"]
    assert 1024 < len(kept["payload"]) <= 64 * 1024
    assert body.startswith(kept["payload"])
    assert (kept["source"], kept["index"]) == ("api/v1/track", None)
    assert kept["key_id"] == key_id(db, tenant, "write")


def test_gzip_body_too_large_is_kept_inflated(database_url: str, tenant: Tenant) -> None:
    body = json.dumps({"external_id": "u1", "event": "x", "parameters": {"s": "y" * 10_000}})
    headers = {**tenant.write, "Content-Encoding": "gzip"}
    with limited_client(database_url, request_bytes=1024) as client:
        client.post("/api/v1/track", headers=headers, content=gzip.compress(body.encode()))
        (kept,) = failures(client, tenant)
    assert kept["payload_truncated"] is True
    assert body.startswith(kept["payload"]) and len(kept["payload"]) > 1024


def test_raw_body_with_nul_byte_is_kept(
    client: TestClient,
    tenant: Tenant,
    database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    body = b'{"external_id": "u1", "event": "a\x00'
    response = client.post("/api/v1/track", headers=tenant.write, content=body)
    assert response.status_code == 400
    (kept,) = failures(client, tenant)
    # PostgreSQL text cannot hold NUL, so it is kept written as \u0000 (on every database).
    assert (kept["code"], kept["payload"]) == (
        "invalid_json",
        body.decode().replace("\x00", "\\u0000"),
    )


def test_accepted_and_deduplicated_events_are_not_failures(
    client: TestClient, tenant: Tenant
) -> None:
    body = {"external_id": "u1", "event": "x", "message_id": "m"}
    for _ in range(2):
        assert client.post("/api/v1/track", headers=tenant.write, json=body).status_code == 200
    assert failures(client, tenant) == []


# --- reading them --------------------------------------------------------------------------------


def test_newest_first(client: TestClient, tenant: Tenant) -> None:
    for n in range(4):
        refuse(client, tenant, n)
    assert [n_of(f) for f in failures(client, tenant)] == [3, 2, 1, 0]


def test_filter_by_code(client: TestClient, tenant: Tenant) -> None:
    refuse(client, tenant, 0)
    refuse_json(client, tenant)
    refuse(client, tenant, 1)
    assert [f["code"] for f in failures(client, tenant, code="invalid_json")] == ["invalid_json"]
    assert len(failures(client, tenant, code="missing_identity")) == 2
    assert failures(client, tenant, code="no_such_code") == []


@dataclass(frozen=True)
class Window:
    name: str
    params: dict[str, str]
    expected: list[int]


WINDOWS = [
    Window("since_ms", {"since": str(T0 + 1000)}, [2, 1]),
    Window("since_is_inclusive", {"since": str(T0 + 2000)}, [2]),
    Window("until_ms_is_exclusive", {"until": str(T0 + 1000)}, [0]),
    Window("since_and_until", {"since": str(T0 + 1000), "until": str(T0 + 2000)}, [1]),
    Window("since_iso", {"since": "2024-04-19T04:13:21.000Z"}, [2, 1]),
    Window("until_iso_offset", {"until": "2024-04-19T13:13:22+09:00"}, [1, 0]),
    Window("empty", {"since": str(T0 + 5000)}, []),
]


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_filter_by_time(
    fixed: TestClient, tenant: Tenant, clock: FixedClock, window: Window
) -> None:
    for n in range(3):
        refuse(fixed, tenant, n)
        clock.advance(1000)
    found = failures(fixed, tenant, **window.params)
    assert [n_of(f) for f in found] == window.expected


def test_code_and_time_filters_combine(
    fixed: TestClient, tenant: Tenant, clock: FixedClock
) -> None:
    refuse_json(fixed, tenant)
    clock.advance(1000)
    refuse(fixed, tenant)
    refuse_json(fixed, tenant)
    found = failures(fixed, tenant, code="invalid_json", since=str(T0 + 1000))
    assert [(f["code"], f["received_at"]) for f in found] == [
        ("invalid_json", "2024-04-19T04:13:21.000Z")
    ]


def test_cursor_paging(client: TestClient, tenant: Tenant) -> None:
    for n in range(7):
        refuse(client, tenant, n)
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = failed(client, tenant, **params)
        pages.append([n_of(f) for f in page["failed_events"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and len(pages) < 5
    assert pages == [[6, 5, 4], [3, 2, 1], [0]]


def test_paging_ends_on_a_full_page(client: TestClient, tenant: Tenant) -> None:
    for n in range(4):
        refuse(client, tenant, n)
    first = failed(client, tenant, limit=2)
    second = failed(client, tenant, limit=2, cursor=first["next_cursor"])
    assert [n_of(f) for f in second["failed_events"]] == [1, 0]
    assert second["next_cursor"] is None


def test_paging_with_a_code_filter(client: TestClient, tenant: Tenant) -> None:
    for n in range(3):
        refuse(client, tenant, n)
        refuse_json(client, tenant)
    first = failed(client, tenant, code="missing_identity", limit=2)
    second = failed(client, tenant, code="missing_identity", limit=2, cursor=first["next_cursor"])
    found = first["failed_events"] + second["failed_events"]
    assert [n_of(f) for f in found] == [2, 1, 0]
    assert second["next_cursor"] is None


# --- isolation and scope -------------------------------------------------------------------------


def test_other_workspace_sees_none(client: TestClient, tenant: Tenant, make_tenant: Any) -> None:
    other: Tenant = make_tenant("other")
    refuse(client, tenant)
    refuse_json(client, tenant)
    assert failures(client, other) == []
    refuse(client, other, 9)
    (mine_first, mine_second) = failures(client, tenant)
    assert {mine_first["code"], mine_second["code"]} == {"missing_identity", "invalid_json"}
    (theirs,) = failures(client, other)
    assert n_of(theirs) == 9


@dataclass(frozen=True)
class Access:
    name: str
    key: str | None
    status: int
    code: str | None


ACCESS = [
    Access("read", "read", 200, None),
    Access("both", "both", 200, None),
    Access("admin", "admin", 200, None),
    Access("write_only", "write", 403, "insufficient_scope"),
    Access("no_key", None, 401, "missing_key"),
]


@pytest.mark.parametrize("case", ACCESS, ids=lambda c: c.name)
def test_requires_events_read(client: TestClient, tenant: Tenant, case: Access) -> None:
    refuse(client, tenant)
    headers = getattr(tenant, case.key) if case.key else {}
    response = client.get(FAILED, headers=headers)
    assert response.status_code == case.status, response.text
    if case.code is None:
        assert len(response.json()["failed_events"]) == 1
    else:
        assert response.json() == {
            "success": False,
            "error": {
                "code": case.code,
                "message": response.json()["error"]["message"],
                "field": None,
            },
        }


def test_unknown_key(client: TestClient, tenant: Tenant) -> None:
    response = client.get(FAILED, headers={"Authorization": "Bearer tl_not_a_key"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_key"
