"""SQL for workspaces and API keys."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from trackline.storage.schema import api_keys, workspaces


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    workspace_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: int
    revoked_at: int | None


def insert_workspace(conn: sa.Connection, *, ws: Workspace) -> None:
    conn.execute(workspaces.insert().values(id=ws.id, name=ws.name, created_at=ws.created_at))


def find_workspace(conn: sa.Connection, *, id_or_name: str) -> Workspace | None:
    row = conn.execute(
        sa.select(workspaces).where(
            sa.or_(workspaces.c.id == id_or_name, workspaces.c.name == id_or_name)
        )
    ).first()
    return Workspace(row.id, row.name, row.created_at) if row else None


def list_workspaces(conn: sa.Connection) -> list[Workspace]:
    rows = conn.execute(sa.select(workspaces).order_by(workspaces.c.created_at, workspaces.c.id))
    return [Workspace(r.id, r.name, r.created_at) for r in rows]


def count_workspaces(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(workspaces)).scalar_one())


def insert_key(conn: sa.Connection, *, key: KeyRecord, key_hash: str) -> None:
    conn.execute(
        api_keys.insert().values(
            id=key.id,
            workspace_id=key.workspace_id,
            name=key.name,
            key_hash=key_hash,
            prefix=key.prefix,
            scopes=",".join(key.scopes),
            created_at=key.created_at,
            revoked_at=None,
        )
    )


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        m["id"],
        m["workspace_id"],
        m["name"],
        m["prefix"],
        tuple(m["scopes"].split(",")),
        m["created_at"],
        m["revoked_at"],
    )


def key_by_hash(conn: sa.Connection, *, key_hash: str) -> KeyRecord | None:
    row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
    return _record(row) if row else None


def list_keys(conn: sa.Connection, *, workspace_id: str | None) -> list[KeyRecord]:
    query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if workspace_id is not None:
        query = query.where(api_keys.c.workspace_id == workspace_id)
    return [_record(r) for r in conn.execute(query)]


def revoke_key(conn: sa.Connection, *, key_id: str, now_ms: int) -> bool:
    done = conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now_ms)
    )
    return done.rowcount == 1
