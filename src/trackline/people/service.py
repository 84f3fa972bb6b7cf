"""People operations run as writer jobs (identify, erase) or read transactions (lookups)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trackline.errors import InvalidInput, NotFound
from trackline.ids import EventIds
from trackline.ingest import pipeline, values
from trackline.ingest.formats.native import SYNONYMS, pick
from trackline.ingest.model import CanonicalEvent
from trackline.ingest.pipeline import FIRST_SESSION
from trackline.people import identity, queries, store
from trackline.settings import Limits

IDENTIFY_FIELDS = frozenset(
    SYNONYMS["external_id"] + SYNONYMS["device_id"] + ("attributes", "traits")
)


def parse_identify(body: Any, *, limits: Limits) -> tuple[str | None, str | None, dict[str, Any]]:
    """``POST /api/v1/identify``: identity fields (spec 3.2) and ``attributes`` (or ``traits``)."""
    if not isinstance(body, dict):
        raise values.bad("invalid_request", "the body must be a JSON object", None)
    unknown = sorted(set(body) - IDENTIFY_FIELDS)
    if unknown:
        raise values.bad("unknown_field", f"unknown field {unknown[0]!r}", unknown[0])
    (user, user_field), (device, device_field) = pick(body, "external_id"), pick(body, "device_id")
    user = values.check_identity(user, limits=limits, field=user_field)
    device = values.check_identity(device, limits=limits, field=device_field)
    if user is None and device is None:
        raise values.bad(
            "missing_identity", "identify needs a user id or a device id", "external_id"
        )
    if "attributes" in body and "traits" in body:
        raise values.bad("conflicting_fields", "give only one of attributes, traits", "attributes")
    name = "traits" if "traits" in body else "attributes"
    attributes = values.check_properties(body.get(name), limits=limits, field=name)
    values.check_storable(attributes, field=name)
    return user, device, attributes


def identify(
    conn: sa.Connection,
    *,
    workspace_id: str,
    user: str | None,
    device: str | None,
    attributes: dict[str, Any],
    now_ms: int,
    ids: EventIds,
) -> str:
    """Find or create the person, link the identities, apply attributes (``null`` deletes)."""
    resolution = identity.resolve(
        conn, workspace_id=workspace_id, pairs=[(user, device)], now_ms=now_ms
    )
    person = resolution.person_ids[0]
    if resolution.new_devices:
        trigger = CanonicalEvent(
            event=FIRST_SESSION, external_id=user, device_id=device, parameters={}, timestamp=now_ms
        )
        row = pipeline.first_session_row(workspace_id, person, trigger, now_ms, ids)
        pipeline.write_rows(conn, workspace_id=workspace_id, rows=[row], now_ms=now_ms)
    if attributes:
        current = store.get_attributes(conn, workspace_id=workspace_id, person_id=person)
        for name, value in attributes.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        store.set_attributes(
            conn, workspace_id=workspace_id, person_id=person, attributes=current, now_ms=now_ms
        )
    return person


def erase(conn: sa.Connection, *, workspace_id: str, person_id: str) -> None:
    """Right to erasure: the person, its identities, its events; 404 when unknown here."""
    live = store.resolve_id(conn, workspace_id=workspace_id, person_id=person_id)
    if live is None:
        raise NotFound(f"no person {person_id}")
    store.erase(conn, workspace_id=workspace_id, person_id=live)


def get_person(conn: sa.Connection, *, workspace_id: str, person_id: str) -> dict[str, Any]:
    live = store.resolve_id(conn, workspace_id=workspace_id, person_id=person_id)
    person = queries.person(conn, workspace_id=workspace_id, person_id=live) if live else None
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def find_people(
    conn: sa.Connection, *, workspace_id: str, external_id: str | None, device_id: str | None
) -> list[dict[str, Any]]:
    if (external_id is None) == (device_id is None):
        raise InvalidInput("give exactly one of external_id, device_id", field="external_id")
    kind, value = (
        (store.USER, external_id) if external_id is not None else (store.DEVICE, device_id)
    )
    assert value is not None
    found = store.find_identities(conn, workspace_id=workspace_id, kind=kind, values=[value])
    person = found.get(value)
    result = queries.person(conn, workspace_id=workspace_id, person_id=person) if person else None
    return [result] if result else []
