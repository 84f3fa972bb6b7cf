"""``GET /api/v1/failed-events`` (spec 6)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from trackline.api import JSON, require, services
from trackline.events.routes import SINCE, UNTIL, _time
from trackline.failures.queries import list_failed
from trackline.workspaces.auth import Principal

router = APIRouter(tags=["failed events"])


@router.get("/api/v1/failed-events")
def failed_events(
    request: Request,
    code: str | None = Query(None, description="Only this error code."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    who: Principal = Depends(require("events:read")),
) -> JSON:
    """Refused events with their raw payload, reason, key and time; newest first."""
    with services(request).db.read() as conn:
        found, next_cursor = list_failed(
            conn,
            workspace_id=who.workspace_id,
            code=code,
            since=_time(since, "since"),
            until=_time(until, "until"),
            limit=limit,
            cursor=cursor,
        )
    return JSON({"failed_events": found, "next_cursor": next_cursor})
