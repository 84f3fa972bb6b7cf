"""Read queries for failed events, newest first, cursor-paged."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trackline.clock import to_iso
from trackline.events.queries import decode_cursor, encode_cursor
from trackline.storage.schema import failed_events as fe


def list_failed(
    conn: sa.Connection,
    *,
    workspace_id: str,
    code: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    where = [fe.c.workspace_id == workspace_id]
    if code is not None:
        where.append(fe.c.code == code)
    if since is not None:
        where.append(fe.c.received_at >= since)
    if until is not None:
        where.append(fe.c.received_at < until)
    if cursor is not None:
        (seq,) = decode_cursor(cursor, parts=1)
        where.append(fe.c.seq < seq)
    rows = conn.execute(
        sa.select(fe).where(*where).order_by(fe.c.seq.desc()).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_public(r) for r in rows], encode_cursor(rows[-1].seq) if more else None


def _public(row: sa.Row[Any]) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"],
        "code": m["code"],
        "message": m["message"],
        "field": m["field"],
        "payload": m["payload"],
        "payload_truncated": m["payload_truncated"],
        "source": m["source"],
        "index": m["item_index"],
        "key_id": m["key_id"],
        "received_at": to_iso(m["received_at"]),
    }
