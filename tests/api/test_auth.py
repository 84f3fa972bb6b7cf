"""Authentication and scopes on every native endpoint (spec 2), on both databases: 401 for a
missing, malformed, unknown or revoked key, 403 for a key without the scope, keys hashed at rest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.errors import Unavailable
from trackline.storage.database import Database
from trackline.storage.schema import api_keys
from trackline.workspaces.auth import KeyCache, Principal
from trackline.workspaces.service import hash_key
from trackline.workspaces.store import key_by_hash, revoke_key

NOBODY = "00000000-0000-0000-0000-000000000000"
WRITE, READ, ADMIN = "events:write", "events:read", "admin"
# Which of the tenant's keys hold each scope (admin implies every scope).
HOLDERS = {WRITE: ("write", "both", "admin"), READ: ("read", "both", "admin"), ADMIN: ("admin",)}
KEYS = ("write", "read", "both", "admin")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    scope: str
    ok: int = 200  # the status an allowed key gets (404: the person does not exist)
    body: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def call(self, client: TestClient, headers: dict[str, str]) -> httpx.Response:
        return client.request(
            self.method, self.path, headers=headers, json=self.body, params=self.params
        )


ENDPOINTS = [
    Endpoint("track", "POST", "/api/v1/track", WRITE, body={"external_id": "u", "event": "e"}),
    Endpoint(
        "batch",
        "POST",
        "/api/v1/track/batch",
        WRITE,
        body={"events": [{"external_id": "u", "event": "e"}]},
    ),
    Endpoint("identify", "POST", "/api/v1/identify", WRITE, body={"external_id": "u"}),
    Endpoint("people_get", "GET", f"/api/v1/people/{NOBODY}", READ, ok=404),
    Endpoint("people_list", "GET", "/api/v1/people", READ, params={"external_id": "u"}),
    Endpoint("people_delete", "DELETE", f"/api/v1/people/{NOBODY}", ADMIN, ok=404),
    Endpoint("timeline", "GET", f"/api/v1/people/{NOBODY}/events", READ, ok=404),
    Endpoint("events", "GET", "/api/v1/events", READ),
    Endpoint("failed_events", "GET", "/api/v1/failed-events", READ),
]
BY_NAME = {e.name: e for e in ENDPOINTS}
each_endpoint = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)


def secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def assert_unauthorized(response: httpx.Response, code: str) -> None:
    assert_error(response, 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def assert_nothing_stored(client: TestClient, tenant: Tenant) -> None:
    for path, name in (("/api/v1/events", "events"), ("/api/v1/failed-events", "failed_events")):
        assert client.get(path, headers=tenant.admin).json()[name] == []
    found = client.get("/api/v1/people", headers=tenant.admin, params={"external_id": "u"})
    assert found.json()["people"] == []


@each_endpoint
def test_missing_key_is_401(client: TestClient, tenant: Tenant, endpoint: Endpoint) -> None:
    assert_unauthorized(endpoint.call(client, {}), "missing_key")
    assert_nothing_stored(client, tenant)


@each_endpoint
def test_unknown_key_is_401(client: TestClient, tenant: Tenant, endpoint: Endpoint) -> None:
    for unknown in ("tl_" + "x" * 43, secret(tenant.admin) + "x", secret(tenant.admin)[:-1]):
        response = endpoint.call(client, {"Authorization": f"Bearer {unknown}"})
        assert_unauthorized(response, "invalid_key")
    assert_nothing_stored(client, tenant)


@dataclass(frozen=True)
class Malformed:
    name: str
    header: str  # "{s}" is replaced by the admin key's secret
    code: str


MALFORMED = [
    Malformed("no_scheme", "{s}", "missing_key"),
    Malformed("scheme_only", "Bearer", "missing_key"),
    Malformed("scheme_and_spaces", "Bearer    ", "missing_key"),
    Malformed("token_scheme", "Token {s}", "missing_key"),
    Malformed("basic_scheme", "Basic {b}", "missing_key"),  # Basic is for /v1/ (Segment) only
    Malformed("empty", "", "missing_key"),
    Malformed("two_tokens", "Bearer {s} {s}", "invalid_key"),
    Malformed("no_space", "Bearer{s}", "missing_key"),
]


@each_endpoint
def test_malformed_authorization_is_401(
    client: TestClient, tenant: Tenant, endpoint: Endpoint
) -> None:
    key = secret(tenant.admin)
    basic = base64.b64encode(f"{key}:".encode()).decode()
    for case in MALFORMED:
        header = case.header.format(s=key, b=basic)
        response = endpoint.call(client, {"Authorization": header})
        assert response.status_code == 401, (case.name, response.text)
        assert_unauthorized(response, case.code)
    assert_nothing_stored(client, tenant)


@each_endpoint
def test_key_without_scope_is_403(client: TestClient, tenant: Tenant, endpoint: Endpoint) -> None:
    lacking = [k for k in KEYS if k not in HOLDERS[endpoint.scope]]
    assert lacking
    for label in lacking:
        response = endpoint.call(client, getattr(tenant, label))
        assert_error(response, 403, "insufficient_scope")
    assert_nothing_stored(client, tenant)


@each_endpoint
def test_keys_with_scope_are_allowed(
    client: TestClient, tenant: Tenant, endpoint: Endpoint
) -> None:
    for label in HOLDERS[endpoint.scope]:
        response = endpoint.call(client, getattr(tenant, label))
        assert response.status_code == endpoint.ok, (label, response.text)


def test_bearer_scheme_is_case_insensitive(client: TestClient, tenant: Tenant) -> None:
    for scheme in ("bearer", "BEARER"):
        headers = {"Authorization": f"{scheme} {secret(tenant.read)}"}
        assert BY_NAME["events"].call(client, headers).status_code == 200


@dataclass(frozen=True)
class RevokeCase:
    name: str
    key: str
    endpoint: str
    other_key: str  # still works afterwards


REVOKE_CASES = [
    RevokeCase("write_key_on_track", "write", "track", "both"),
    RevokeCase("read_key_on_events", "read", "events", "both"),
    RevokeCase("both_key_on_identify", "both", "identify", "write"),
    RevokeCase("admin_key_on_delete", "admin", "people_delete", "admin"),
]


def _revoke(db: Database, headers: dict[str, str]) -> None:
    with db.write() as conn:
        record = key_by_hash(conn, key_hash=hash_key(secret(headers)))
        assert record is not None
        assert revoke_key(conn, key_id=record.id, now_ms=1_700_000_100_000)


@pytest.mark.parametrize("case", REVOKE_CASES, ids=lambda c: c.name)
def test_revoked_key_is_401(
    client: TestClient, tenant: Tenant, db: Database, case: RevokeCase
) -> None:
    endpoint = BY_NAME[case.endpoint]
    headers = getattr(tenant, case.key)
    assert endpoint.call(client, headers).status_code == endpoint.ok
    _revoke(db, headers)
    assert_unauthorized(endpoint.call(client, headers), "invalid_key")
    assert_unauthorized(BY_NAME["people_list"].call(client, headers), "invalid_key")
    if case.other_key != case.key:
        assert endpoint.call(client, getattr(tenant, case.other_key)).status_code == endpoint.ok


def test_revoking_one_key_leaves_the_others(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    _revoke(db, tenant.admin)
    assert_unauthorized(BY_NAME["events"].call(client, tenant.admin), "invalid_key")
    for label in ("read", "both"):
        assert BY_NAME["events"].call(client, getattr(tenant, label)).status_code == 200


def test_keys_are_stored_hashed(tenant: Tenant, db: Database) -> None:
    with db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(api_keys))]
    assert len(rows) == len(KEYS)
    for label in KEYS:
        plain = secret(getattr(tenant, label))
        digest = hashlib.sha256(plain.encode()).hexdigest()
        assert [r["key_hash"] for r in rows if r["key_hash"] == digest] == [digest]
        for row in rows:
            assert [c for c, v in row.items() if v is not None and plain in str(v)] == []
    assert all(len(r["key_hash"]) == 64 for r in rows)


class CountingCache(KeyCache):
    """The real cache and look-up, counting the look-ups (and failing the first ``fail``)."""

    def __init__(self, db: Database, ttl_s: float, fail: int = 0) -> None:
        super().__init__(db, ttl_s)
        self.lookups = 0
        self.fail = fail

    def _lookup(self, key_hash: str) -> Principal | None:
        self.lookups += 1
        if self.lookups <= self.fail:
            raise Unavailable("database unavailable")
        return super()._lookup(key_hash)


async def _together(cache: KeyCache, secret_: str, requests: int) -> list[Principal | None]:
    return await asyncio.gather(*(cache.principal(secret_) for _ in range(requests)))


@pytest.mark.parametrize("ttl_s", [0, 60])
def test_requests_missing_the_cache_together_share_one_lookup(
    db: Database, tenant: Tenant, ttl_s: float
) -> None:
    """When a key's entry expires under load, the requests in flight wait for one look-up
    instead of each querying the database."""
    cache = CountingCache(db, ttl_s)
    found = asyncio.run(_together(cache, secret(tenant.write), 50))
    assert cache.lookups == 1
    assert {p.workspace_id if p else None for p in found} == {tenant.id}
    assert asyncio.run(_together(cache, "tl_unknown", 20)) == [None] * 20
    assert cache.lookups == 2
    asyncio.run(_together(cache, secret(tenant.write), 5))
    assert cache.lookups == (3 if ttl_s == 0 else 2)  # cached for ttl_s, then looked up again


def test_a_failed_shared_lookup_fails_its_requests_and_the_next_one_retries(
    db: Database, tenant: Tenant
) -> None:
    cache = CountingCache(db, 60, fail=1)

    async def attempt() -> list[Principal | BaseException | None]:
        calls = (cache.principal(secret(tenant.read)) for _ in range(10))
        return await asyncio.gather(*calls, return_exceptions=True)

    first = asyncio.run(attempt())
    assert cache.lookups == 1 and all(isinstance(r, Unavailable) for r in first)
    second = asyncio.run(attempt())
    assert cache.lookups == 2
    assert all(isinstance(r, Principal) and r.workspace_id == tenant.id for r in second)
