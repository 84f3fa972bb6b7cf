"""Event catalog endpoints (spec 5)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from trackline.api import JSON, require, services
from trackline.catalog import service
from trackline.ingest.body import parse_json, read_body
from trackline.workspaces.auth import Principal

router = APIRouter(tags=["event catalog"])

_EXAMPLE = {
    "name": "cart_updated",
    "description": "A product was added to or removed from the cart.",
    "properties": {"quantity": "number", "cart_total": {"type": "number", "description": "USD"}},
}


async def _json(request: Request) -> object:
    limit = services(request).settings.limits.request_bytes
    return parse_json(await read_body(request, limit=limit), limit=limit)


@router.get("/api/v1/event-definitions")
async def list_definitions(
    request: Request, who: Principal = Depends(require("events:read"))
) -> JSON:
    """Every event name seen or declared, with counts, naming and typed properties."""
    found = await services(request).db.reading(service.list_all, workspace_id=who.workspace_id)
    return JSON({"event_definitions": found})


@router.get("/api/v1/event-definitions/{name:path}")
async def get_definition(
    name: str, request: Request, who: Principal = Depends(require("events:read"))
) -> JSON:
    """One event definition."""
    found = await services(request).db.reading(
        service.get, workspace_id=who.workspace_id, name=name
    )
    return JSON(found)


_BODY = {"requestBody": {"content": {"application/json": {"example": _EXAMPLE}}}}


@router.post("/api/v1/event-definitions", status_code=201, openapi_extra=_BODY)
async def create_definition(request: Request, who: Principal = Depends(require("admin"))) -> JSON:
    """Define an event before it arrives, with declared property types (enforced at ingest)."""
    svc = services(request)
    body = await _json(request)
    created = await svc.writer.submit(
        lambda conn: service.create(
            conn,
            workspace_id=who.workspace_id,
            body=body,
            limits=svc.settings.limits,
            now_ms=svc.clock.now_ms(),
        )
    )
    return JSON(created, status_code=201)


@router.patch("/api/v1/event-definitions/{name:path}", openapi_extra=_BODY)
async def update_definition(
    name: str, request: Request, who: Principal = Depends(require("admin"))
) -> JSON:
    """Change the description and declared types; a property set to null is undeclared."""
    svc = services(request)
    body = await _json(request)
    updated = await svc.writer.submit(
        lambda conn: service.update(
            conn,
            workspace_id=who.workspace_id,
            name=name,
            body=body,
            limits=svc.settings.limits,
            now_ms=svc.clock.now_ms(),
        )
    )
    return JSON(updated)
