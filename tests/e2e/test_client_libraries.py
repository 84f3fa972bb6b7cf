"""The unmodified Segment and RudderStack Python libraries, installed from PyPI, pointed at a
real ``trackline serve``: only the host and the key change. What they send is read back through
the native API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e


def _person(api: httpx.Client, **query: str) -> dict[str, Any]:
    (person,) = api.get("/api/v1/people", params=query).json()["people"]
    return person  # type: ignore[no-any-return]


def _timeline(api: httpx.Client, person_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/people/{person_id}/events", params={"limit": 500}).json()
    return answer["events"]  # type: ignore[no-any-return]


def _send(client: Any) -> None:
    """The same calls through either library: identify, track, page, group, alias, screen."""
    client.identify("user_1", {"email": "ada@example.com", "plan": "pro"}, anonymous_id="anon_1")
    client.track(
        "user_1",
        "purchase_completed",
        {"order_id": "o1", "amount": 99.99, "items": [{"sku": "A", "qty": 2}]},
    )
    client.page("user_1", "Docs", "Pricing", {"url": "https://example.com/pricing"})
    client.group("user_1", "account_1", {"name": "Acme", "seats": 12})
    client.track(anonymous_id="anon_2", event="app_opened")
    client.alias("anon_2", "user_1")
    client.screen("user_1", "App", "Home")
    client.flush()


@pytest.mark.parametrize("library", ["segment", "rudderstack"])
def test_library_delivers_every_call(server: Server, library: str) -> None:
    errors: list[Exception] = []
    options = {
        "write_key": server.admin_key,
        "host": server.url,
        "on_error": lambda error, _batch: errors.append(error),
    }
    client = SegmentClient(**options) if library == "segment" else RudderClient(**options)
    _send(client)
    client.shutdown()
    assert errors == []

    with server.client() as api:
        person = _person(api, external_id="user_1")
        assert person["attributes"] == {"email": "ada@example.com", "plan": "pro"}
        assert sorted(person["device_ids"]) == ["anon_1", "anon_2"]  # alias merged anon_2
        assert person["group_ids"] == ["account_1"]
        events = {e["event"]: e for e in _timeline(api, person["id"])}
        failed = api.get("/api/v1/failed-events").json()["failed_events"]
    assert failed == []
    assert events["purchase_completed"]["parameters"] == {
        "order_id": "o1",
        "amount": 99.99,
        "items": [{"sku": "A", "qty": 2}],
    }
    assert events["page_viewed"]["parameters"] == {
        "name": "Pricing",
        "category": "Docs",
        "url": "https://example.com/pricing",
    }
    assert events["screen_viewed"]["parameters"] == {"name": "Home", "category": "App"}
    assert events["app_opened"]["device_id"] == "anon_2"
    assert events["purchase_completed"]["context"]["library"]["name"]
    assert "@first_session" in events


def test_segment_write_key_and_host_only(server: Server) -> None:
    """The issue's check: a script with only ``write_key`` and ``host`` set delivers identify
    and track, visible in the person's timeline with the traits."""
    import segment.analytics as analytics

    analytics.write_key = server.admin_key
    analytics.host = server.url
    try:
        analytics.identify("user_9", {"name": "Grace"})
        analytics.track("user_9", "signed_up", {"method": "email"})
        analytics.flush()
    finally:
        analytics.shutdown()
        analytics.default_client = None
    with server.client() as api:
        person = _person(api, external_id="user_9")
        names = [e["event"] for e in _timeline(api, person["id"])]
    assert person["attributes"] == {"name": "Grace"}
    assert names == ["signed_up"]
