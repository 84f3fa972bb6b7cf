"""Read queries for people. ``first_seen``/``last_seen`` are derived from the person's events
(each timeline table answers min/max at once), so ingest never updates a person row."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from trackline.clock import to_iso
from trackline.storage import timeline
from trackline.storage.schema import identities, people, person_groups


def person(conn: sa.Connection, *, workspace_id: str, person_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(people).where(people.c.workspace_id == workspace_id, people.c.id == person_id)
    ).first()
    if row is None:
        return None
    owned = conn.execute(
        sa.select(identities.c.kind, identities.c.value)
        .where(identities.c.workspace_id == workspace_id, identities.c.person_id == person_id)
        .order_by(identities.c.created_at, identities.c.value)
    ).all()
    groups = (
        conn.execute(
            sa.select(person_groups.c.group_id)
            .where(
                person_groups.c.workspace_id == workspace_id, person_groups.c.person_id == person_id
            )
            .order_by(person_groups.c.group_id)
        )
        .scalars()
        .all()
    )
    first, last = conn.execute(timeline.span(conn.dialect.name, workspace_id, person_id)).one()
    return {
        "id": row.id,
        "external_id": next((v for k, v in owned if k == "user"), None),
        "device_ids": [v for k, v in owned if k == "device"],
        "attributes": row.attributes or {},
        "group_ids": list(groups),
        "first_seen": to_iso(first if first is not None else row.created_at),
        "last_seen": to_iso(last if last is not None else row.updated_at),
    }
