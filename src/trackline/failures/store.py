"""SQL for replaying failed events: pick them, record a new reason, remove the ones stored."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from trackline.storage.schema import failed_events as fe


@dataclass(frozen=True, slots=True)
class FailedRow:
    seq: int
    id: str
    source: str
    item_index: int | None
    code: str
    payload: str
    payload_truncated: bool
    key_id: str | None
    received_at: int


def pick(
    conn: sa.Connection,
    *,
    workspace_id: str,
    code: str | None,
    ids: list[str] | None,
    limit: int,
) -> list[FailedRow]:
    """The oldest failed events matching the filters."""
    query = sa.select(
        fe.c.seq,
        fe.c.id,
        fe.c.source,
        fe.c.item_index,
        fe.c.code,
        fe.c.payload,
        fe.c.payload_truncated,
        fe.c.key_id,
        fe.c.received_at,
    ).where(fe.c.workspace_id == workspace_id)
    if code is not None:
        query = query.where(fe.c.code == code)
    if ids is not None:
        query = query.where(fe.c.id.in_(ids))
    rows = conn.execute(query.order_by(fe.c.seq).limit(limit))
    return [FailedRow(*row) for row in rows]


def set_reason(
    conn: sa.Connection,
    *,
    workspace_id: str,
    failed_id: str,
    code: str,
    message: str,
    field: str | None,
) -> None:
    conn.execute(
        fe.update()
        .where(fe.c.workspace_id == workspace_id, fe.c.id == failed_id)
        .values(code=code, message=message, field=field)
    )


def delete(conn: sa.Connection, *, workspace_id: str, failed_id: str) -> None:
    conn.execute(fe.delete().where(fe.c.workspace_id == workspace_id, fe.c.id == failed_id))
