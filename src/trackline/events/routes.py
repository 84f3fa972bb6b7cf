"""Event reads: a person's timeline (Flameup's shape) and the Recent Events view."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from trackline.api import JSON, require, services
from trackline.errors import NotFound
from trackline.events import queries
from trackline.ingest.values import parse_time
from trackline.workspaces.auth import Principal

router = APIRouter(tags=["events"])

SINCE = Query(None, description="Only events at or after this time (ISO 8601 or Unix ms).")
UNTIL = Query(None, description="Only events before this time (ISO 8601 or Unix ms).")


def query_time(value: str | None, field: str) -> int | None:
    """A ``since``/``until`` query value (ISO 8601 or Unix ms) as ms; shared by read routes."""
    if value is None:
        return None
    return parse_time(int(value) if value.isdigit() else value, field=field)


@router.get("/api/v1/people/{person_id}/events")
async def person_events(
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
    page = await services(request).db.reading(
        queries.person_events,
        one_statement=True,
        workspace_id=who.workspace_id,
        person_id=person_id,
        event=event,
        since=query_time(since, "since"),
        until=query_time(until, "until"),
        limit=limit,
        offset=offset,
    )
    if page is None:
        raise NotFound(f"no person {person_id}")
    return JSON({"events": page[0], "total": page[1]})


@router.get("/api/v1/events")
async def recent_events(
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
    found, next_cursor = await services(request).db.reading(
        queries.recent_events,
        one_statement=True,
        workspace_id=who.workspace_id,
        user_id=user_id,
        device_id=device_id,
        event=event,
        since=query_time(since, "since"),
        until=query_time(until, "until"),
        limit=limit,
        cursor=cursor,
    )
    return JSON({"events": found, "next_cursor": next_cursor})
