"""Reading events: a person's timeline in Flameup's shape (seed 003) and the Recent Events view
with cursor paging, on both databases."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.settings import Settings
from trackline.storage import timeline
from trackline.storage.database import Database

T0 = 1_705_314_600_000  # 2024-01-15T10:30:00Z
EVENT_KEYS = {
    "id",
    "workspace_id",
    "person_id",
    "external_id",
    "device_id",
    "event",
    "parameters",
    "group_id",
    "context",
    "timestamp",
    "created_at",
}


@pytest.fixture
def settings(timeline_settings: Settings) -> Settings:
    """Every test here runs with the timeline entries unmoved and moved (``conftest``)."""
    return timeline_settings


def batch(client: TestClient, tenant: Tenant, items: list[dict[str, Any]]) -> list[str]:
    """Send events (user_1 unless an identity is given) and return their ids in order."""
    for item in items:
        if not {"external_id", "user_id", "device_id"} & set(item):
            item["external_id"] = "user_1"
        item.setdefault("event", "page_viewed")
    response = client.post("/api/v1/track/batch", headers=tenant.write, json={"events": items})
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == [], response.text
    return list(response.json()["event_ids"])


def person_of(client: TestClient, tenant: Tenant, user: str = "user_1") -> str:
    response = client.get("/api/v1/people", headers=tenant.read, params={"external_id": user})
    (person,) = response.json()["people"]
    return str(person["id"])


def person_events(
    client: TestClient, tenant: Tenant, person_id: str, query: dict[str, Any] | str = ""
) -> dict[str, Any]:
    path = f"/api/v1/people/{person_id}/events"
    if isinstance(query, str):
        response = client.get(path + query, headers=tenant.read)
    else:
        response = client.get(path, headers=tenant.read, params=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


def recent(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/events", headers=tenant.read, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids_of(found: dict[str, Any]) -> list[str]:
    return [e["id"] for e in found["events"]]


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == code
    if field is not None:
        assert response.json()["error"]["field"] == field


# --- person timeline ---------------------------------------------------------------------


def test_default_limit_is_50_with_total(client: TestClient, tenant: Tenant) -> None:
    sent = batch(client, tenant, [{"timestamp": T0 + i} for i in range(60)])
    found = person_events(client, tenant, person_of(client, tenant))
    assert found["total"] == 60
    assert ids_of(found) == sent[::-1][:50]


def test_limit_500_is_allowed(client: TestClient, tenant: Tenant) -> None:
    sent = batch(client, tenant, [{"timestamp": T0 + i} for i in range(3)])
    found = person_events(client, tenant, person_of(client, tenant), {"limit": 500})
    assert (ids_of(found), found["total"]) == (sent[::-1], 3)


@dataclass(frozen=True)
class BadQuery:
    name: str
    params: dict[str, Any]
    code: str
    field: str


TIMELINE_BAD_QUERIES = [
    BadQuery("limit_501", {"limit": 501}, "invalid_request", "limit"),
    BadQuery("limit_0", {"limit": 0}, "invalid_request", "limit"),
    BadQuery("limit_text", {"limit": "ten"}, "invalid_request", "limit"),
    BadQuery("negative_offset", {"offset": -1}, "invalid_request", "offset"),
    BadQuery("since_text", {"since": "yesterday"}, "invalid_timestamp", "since"),
    BadQuery("until_date_only", {"until": "2024-01-15"}, "invalid_timestamp", "until"),
    BadQuery("since_seconds", {"since": "1705314600"}, "invalid_timestamp", "since"),
]


@pytest.mark.parametrize("case", TIMELINE_BAD_QUERIES, ids=lambda c: c.name)
def test_timeline_refuses_bad_query(client: TestClient, tenant: Tenant, case: BadQuery) -> None:
    batch(client, tenant, [{}])
    response = client.get(
        f"/api/v1/people/{person_of(client, tenant)}/events",
        headers=tenant.read,
        params=case.params,
    )
    assert_error(response, 400, case.code, case.field)


def test_offset_paging(client: TestClient, tenant: Tenant) -> None:
    sent = batch(client, tenant, [{"timestamp": T0 + i * 1_000} for i in range(7)])
    person_id = person_of(client, tenant)
    pages = [
        person_events(client, tenant, person_id, {"limit": 3, "offset": offset})
        for offset in (0, 3, 6, 9)
    ]
    assert [p["total"] for p in pages] == [7, 7, 7, 7]
    assert [len(p["events"]) for p in pages] == [3, 3, 1, 0]
    assert [i for p in pages for i in ids_of(p)] == sent[::-1]


def test_event_filter_counts_only_that_event(client: TestClient, tenant: Tenant) -> None:
    names = ["signed_up", "purchase_completed", "page_viewed", "purchase_completed"]
    sent = batch(client, tenant, [{"event": n, "timestamp": T0 + i} for i, n in enumerate(names)])
    found = person_events(
        client, tenant, person_of(client, tenant), {"event": "purchase_completed", "limit": 1}
    )
    assert (ids_of(found), found["total"]) == ([sent[3]], 2)


@dataclass(frozen=True)
class WindowCase:
    name: str
    params: dict[str, str]
    expected: list[int]  # offsets (seconds after T0) of the events found, newest first


WINDOW_CASES = [
    WindowCase("since_ms_inclusive", {"since": str(T0 + 1_000)}, [3, 2, 1]),
    WindowCase("since_iso_inclusive", {"since": "2024-01-15T10:30:01Z"}, [3, 2, 1]),
    WindowCase("since_iso_millis", {"since": "2024-01-15T10:30:01.001Z"}, [3, 2]),
    WindowCase("since_iso_offset", {"since": "2024-01-15T19:30:02+09:00"}, [3, 2]),
    WindowCase("since_iso_no_zone_is_utc", {"since": "2024-01-15T10:30:02"}, [3, 2]),
    WindowCase("until_ms_exclusive", {"until": str(T0 + 2_000)}, [1, 0]),
    WindowCase("until_iso_exclusive", {"until": "2024-01-15T10:30:02Z"}, [1, 0]),
    WindowCase("until_iso_just_after", {"until": "2024-01-15T10:30:02.001Z"}, [2, 1, 0]),
    WindowCase("window_mixed", {"since": str(T0 + 1_000), "until": "2024-01-15T10:30:03Z"}, [2, 1]),
    WindowCase("empty_window", {"since": str(T0 + 2_000), "until": str(T0 + 2_000)}, []),
    WindowCase("after_everything", {"since": "2030-01-01T00:00:00Z"}, []),
]


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: c.name)
def test_timeline_since_until(client: TestClient, tenant: Tenant, case: WindowCase) -> None:
    sent = batch(client, tenant, [{"timestamp": T0 + i * 1_000} for i in range(4)])
    found = person_events(client, tenant, person_of(client, tenant), case.params)
    assert ids_of(found) == [sent[i] for i in case.expected]
    assert found["total"] == len(case.expected)


def test_newest_first_ties_in_arrival_order(client: TestClient, tenant: Tenant) -> None:
    older = batch(client, tenant, [{"timestamp": T0 - 1}])
    first = batch(client, tenant, [{"timestamp": T0, "event": "a"}])
    pair = batch(client, tenant, [{"timestamp": T0, "event": "b"}, {"timestamp": T0, "event": "c"}])
    newer = batch(client, tenant, [{"timestamp": T0 + 1}])
    last = batch(client, tenant, [{"timestamp": T0, "event": "d"}])
    found = person_events(client, tenant, person_of(client, tenant))
    assert ids_of(found) == [*newer, *last, pair[1], pair[0], *first, *older]


def test_a_timeline_read_joins_both_tables(
    client: TestClient, tenant: Tenant, settings: Settings, db: Database
) -> None:
    """Three events, then one: moved every 2 events, the first three are moved (after their
    commit, before the next one) and the fourth is not, so the person's entries are in both
    tables (SQLite; PostgreSQL's index on events has them all); every read finds them as one
    timeline, filtered and paged."""
    older = batch(
        client,
        tenant,
        [{"timestamp": T0 + i, "event": n} for i, n in ((0, "e0"), (2, "e1"), (4, "e0"))],
    )
    newest = batch(client, tenant, [{"timestamp": T0 + 3, "event": "e1"}])
    with db.read() as conn:
        tables = timeline.tables(db.dialect)
        counts = [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in tables]
    if not timeline.in_tables(db.dialect):
        assert counts == [4]
    else:
        assert counts == ([3, 1] if settings.writer.timeline_move_events == 2 else [0, 4])
    person_id = person_of(client, tenant)
    everything = [older[2], *newest, older[1], older[0]]

    found = person_events(client, tenant, person_id, {"limit": 3})
    assert (ids_of(found), found["total"]) == (everything[:3], 4)
    found = person_events(client, tenant, person_id, {"limit": 2, "offset": 1, "event": "e0"})
    assert (ids_of(found), found["total"]) == ([older[0]], 2)
    found = person_events(client, tenant, person_id, {"since": T0 + 2, "until": T0 + 4})
    assert ids_of(found) == [*newest, older[1]]
    pages, cursor = [], None
    while True:
        page = recent(
            client, tenant, user_id="user_1", limit=1, **({"cursor": cursor} if cursor else {})
        )
        pages += ids_of(page)
        if not (cursor := page["next_cursor"]):
            break
    assert pages == everything
    first_seen = client.get(f"/api/v1/people/{person_id}", headers=tenant.read).json()
    assert (first_seen["first_seen"], first_seen["last_seen"]) == (
        "2024-01-15T10:30:00.000Z",
        "2024-01-15T10:30:00.004Z",
    )


def test_flameup_seed_query(client: TestClient, tenant: Tenant) -> None:
    """The exact request of seed 003's "Get Person Events" example."""
    items = [{"sku": "PROD-001", "name": "Widget", "quantity": 2}]
    parameters = {"order_id": "order_789", "amount": 99.99, "currency": "USD", "items": items}
    sent = batch(
        client,
        tenant,
        [
            {"event": "purchase_completed", "timestamp": "2023-12-31T23:59:59Z"},
            {"event": "purchase_completed", "parameters": parameters, "timestamp": T0},
            {"event": "page_viewed", "timestamp": "2024-02-01T00:00:00Z"},
        ],
    )
    person_id = person_of(client, tenant)
    found = person_events(
        client,
        tenant,
        person_id,
        "?limit=100&event=purchase_completed&since=2024-01-01T00:00:00Z",
    )
    assert found["total"] == 1
    (event,) = found["events"]
    assert set(event) == EVENT_KEYS
    assert event["id"] == sent[1]
    assert event["person_id"] == person_id
    assert event["workspace_id"] == tenant.id
    assert (event["event"], event["external_id"], event["device_id"]) == (
        "purchase_completed",
        "user_1",
        None,
    )
    assert event["parameters"] == parameters
    assert event["timestamp"] == "2024-01-15T10:30:00.000Z"
    assert event["created_at"].endswith("Z")


def test_timeline_of_unknown_person_is_404(client: TestClient, tenant: Tenant) -> None:
    response = client.get(
        "/api/v1/people/00000000-0000-0000-0000-000000000000/events", headers=tenant.read
    )
    assert_error(response, 404, "not_found")


# --- recent events -----------------------------------------------------------------------


def test_recent_user_filter_includes_merged_anonymous_events(
    client: TestClient, tenant: Tenant
) -> None:
    anonymous = batch(client, tenant, [{"device_id": "dev_1", "timestamp": T0 + i} for i in (1, 2)])
    own = batch(client, tenant, [{"external_id": "user_1", "timestamp": T0 + 3}])
    batch(client, tenant, [{"external_id": "user_2", "timestamp": T0 + 4}])
    link = batch(client, tenant, [{"user_id": "user_1", "device_id": "dev_1", "timestamp": T0 + 5}])
    found = ids_of(recent(client, tenant, user_id="user_1", event="page_viewed"))
    assert found == [*link, *own, *anonymous[::-1]]
    everything = recent(client, tenant, user_id="user_1")["events"]
    assert {e["person_id"] for e in everything} == {person_of(client, tenant)}
    assert [e["event"] for e in everything].count("@first_session") == 1


@dataclass(frozen=True)
class RecentCase:
    name: str
    params: dict[str, str]
    expected: list[int]  # positions in the sent list, newest first


RECENT_CASES = [
    RecentCase("all", {}, [5, 4, 3, 2, 1, 0]),
    RecentCase("device_id", {"device_id": "dev_a"}, [4, 1]),
    RecentCase("event", {"event": "signed_up"}, [3, 0]),
    RecentCase("user_id", {"user_id": "user_2"}, [5, 2]),
    RecentCase("user_and_event", {"user_id": "user_1", "event": "signed_up"}, [3, 0]),
    RecentCase("since_ms", {"since": str(T0 + 3_000)}, [5, 4, 3]),
    RecentCase("since_iso", {"since": "2024-01-15T10:30:03Z"}, [5, 4, 3]),
    RecentCase("until_ms", {"until": str(T0 + 2_000)}, [1, 0]),
    RecentCase("until_iso", {"until": "2024-01-15T10:30:02Z"}, [1, 0]),
    RecentCase("window", {"since": str(T0 + 1_000), "until": "2024-01-15T10:30:04Z"}, [3, 2, 1]),
    RecentCase("unknown_user", {"user_id": "nobody"}, []),
    RecentCase("unknown_device", {"device_id": "nobody"}, []),
]


@pytest.mark.parametrize("case", RECENT_CASES, ids=lambda c: c.name)
def test_recent_filters(client: TestClient, tenant: Tenant, case: RecentCase) -> None:
    rows = [
        ("user_1", None, "signed_up"),
        ("user_1", "dev_a", "page_viewed"),
        ("user_2", None, "page_viewed"),
        ("user_1", None, "signed_up"),
        ("user_1", "dev_a", "page_viewed"),
        ("user_2", None, "logged_in"),
    ]
    items = [
        {"external_id": u, "event": e, "timestamp": T0 + i * 1_000}
        | ({"device_id": d} if d else {})
        for i, (u, d, e) in enumerate(rows)
    ]
    sent = batch(client, tenant, items)
    found = recent(client, tenant, **case.params)
    assert found["next_cursor"] is None
    # dev_a's first event also records @first_session; it is not what these cases are about
    found["events"] = [e for e in found["events"] if e["event"] != "@first_session"]
    assert ids_of(found) == [sent[i] for i in case.expected]


def test_recent_unknown_user_is_empty(client: TestClient, tenant: Tenant) -> None:
    batch(client, tenant, [{}])
    assert recent(client, tenant, user_id="nobody") == {"events": [], "next_cursor": None}


def test_cursor_paging_visits_every_event_once(client: TestClient, tenant: Tenant) -> None:
    # Ties on purpose: several events share a timestamp, so the cursor must carry the order.
    items = [
        {"timestamp": T0 + (i // 3) * 1_000, "external_id": f"user_{i % 4}"} for i in range(25)
    ]
    sent = batch(client, tenant, items)
    expected = sorted(range(25), key=lambda i: (items[i]["timestamp"], i), reverse=True)
    pages, cursor = [], None
    while True:
        page = recent(client, tenant, limit=10, **({"cursor": cursor} if cursor else {}))
        pages.append(ids_of(page))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the cursor does not end"
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == [sent[i] for i in expected]
    assert ids_of(recent(client, tenant, limit=500)) == [sent[i] for i in expected]


def test_cursor_paging_keeps_filters(client: TestClient, tenant: Tenant) -> None:
    items = [{"event": "a" if i % 2 else "b", "timestamp": T0 + i} for i in range(9)]
    sent = batch(client, tenant, items)
    first = recent(client, tenant, event="a", limit=3)
    second = recent(client, tenant, event="a", limit=3, cursor=first["next_cursor"])
    assert ids_of(first) + ids_of(second) == [sent[i] for i in (7, 5, 3, 1)]
    assert second["next_cursor"] is None


def test_exact_page_has_no_next_cursor(client: TestClient, tenant: Tenant) -> None:
    batch(client, tenant, [{"timestamp": T0 + i} for i in range(4)])
    first = recent(client, tenant, limit=2)
    second = recent(client, tenant, limit=2, cursor=first["next_cursor"])
    assert (len(second["events"]), second["next_cursor"]) == (2, None)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    ["!!!", "not-a-cursor", "", _b64("12"), _b64("1:2:3"), _b64("a:b"), "%%%"],
    ids=["punctuation", "words", "empty", "one_part", "three_parts", "not_numbers", "percent"],
)
def test_bad_cursor_is_400(client: TestClient, tenant: Tenant, cursor: str) -> None:
    batch(client, tenant, [{}])
    response = client.get("/api/v1/events", headers=tenant.read, params={"cursor": cursor})
    assert_error(response, 400, "invalid_cursor", "cursor")


RECENT_BAD_QUERIES = [
    BadQuery("limit_501", {"limit": 501}, "invalid_request", "limit"),
    BadQuery("limit_0", {"limit": 0}, "invalid_request", "limit"),
    BadQuery("since_text", {"since": "soon"}, "invalid_timestamp", "since"),
    BadQuery("until_text", {"until": "later"}, "invalid_timestamp", "until"),
]


@pytest.mark.parametrize("case", RECENT_BAD_QUERIES, ids=lambda c: c.name)
def test_recent_refuses_bad_query(client: TestClient, tenant: Tenant, case: BadQuery) -> None:
    response = client.get("/api/v1/events", headers=tenant.read, params=case.params)
    assert_error(response, 400, case.code, case.field)


HUGE = str(2**63)  # one past the largest BIGINT


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/events", {"since": HUGE}),
        ("/api/v1/events", {"until": "9" * 20}),
        ("/api/v1/events", {"cursor": _b64(f"{HUGE}:1")}),
        ("/api/v1/people/{person}/events", {"since": HUGE}),
        ("/api/v1/people/{person}/events", {"offset": "9" * 20}),
        ("/api/v1/failed-events", {"since": HUGE}),
        ("/api/v1/failed-events", {"cursor": _b64(HUGE)}),
    ],
    ids=[
        "recent_since",
        "recent_until",
        "recent_cursor",
        "timeline_since",
        "timeline_offset",
        "failed_since",
        "failed_cursor",
    ],
)
def test_out_of_range_numbers_are_400(
    settings: Settings, tenant: Tenant, path: str, params: dict[str, str]
) -> None:
    app = create_app(settings, migrate=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        batch(client, tenant, [{}])
        url = path.format(person=person_of(client, tenant))
        response = client.get(url, headers=tenant.read, params=params)
    assert response.status_code == 400, response.text


def test_largest_values_are_accepted(client: TestClient, tenant: Tenant) -> None:
    batch(client, tenant, [{}])
    last_ms = "253402300799999"  # 9999-12-31T23:59:59.999Z, the latest time accepted
    assert recent(client, tenant, since=last_ms) == {"events": [], "next_cursor": None}
    largest = str(2**63 - 1)
    found = person_events(client, tenant, person_of(client, tenant), {"offset": largest})
    assert found == {"events": [], "total": 1}


def test_recent_event_shape(client: TestClient, tenant: Tenant) -> None:
    (sent,) = batch(client, tenant, [{"group_id": "g1", "context": {"ip": "10.0.0.1"}}])
    (event,) = recent(client, tenant)["events"]
    assert set(event) == EVENT_KEYS
    assert (event["id"], event["group_id"], event["context"]) == (sent, "g1", {"ip": "10.0.0.1"})
    assert re.fullmatch(r"evt_[0-9a-f]{32}", event["id"])
    for name in ("timestamp", "created_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event[name])


# Pages are built as JSON by the database: every value must come back exactly as sent.
AWKWARD = 'quote " backslash \\ slash / newline \n tab \t bell \x07 del \x7f é 中 😀 \u2028'
PLAIN = 'quote " backslash \\ slash / é 中 😀'  # identities refuse control characters
AWKWARD_PARAMETERS = {
    "text": AWKWARD,
    PLAIN: "as a key",
    "nested": {"list": [1, -2, 0.5, True, False, None, "x", {"deep": [[]]}], "empty": {}},
    "int": 9_007_199_254_740_993,  # 2**53 + 1: not a float
    "negative": -9_223_372_036_854_775_808,
    "float": 99.99,
    "small": 1e-7,
    "zero": 0,
    "unicode_key_é": "ok",
}
TIMES = [
    ("1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"),
    ("2000-02-29T23:59:59.999Z", "2000-02-29T23:59:59.999Z"),
    ("2024-01-15T10:30:00.007Z", "2024-01-15T10:30:00.007Z"),
    ("2024-01-15T12:30:00.05+02:00", "2024-01-15T10:30:00.050Z"),
    (1_705_314_600_123, "2024-01-15T10:30:00.123Z"),
]


def test_values_come_back_as_sent(client: TestClient, tenant: Tenant) -> None:
    (sent,) = batch(
        client,
        tenant,
        [
            {
                "external_id": PLAIN,
                "device_id": PLAIN + " device",
                "event": 'odd " name \\ é 😀',
                "group_id": PLAIN + " group",
                "parameters": AWKWARD_PARAMETERS,
                "context": {"ip": "10.0.0.1", "note": AWKWARD},
            }
        ],
    )
    person = person_of(client, tenant, PLAIN)
    # A new device: its @first_session comes with the event.
    (timeline,) = [e for e in person_events(client, tenant, person)["events"] if e["id"] == sent]
    (recent_one,) = [e for e in recent(client, tenant)["events"] if e["id"] == sent]
    for event in (timeline, recent_one):
        assert event["id"] == sent
        assert (event["external_id"], event["device_id"]) == (PLAIN, PLAIN + " device")
        assert (event["event"], event["group_id"]) == ('odd " name \\ é 😀', PLAIN + " group")
        assert event["parameters"] == AWKWARD_PARAMETERS
        assert event["context"] == {"ip": "10.0.0.1", "note": AWKWARD}


def test_times_are_shown_to_the_millisecond(client: TestClient, tenant: Tenant) -> None:
    batch(
        client,
        tenant,
        [{"timestamp": sent, "parameters": {"n": n}} for n, (sent, _) in enumerate(TIMES)],
    )
    shown = {e["parameters"]["n"]: e["timestamp"] for e in recent(client, tenant)["events"]}
    assert shown == {n: expected for n, (_, expected) in enumerate(TIMES)}
    timeline = person_events(client, tenant, person_of(client, tenant))["events"]
    assert {e["parameters"]["n"]: e["timestamp"] for e in timeline} == shown
    for event in timeline:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["created_at"])
