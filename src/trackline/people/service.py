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
    body = values.check_object(body, allowed=IDENTIFY_FIELDS)
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
        pipeline.write_rows(conn, workspace_id=workspace_id, rows=[row], shapes=[()], now_ms=now_ms)
    if attributes:
        current = apply_changes(
            store.get_attributes(conn, workspace_id=workspace_id, person_id=person), attributes
        )
        store.set_attributes(
            conn, workspace_id=workspace_id, person_id=person, attributes=current, now_ms=now_ms
        )
    return person


def erase(conn: sa.Connection, *, workspace_id: str, person_id: str) -> None:
    """Right to erasure: the person, its identities, its events; 404 when unknown here."""
    # First wait for the workspace's writers and keep new ones out, then read: the person's
    # merges, identities and events are then final (PostgreSQL, where each statement sees
    # what committed before it; SQLite admits one writer at a time anyway).
    identity.exclude_for_erasure(conn, workspace_id)
    live = _live(conn, workspace_id=workspace_id, person_id=person_id)
    store.erase(conn, workspace_id=workspace_id, person_id=live)


def get_person(conn: sa.Connection, *, workspace_id: str, person_id: str) -> dict[str, Any]:
    live = _live(conn, workspace_id=workspace_id, person_id=person_id)
    person = queries.person(conn, workspace_id=workspace_id, person_id=live)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def _live(conn: sa.Connection, *, workspace_id: str, person_id: str) -> str:
    """The live person for ``person_id`` (itself or the one it was merged into); 404 when
    it names no person of the workspace."""
    live = store.resolve_id(conn, workspace_id=workspace_id, person_id=person_id)
    if live is None:
        raise NotFound(f"no person {person_id}")
    return live


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


def apply_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Attributes after ``changes``: a value sets, ``null`` deletes."""
    result = dict(current)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def group(
    conn: sa.Connection,
    *,
    workspace_id: str,
    user: str | None,
    device: str | None,
    group_id: str,
    traits: dict[str, Any],
    now_ms: int,
    ids: EventIds,
) -> str:
    """Link the person to a group and merge the group's traits (``null`` deletes)."""
    person = identify(
        conn,
        workspace_id=workspace_id,
        user=user,
        device=device,
        attributes={},
        now_ms=now_ms,
        ids=ids,
    )
    current = store.group_attributes(conn, workspace_id=workspace_id, group_id=group_id) or {}
    store.save_group(
        conn,
        workspace_id=workspace_id,
        group_id=group_id,
        attributes=apply_changes(current, traits),
        now_ms=now_ms,
    )
    store.add_groups(conn, workspace_id=workspace_id, pairs={(person, group_id)}, now_ms=now_ms)
    return person


def alias(
    conn: sa.Connection,
    *,
    workspace_id: str,
    previous: str,
    user: str,
    now_ms: int,
    ids: EventIds,
) -> str:
    """``previous`` (an anonymous or device id) is user ``user``: the anonymous person is merged
    into the user's. A previous id that is another person's user id is refused: a person keeps
    one user id."""
    as_user = store.find_identities(
        conn, workspace_id=workspace_id, kind=store.USER, values=[previous, user]
    )
    if previous in as_user and as_user[previous] != as_user.get(user):
        raise InvalidInput(
            f"previousId {previous!r} is another person's user id; a person keeps one user id",
            field="previousId",
            code="alias_conflict",
        )
    if previous in as_user:
        return as_user[previous]
    return identify(
        conn,
        workspace_id=workspace_id,
        user=user,
        device=previous,
        attributes={},
        now_ms=now_ms,
        ids=ids,
    )
