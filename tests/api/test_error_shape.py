"""Contract test (after datasette's ``tests/test_error_shape.py``): every error of every
endpoint in the app's OpenAPI leaves in the one shape
``{"success": false, "error": {"code", "message", "field"}}``: without a key, with an unknown
key, with a key lacking the scope, on an unknown path, with a wrong method, and with invalid
query parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.settings import Settings

SKIP = {"/health", "/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    query: frozenset[str]

    @property
    def url(self) -> str:
        """The path with every ``{param}`` filled in."""
        return re.sub(r"\{[^}]+\}", "nobody", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(openapi: dict[str, Any]) -> list[Operation]:
    """Every documented operation but the skipped paths."""
    found = []
    for path, item in openapi["paths"].items():
        if path in SKIP:
            continue
        for method, op in item.items():
            if method.upper() not in METHODS:
                continue
            query = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            found.append(Operation(method.upper(), path, frozenset(query)))
    return found


def _collected() -> list[Operation]:
    """The operations at collection time, from an app that is built but never started."""
    app = create_app(Settings(database_url="sqlite://", key_cache_s=0), migrate=False)
    return operations(app.openapi())


OPERATIONS = _collected()
PATHS = sorted({op.path for op in OPERATIONS})


def with_query(name: str) -> list[Operation]:
    return [op for op in OPERATIONS if name in op.query]


def assert_shape(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The error body, checked to be exactly the canonical shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and body.keys() == {"success", "error"}
    assert body["success"] is False
    error = body["error"]
    assert isinstance(error, dict) and error.keys() == {"code", "message", "field"}
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"])
    assert isinstance(error["message"], str) and error["message"]
    assert error["field"] is None or isinstance(error["field"], str)
    if code is not None:
        assert error["code"] == code
    return dict(error)


def call(
    client: TestClient,
    op: Operation,
    headers: dict[str, str],
    url: str | None = None,
    **params: Any,
) -> Any:
    body = b"{}" if op.method in ("POST", "PUT", "PATCH") else None
    return client.request(op.method, url or op.url, headers=headers, params=params, content=body)


def existing_url(client: TestClient, tenant: Tenant, op: Operation) -> str:
    """The path with ``{person_id}`` filled with a person that exists."""
    if "{person_id}" not in op.path:
        return op.url
    client.post("/api/v1/track", headers=tenant.write, json={"external_id": "u1", "event": "x"})
    found = client.get("/api/v1/people", headers=tenant.read, params={"external_id": "u1"})
    return op.path.replace("{person_id}", found.json()["people"][0]["id"])


def test_operations_found(client: TestClient) -> None:
    """The parametrised list is the running app's OpenAPI, and it is not empty."""
    assert operations(client.app.openapi()) == OPERATIONS  # type: ignore[attr-defined]
    assert len(OPERATIONS) >= 8
    assert all(op.path.startswith(("/api/v1/", "/v1/")) for op in OPERATIONS)


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_missing_key(client: TestClient, op: Operation) -> None:
    response = call(client, op, {})
    assert_shape(response, 401, "missing_key")
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


BAD_KEYS = [  # (Authorization header, code)
    ("Bearer tl_not_a_real_key", "invalid_key"),
    ("Basic dGxfbm90X2Ffa2V5Og==", "missing_key"),  # Basic is for the Segment endpoints only
    ("tl_bare_key_without_scheme", "missing_key"),
]


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
@pytest.mark.parametrize(("authorization", "code"), BAD_KEYS, ids=["unknown", "basic", "bare"])
def test_bad_key(client: TestClient, op: Operation, authorization: str, code: str) -> None:
    if authorization.startswith("Basic") and is_segment(op):
        code = "invalid_key"  # Segment's endpoints take the key as the Basic user name
    assert_shape(call(client, op, {"Authorization": authorization}), 401, code)


def is_segment(op: Operation) -> bool:
    return op.path.startswith("/v1/") and not op.path.startswith("/v1/projects/")


# Reads need events:read, writes events:write, deletes admin: each gets a key without it.
WRONG_SCOPE = {"GET": "write", "POST": "read", "PUT": "read", "PATCH": "read", "DELETE": "both"}


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_key_without_the_scope(client: TestClient, tenant: Tenant, op: Operation) -> None:
    response = call(client, op, getattr(tenant, WRONG_SCOPE[op.method]))
    assert_shape(response, 403, "insufficient_scope")


