"""People endpoints (spec 4)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from trackline.api import JSON, require, services
from trackline.errors import InvalidInput, PayloadTooLarge
from trackline.ingest.body import parse_json, read_body
from trackline.ingest.pipeline import Origin
from trackline.ingest.service import keep_refused
from trackline.people import service
from trackline.workspaces.auth import Principal

router = APIRouter(tags=["people"])


@router.post(
    "/api/v1/identify",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "example": {
                        "external_id": "user_123",
                        "device_id": "dev_1",
                        "attributes": {"email": "ada@example.com", "plan": "pro", "old_flag": None},
                    }
                }
            },
        }
    },
)
async def identify(request: Request, who: Principal = Depends(require("events:write"))) -> JSON:
    """Create or update a person: link a device id to a user id, set attributes (null deletes)."""
    svc = services(request)
    limits = svc.settings.limits
    body = await read_body(request, limit=limits.request_bytes)
    origin = Origin(who.workspace_id, who.key_id, "api/v1/identify")
    data: object = None
    try:
        data = parse_json(body, limit=limits.request_bytes)
        user, device, attributes = service.parse_identify(data, limits=limits)
    except (InvalidInput, PayloadTooLarge) as exc:
        await keep_refused(svc, origin, body, exc, named=data)
        raise
    person = await svc.writer.submit(
        lambda conn: service.identify(
            conn,
            workspace_id=who.workspace_id,
            user=user,
            device=device,
            attributes=attributes,
            now_ms=svc.clock.now_ms(),
            ids=svc.ids,
        )
    )
    return JSON({"success": True, "person_id": person})


@router.get("/api/v1/people/{person_id}")
async def get_person(
    person_id: str, request: Request, who: Principal = Depends(require("events:read"))
) -> JSON:
    """One person: identities, attributes, groups, first and last seen."""
    found = await services(request).db.reading(
        service.get_person, workspace_id=who.workspace_id, person_id=person_id
    )
    return JSON(found)


@router.get("/api/v1/people")
async def find_people(
    request: Request,
    external_id: str | None = Query(None, description="The person's user id."),
    device_id: str | None = Query(None, description="One of the person's device ids."),
    who: Principal = Depends(require("events:read")),
) -> JSON:
    """Look a person up by user id or device id."""
    found = await services(request).db.reading(
        service.find_people,
        workspace_id=who.workspace_id,
        external_id=external_id,
        device_id=device_id,
    )
    return JSON({"people": found})


@router.delete("/api/v1/people/{person_id}")
async def delete_person(
    person_id: str, request: Request, who: Principal = Depends(require("admin"))
) -> JSON:
    """Erase a person: identities, attributes and every event (right to erasure)."""
    await services(request).writer.submit(
        lambda conn: service.erase(conn, workspace_id=who.workspace_id, person_id=person_id)
    )
    return JSON({"success": True, "deleted": person_id})
