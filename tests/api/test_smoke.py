"""The main path through the API, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_track_then_read_timeline(client: TestClient, tenant: Tenant) -> None:
    sent = client.post(
        "/api/v1/track",
        headers=tenant.write,
        json={
            "external_id": "user_123",
            "event": "purchase_completed",
            "parameters": {"order_id": "order_789", "amount": 99.99, "qty": 2},
        },
    )
    assert sent.status_code == 200, sent.text
    event_id = sent.json()["event_id"]
    people = client.get("/api/v1/people", params={"external_id": "user_123"}, headers=tenant.read)
    person = people.json()["people"][0]
    timeline = client.get(f"/api/v1/people/{person['id']}/events", headers=tenant.read).json()
    assert timeline["total"] == 1
    (event,) = timeline["events"]
    assert event["id"] == event_id
    assert event["parameters"] == {"order_id": "order_789", "amount": 99.99, "qty": 2}
    assert isinstance(event["parameters"]["qty"], int)
