"""Creating workspaces and keys. Secrets are shown once and stored only as SHA-256 hashes
(the keys are 256-bit random, so a fast hash is as safe as a slow one and keeps lookups cheap)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from trackline import ids
from trackline.errors import Conflict, InvalidInput, NotFound
from trackline.workspaces import store
from trackline.workspaces.store import KeyRecord, Workspace

SCOPES = ("events:write", "events:read", "admin")
DEFAULT_SCOPES = ("events:write", "events:read")
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True, slots=True)
class NewKey:
    record: KeyRecord
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_workspace(conn: sa.Connection, *, name: str, now_ms: int) -> Workspace:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("a workspace name has 1 to 200 characters", field="name")
    if store.find_workspace(conn, id_or_name=name) is not None:
        raise Conflict(f"a workspace named {name!r} exists already", field="name")
    ws = Workspace(ids.new_workspace_id(), name, now_ms)
    store.insert_workspace(conn, ws=ws)
    return ws


def parse_scopes(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_SCOPES
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInput(
            f"unknown scope {unknown[0] if unknown else ''!r}; use {', '.join(SCOPES)}",
            field="scopes",
        )
    return scopes


def create_key(
    conn: sa.Connection, *, workspace: str, scopes: tuple[str, ...], name: str | None, now_ms: int
) -> NewKey:
    ws = store.find_workspace(conn, id_or_name=workspace)
    if ws is None:
        raise NotFound(f"no workspace {workspace!r}", field="workspace")
    secret = ids.new_key_secret()
    record = KeyRecord(ids.new_key_id(), ws.id, name or "", secret[:10], scopes, now_ms, None)
    store.insert_key(conn, key=record, key_hash=hash_key(secret))
    return NewKey(record, secret)


def bootstrap(conn: sa.Connection, *, now_ms: int) -> NewKey | None:
    """On an empty database: workspace ``default`` and an admin key (returned once)."""
    if store.count_workspaces(conn) > 0:
        return None
    create_workspace(conn, name=DEFAULT_WORKSPACE, now_ms=now_ms)
    return create_key(
        conn, workspace=DEFAULT_WORKSPACE, scopes=SCOPES, name="bootstrap admin", now_ms=now_ms
    )
