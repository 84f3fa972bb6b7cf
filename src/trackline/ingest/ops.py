"""Identify, group and alias messages (Segment's calls), applied in the writer's transaction
after the batch's events. Order does not change the outcome: linking and merging give the
same people whichever comes first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trackline.errors import InvalidInput
from trackline.ids import EventIds
from trackline.ingest.formats.native import item_error
from trackline.ingest.model import AliasOp, GroupOp, IdentifyOp, ItemError, Op
from trackline.people import service as people


def apply(
    conn: sa.Connection,
    *,
    workspace_id: str,
    ops: list[tuple[int, Op]],
    raws: dict[int, Any],
    prefix: str,
    now_ms: int,
    ids: EventIds,
) -> list[ItemError]:
    """Apply each operation; the ones refused (for example ``alias_conflict``) are returned.
    ``prefix`` is the request's item path (``batch[{index}].``), empty for a single message."""
    refused = []
    for position, op in ops:
        try:
            _one(conn, workspace_id, op, now_ms, ids)
        except InvalidInput as exc:
            if exc.field:
                exc.field = prefix.format(index=position) + exc.field
            refused.append(item_error(position if prefix else None, exc, raws.get(position)))
    return refused


def _one(conn: sa.Connection, ws: str, op: Op, now_ms: int, ids: EventIds) -> str:
    if isinstance(op, IdentifyOp):
        return people.identify(
            conn,
            workspace_id=ws,
            user=op.external_id,
            device=op.device_id,
            attributes=op.attributes,
            now_ms=now_ms,
            ids=ids,
        )
    if isinstance(op, GroupOp):
        return people.group(
            conn,
            workspace_id=ws,
            user=op.external_id,
            device=op.device_id,
            group_id=op.group_id,
            traits=op.traits,
            now_ms=now_ms,
            ids=ids,
        )
    assert isinstance(op, AliasOp)
    return people.alias(
        conn, workspace_id=ws, previous=op.previous_id, user=op.external_id, now_ms=now_ms, ids=ids
    )