# --- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v1/track/extra", "/api/v2/track", "/api/v1/events/x"]
)
@pytest.mark.parametrize("keyed", [False, True], ids=["no_key", "admin_key"])
def test_unknown_path(client: TestClient, tenant: Tenant, path: str, keyed: bool) -> None:
    headers = tenant.admin if keyed else {}
    for method in ("GET", "POST"):
        assert_shape(client.request(method, path, headers=headers), 404, "not_found")


@pytest.mark.parametrize("path", PATHS)
def test_wrong_method(client: TestClient, tenant: Tenant, path: str) -> None:
    allowed = {op.method for op in OPERATIONS if op.path == path}
    url = re.sub(r"\{[^}]+\}", "nobody", path)
    for method in sorted(set(METHODS) - allowed):
        for headers in ({}, tenant.admin):
            response = client.request(method, url, headers=headers)
            assert_shape(response, 405, "method_not_allowed")


def test_wrong_method_names_the_allowed_ones(client: TestClient) -> None:
    response = client.get("/api/v1/track")
    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")


# --- query parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BadQuery:
    name: str
    params: dict[str, str]
    code: str
    field: str


BAD_LIMITS = [
    BadQuery("limit_zero", {"limit": "0"}, "invalid_request", "limit"),
    BadQuery("limit_negative", {"limit": "-1"}, "invalid_request", "limit"),
    BadQuery("limit_over_max", {"limit": "501"}, "invalid_request", "limit"),
    BadQuery("limit_text", {"limit": "ten"}, "invalid_request", "limit"),
    BadQuery("limit_float", {"limit": "2.5"}, "invalid_request", "limit"),
]
OTHER_BAD = [
    ("offset", BadQuery("offset_negative", {"offset": "-1"}, "invalid_request", "offset")),
    ("offset", BadQuery("offset_text", {"offset": "x"}, "invalid_request", "offset")),
    (
        "cursor",
        BadQuery("cursor_garbage", {"cursor": "!!not-a-cursor"}, "invalid_cursor", "cursor"),
    ),
    ("cursor", BadQuery("cursor_wrong_parts", {"cursor": "MToxOjE"}, "invalid_cursor", "cursor")),
    ("since", BadQuery("since_words", {"since": "yesterday"}, "invalid_timestamp", "since")),
    ("until", BadQuery("until_seconds", {"until": "1700000000"}, "invalid_timestamp", "until")),
]
QUERY_CASES = [
    pytest.param(op, case, id=f"{op}-{case.name}")
    for op in with_query("limit")
    for case in BAD_LIMITS
] + [
    pytest.param(op, case, id=f"{op}-{case.name}")
    for name, case in OTHER_BAD
    for op in with_query(name)
]


@pytest.mark.parametrize(("op", "case"), QUERY_CASES)
def test_invalid_query_parameter(
    client: TestClient, tenant: Tenant, op: Operation, case: BadQuery
) -> None:
    url = existing_url(client, tenant, op)
    error = assert_shape(call(client, op, tenant.admin, url, **case.params), 400, case.code)
    assert error["field"] == case.field


def test_list_endpoints_have_a_limit() -> None:
    """The table above reaches every list endpoint."""
    listed = {op.path for op in with_query("limit")}
    assert listed >= {
        "/api/v1/events",
        "/api/v1/failed-events",
        "/api/v1/people/{person_id}/events",
    }


# --- the rest of the error codes ------------------------------------------------------------------


def test_not_found_person(client: TestClient, tenant: Tenant) -> None:
    for path in ("/api/v1/people/nobody", "/api/v1/people/nobody/events"):
        assert_shape(client.get(path, headers=tenant.read), 404, "not_found")


def test_ingest_errors_share_the_shape(client: TestClient, tenant: Tenant) -> None:
    for path in ("/api/v1/track", "/api/v1/track/batch", "/api/v1/identify"):
        assert_shape(client.post(path, headers=tenant.write, content=b"{"), 400, "invalid_json")
    assert_shape(
        client.post("/api/v1/track", headers=tenant.write, json={"event": "x"}),
        400,
        "missing_identity",
    )
