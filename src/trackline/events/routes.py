"""Event reads: a person's timeline (Flameup's shape) and the Recent Events view."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from trackline.api import JSON, require, services
from trackline.errors import NotFound
from trackline.events import queries
from trackline.ingest.values import parse_time
from trackline.people import store as people_store
from trackline.workspaces.auth import Principal

router = APIRouter(tags=["events"])

SINCE = Query(None, description="Only events at or after this time (ISO 8601 or Unix ms).")
UNTIL = Query(None, description="Only events before this time (ISO 8601 or Unix ms).")


def _time(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    return parse_time(int(value) if value.isdigit() else value, field=field)


@router.get("/api/v1/people/{person_id}/events")
def person_events(
    person_id: str,
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**63 - 1),
    event: str | None = Query(None, description="Only this event name."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    who: Principal = Depends(require("events:read")),
) -> JSON:
    """A person's events, newest first, with the total that match the filters."""
    ws = who.workspace_id
    with services(request).db.read() as conn:
        live = people_store.resolve_id(conn, workspace_id=ws, person_id=person_id)
        if live is None:
            raise NotFound(f"no person {person_id}")
        found, total = queries.person_events(
            conn,
            workspace_id=ws,
            person_id=live,
            event=event,
            since=_time(since, "since"),
            until=_time(until, "until"),
            limit=limit,
            offset=offset,
        )
    return JSON({"events": found, "total": total})


@router.get("/api/v1/events")
def recent_events(
    request: Request,
    user_id: str | None = Query(None, description="Only the events of this user's person."),
    device_id: str | None = Query(None, description="Only events sent with this device id."),
    event: str | None = Query(None, description="Only this event name."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    who: Principal = Depends(require("events:read")),
) -> JSON:
    """The workspace's recent events, newest first, with cursor paging."""
    ws = who.workspace_id
    with services(request).db.read() as conn:
        person_id = None
        if user_id is not None:
            person_id = people_store.find_identities(
                conn, workspace_id=ws, kind=people_store.USER, values=[user_id]
            ).get(user_id)
            if person_id is None:
                return JSON({"events": [], "next_cursor": None})
        found, next_cursor = queries.recent_events(
            conn,
            workspace_id=ws,
            person_id=person_id,
            device_id=device_id,
            event=event,
            since=_time(since, "since"),
            until=_time(until, "until"),
            limit=limit,
            cursor=cursor,
        )
    return JSON({"events": found, "next_cursor": next_cursor})
