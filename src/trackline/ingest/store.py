"""SQL of the ingest path: dedup look-ups, event rows, failed events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from trackline.storage import dialect
from trackline.storage.schema import events, failed_events


def existing_message_ids(
    conn: sa.Connection, *, workspace_id: str, message_ids: Iterable[str]
) -> dict[str, str]:
    """``message_id -> event id`` for the message ids already stored in the workspace."""
    found: dict[str, str] = {}
    for part in dialect.chunks(sorted(set(message_ids))):
        if not part:
            continue
        rows = conn.execute(
            sa.select(events.c.message_id, events.c.id).where(
                events.c.workspace_id == workspace_id, events.c.message_id.in_(part)
            )
        )
        found.update({mid: eid for mid, eid in rows})
    return found


def insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert event rows; a message id stored meanwhile by another writer is skipped."""
    if not rows:
        return
    if any(row["message_id"] is not None for row in rows):
        conn.execute(dialect.insert_ignore(conn, events, on=["workspace_id", "message_id"]), rows)
    else:
        conn.execute(events.insert(), rows)


def insert_failed(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(failed_events.insert(), rows)
