"""``GET /api/v1/failed-events`` (spec 6)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from trackline.api import JSON, require, services
from trackline.events.routes import SINCE, UNTIL, query_time
from trackline.failures import replay
from trackline.failures.queries import list_failed
from trackline.ingest.body import parse_json, read_body
from trackline.workspaces.auth import Principal

router = APIRouter(tags=["failed events"])


@router.get("/api/v1/failed-events")
async def failed_events(
    request: Request,
    code: str | None = Query(None, description="Only this error code."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    who: Principal = Depends(require("events:read")),
) -> JSON:
    """Refused events with their raw payload, reason, key and time; newest first."""
    found, next_cursor = await services(request).db.reading(
        list_failed,
        workspace_id=who.workspace_id,
        code=code,
        since=query_time(since, "since"),
        until=query_time(until, "until"),
        limit=limit,
        cursor=cursor,
    )
    return JSON({"failed_events": found, "next_cursor": next_cursor})


@router.post("/api/v1/failed-events/replay")
async def replay_failed(request: Request, who: Principal = Depends(require("admin"))) -> JSON:
    """Re-run failed events through today's rules; those that pass are stored and leave the
    failed store, the others stay with their new reason. Body: ``{"code"?, "ids"?, "limit"?}``
    (at most 1,000 per call, oldest first)."""
    svc = services(request)
    body = await read_body(request, limit=64 * 1024)
    data = parse_json(body, limit=64 * 1024) if body.too_large or body.data.strip() else None
    code, ids, limit = replay.parse_request(data)
    result = await svc.writer.submit(
        lambda conn: replay.replay(
            conn,
            workspace_id=who.workspace_id,
            code=code,
            ids=ids,
            limit=limit,
            limits=svc.settings.limits,
            event_ids=svc.ids,
            now_ms=svc.clock.now_ms(),
        ),
        weight=limit,
    )
    return JSON(result)
