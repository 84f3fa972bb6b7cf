"""Event read queries. Newest first: ``timestamp`` descending, ties by storage order."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import sqlalchemy as sa

from trackline.clock import to_iso
from trackline.errors import InvalidInput
from trackline.storage.schema import events

_COLUMNS = [c for c in events.columns if c.name != "message_id"]  # what reads show


def to_public(row: sa.Row[Any]) -> dict[str, Any]:
    """The event object of spec 3.1."""
    m = row._mapping
    return {
        "id": m["id"],
        "workspace_id": m["workspace_id"],
        "person_id": m["person_id"],
        "external_id": m["external_id"],
        "device_id": m["device_id"],
        "event": m["event"],
        "parameters": m["parameters"],
        "group_id": m["group_id"],
        "context": m["context"],
        "timestamp": to_iso(m["timestamp"]),
        "created_at": to_iso(m["created_at"]),
    }


def _filters(
    *,
    workspace_id: str,
    person_id: str | None,
    device_id: str | None,
    event: str | None,
    since: int | None,
    until: int | None,
) -> list[sa.ColumnElement[bool]]:
    where = [events.c.workspace_id == workspace_id]
    if person_id is not None:
        where.append(events.c.person_id == person_id)
    if device_id is not None:
        where.append(events.c.device_id == device_id)
    if event is not None:
        where.append(events.c.event == event)
    if since is not None:
        where.append(events.c.timestamp >= since)
    if until is not None:
        where.append(events.c.timestamp < until)
    return where


def person_events(
    conn: sa.Connection,
    *,
    workspace_id: str,
    person_id: str,
    event: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of one person's timeline and the total count matching the filters."""
    where = _filters(
        workspace_id=workspace_id,
        person_id=person_id,
        device_id=None,
        event=event,
        since=since,
        until=until,
    )
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(*where)
        .order_by(events.c.timestamp.desc(), events.c.seq.desc())
        .limit(limit)
        .offset(offset)
    )
    total = conn.execute(sa.select(sa.func.count()).select_from(events).where(*where)).scalar_one()
    return [to_public(r) for r in rows], int(total)


def recent_events(
    conn: sa.Connection,
    *,
    workspace_id: str,
    person_id: str | None,
    device_id: str | None,
    event: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the workspace's events, newest first, and the cursor of the next page."""
    where = _filters(
        workspace_id=workspace_id,
        person_id=person_id,
        device_id=device_id,
        event=event,
        since=since,
        until=until,
    )
    if cursor is not None:
        ts, seq = decode_cursor(cursor)
        where.append(sa.tuple_(events.c.timestamp, events.c.seq) < sa.tuple_(ts, seq))
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(*where)
        .order_by(events.c.timestamp.desc(), events.c.seq.desc())
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].timestamp, rows[-1].seq) if more else None
    return [to_public(r) for r in rows], next_cursor


def encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int = 2) -> tuple[int, ...]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        values = tuple(int(p) for p in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        values = ()
    if len(values) != parts or not all(0 <= v < 2**63 for v in values):
        raise InvalidInput(
            "the cursor is not one this server gave", field="cursor", code="invalid_cursor"
        )
    return values
