"""SQL for people and identities. Query functions take a connection and keyword arguments."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from trackline.people import mentions
from trackline.storage import dialect, roundtrips, timeline
from trackline.storage.schema import (
    failed_events,
    groups,
    identities,
    people,
    person_groups,
    person_merges,
)

USER, DEVICE = "user", "device"


def find_identities(
    conn: sa.Connection, *, workspace_id: str, kind: str, values: Iterable[str]
) -> dict[str, str]:
    """``value -> person_id`` for the identities of one kind that exist: from the look-up
    ``find_identities_ahead`` queued in this transaction when it asked for all of ``values``
    (PostgreSQL), else by a query of its own."""
    wanted = set(values)
    if conn.dialect.name == "postgresql":
        sent = roundtrips.answer(conn, ("identities", workspace_id, kind))
        if sent is not None:
            (_, (_, _, asked)), rows = sent
            if wanted <= set(asked):
                return {value: person for value, person in rows if value in wanted}
    return _identity_map(conn, workspace_id, kind, identities.c.value, wanted)


def find_identities_ahead(
    conn: sa.Connection, *, workspace_id: str, kind: str, values: Iterable[str]
) -> None:
    """PostgreSQL: look up ``find_identities`` for ``values`` with the transaction's next
    round trip (with the declarations look-up of ingest, which comes first), for the
    ``find_identities`` that follows. SQLite: nothing (a look-up is a call into a library)."""
    if conn.dialect.name == "postgresql":
        key = ("identities", workspace_id, kind)
        roundtrips.ahead(conn, key, (_IDENTITIES_POSTGRES, (workspace_id, kind, sorted(values))))


def forget_identities_ahead(conn: sa.Connection, *, workspace_id: str) -> None:
    """Drop what ``find_identities_ahead`` looked up and no ``find_identities`` took: the
    transaction's later writes would make it stale for a later look-up."""
    if conn.dialect.name == "postgresql":
        for kind in (USER, DEVICE):
            roundtrips.forget(conn, ("identities", workspace_id, kind))


_IDENTITIES_POSTGRES = (
    "SELECT value, person_id FROM identities"
    " WHERE workspace_id = $1 AND kind = $2 AND value = ANY($3::text[])"
)


def users_of(
    conn: sa.Connection, *, workspace_id: str, person_ids: Iterable[str]
) -> dict[str, str]:
    """``person_id -> external_id`` for those of the persons that have one."""
    return _identity_map(conn, workspace_id, USER, identities.c.person_id, person_ids)


def _identity_map(
    conn: sa.Connection,
    workspace_id: str,
    kind: str,
    key: sa.Column[str],
    wanted: Iterable[str],
) -> dict[str, str]:
    """``key -> the other of (value, person_id)`` for identities of ``kind`` whose ``key`` is
    one of ``wanted``, in one query. On SQLite the database builds the map as one JSON row:
    the driver releases the GIL for every row it steps to, and the writer would then wait
    behind the event loop once per identity of a commit."""
    keys = sorted(set(wanted))
    if not keys:
        return {}
    name = conn.dialect.name
    statement = _identity_map_statement(name, key.name)
    bound = {"workspace_id": workspace_id, "kind": kind, "keys": dialect.listed(name, keys)}
    if name == "sqlite":
        return orjson.loads(conn.execute(statement, bound).scalar_one())  # type: ignore[no-any-return]
    return {k: v for k, v in conn.execute(statement, bound)}


@functools.lru_cache(maxsize=8)
def _identity_map_statement(dialect_name: str, key_name: str) -> sa.Select[Any]:
    """Built once per dialect and key column: every commit of ingest runs it."""
    key = identities.c[key_name]
    other = identities.c.person_id if key_name == "value" else identities.c.value
    where = (
        identities.c.workspace_id == sa.bindparam("workspace_id"),
        identities.c.kind == sa.bindparam("kind"),
        dialect.one_of(dialect_name, key, "keys"),
    )
    if dialect_name == "sqlite":
        return sa.select(sa.func.json_group_object(key, other)).where(*where)
    return sa.select(key, other).where(*where)


def insert_people(conn: sa.Connection, *, workspace_id: str, ids: list[str], now_ms: int) -> None:
    if ids:
        conn.execute(
            people.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "id": pid,
                    "attributes": {},
                    "created_at": now_ms,
                    "updated_at": now_ms,
                }
                for pid in ids
            ],
        )


def insert_identities(
    conn: sa.Connection, *, workspace_id: str, rows: list[tuple[str, str, str]], now_ms: int
) -> None:
    """Insert ``(kind, value, person_id)`` rows."""
    if rows:
        conn.execute(
            identities.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "kind": kind,
                    "value": value,
                    "person_id": person,
                    "created_at": now_ms,
                }
                for kind, value, person in rows
            ],
        )


def move_identity(
    conn: sa.Connection, *, workspace_id: str, kind: str, value: str, person_id: str
) -> None:
    conn.execute(
        identities.update()
        .where(
            identities.c.workspace_id == workspace_id,
            identities.c.kind == kind,
            identities.c.value == value,
        )
        .values(person_id=person_id)
    )


def get_attributes(conn: sa.Connection, *, workspace_id: str, person_id: str) -> dict[str, Any]:
    value = conn.execute(
        sa.select(people.c.attributes).where(
            people.c.workspace_id == workspace_id, people.c.id == person_id
        )
    ).scalar_one()
    return dict(value or {})


def set_attributes(
    conn: sa.Connection,
    *,
    workspace_id: str,
    person_id: str,
    attributes: dict[str, Any],
    now_ms: int,
) -> None:
    conn.execute(
        people.update()
        .where(people.c.workspace_id == workspace_id, people.c.id == person_id)
        .values(attributes=attributes, updated_at=now_ms)
    )


def add_groups(
    conn: sa.Connection, *, workspace_id: str, pairs: set[tuple[str, str]], now_ms: int
) -> None:
    """Link ``(person_id, group_id)`` pairs; existing links are kept as they are."""
    if pairs:
        stmt = dialect.insert_ignore(
            conn, person_groups, on=["workspace_id", "person_id", "group_id"]
        )
        conn.execute(
            stmt,
            [
                {"workspace_id": workspace_id, "person_id": p, "group_id": g, "created_at": now_ms}
                for p, g in sorted(pairs)
            ],
        )


def merge(
    conn: sa.Connection, *, workspace_id: str, loser: str, survivor: str, now_ms: int
) -> None:
    """Fold person ``loser`` into ``survivor`` in the current transaction: events, identities,
    groups and attributes follow (the survivor's own attribute values win)."""
    ws = workspace_id
    timeline.repoint(conn, workspace_id=ws, loser=loser, survivor=survivor)
    conn.execute(
        identities.update()
        .where(identities.c.workspace_id == ws, identities.c.person_id == loser)
        .values(person_id=survivor)
    )
    groups = conn.execute(
        sa.select(person_groups.c.group_id).where(
            person_groups.c.workspace_id == ws, person_groups.c.person_id == loser
        )
    ).scalars()
    add_groups(conn, workspace_id=ws, pairs={(survivor, g) for g in groups}, now_ms=now_ms)
    conn.execute(
        person_groups.delete().where(
            person_groups.c.workspace_id == ws, person_groups.c.person_id == loser
        )
    )
    merged = get_attributes(conn, workspace_id=ws, person_id=loser)
    merged.update(get_attributes(conn, workspace_id=ws, person_id=survivor))
    set_attributes(conn, workspace_id=ws, person_id=survivor, attributes=merged, now_ms=now_ms)
    created = conn.execute(
        sa.select(sa.func.min(people.c.created_at)).where(
            people.c.workspace_id == ws, people.c.id.in_([loser, survivor])
        )
    ).scalar_one()
    conn.execute(
        people.update()
        .where(people.c.workspace_id == ws, people.c.id == survivor)
        .values(created_at=created)
    )
    conn.execute(people.delete().where(people.c.workspace_id == ws, people.c.id == loser))
    conn.execute(
        person_merges.update()
        .where(person_merges.c.workspace_id == ws, person_merges.c.into_id == loser)
        .values(into_id=survivor)
    )
    conn.execute(
        person_merges.insert().values(
            workspace_id=ws, merged_id=loser, into_id=survivor, merged_at=now_ms
        )
    )


def resolve_id(conn: sa.Connection, *, workspace_id: str, person_id: str) -> str | None:
    """The live person for an id: itself, or the person it was merged into; None if unknown."""
    exists = conn.execute(
        sa.select(people.c.id).where(
            people.c.workspace_id == workspace_id, people.c.id == person_id
        )
    ).scalar()
    if exists:
        return str(exists)
    into = conn.execute(
        sa.select(person_merges.c.into_id).where(
            person_merges.c.workspace_id == workspace_id, person_merges.c.merged_id == person_id
        )
    ).scalar()
    return str(into) if into else None


def identities_of(
    conn: sa.Connection, *, workspace_id: str, person_id: str
) -> tuple[set[str], set[str]]:
    """A person's user ids and device ids."""
    owned = conn.execute(
        sa.select(identities.c.kind, identities.c.value).where(
            identities.c.workspace_id == workspace_id, identities.c.person_id == person_id
        )
    ).all()
    return {v for k, v in owned if k == USER}, {v for k, v in owned if k == DEVICE}


def live_id_sql() -> sa.ColumnElement[str]:
    """``resolve_id`` as SQL over the bound parameters ``workspace_id`` and ``person_id`` (the
    live person, or NULL), for reads that resolve the person in the statement that reads."""
    ws, person_id = sa.bindparam("workspace_id"), sa.bindparam("person_id")
    itself = sa.select(people.c.id).where(people.c.workspace_id == ws, people.c.id == person_id)
    into = sa.select(person_merges.c.into_id).where(
        person_merges.c.workspace_id == ws, person_merges.c.merged_id == person_id
    )
    return sa.func.coalesce(itself.scalar_subquery(), into.scalar_subquery())


def user_person_sql() -> sa.ColumnElement[str]:
    """The person of the user id bound as ``user_id`` (or NULL), as SQL."""
    return (
        sa.select(identities.c.person_id)
        .where(
            identities.c.workspace_id == sa.bindparam("workspace_id"),
            identities.c.kind == USER,
            identities.c.value == sa.bindparam("user_id"),
        )
        .scalar_subquery()
    )


def erase(conn: sa.Connection, *, workspace_id: str, person_id: str) -> None:
    """Delete a person and every trace of it: events, identities, groups, merge records, and
    the failed events that named one of its identities."""
    ws = workspace_id
    users, devices = identities_of(conn, workspace_id=ws, person_id=person_id)
    _erase_failures(conn, ws, sorted(users), sorted(devices))
    timeline.erase(conn, workspace_id=ws, person_id=person_id)
    for table, column in (
        (identities, identities.c.person_id),
        (person_groups, person_groups.c.person_id),
        (person_merges, person_merges.c.into_id),
        (people, people.c.id),
    ):
        conn.execute(table.delete().where(table.c.workspace_id == ws, column == person_id))


def _erase_failures(conn: sa.Connection, ws: str, users: list[str], devices: list[str]) -> None:
    """Failed events naming the person: by their identity columns, and whole refused requests
    (which name no single identity) that mention one of its ids. Those are found by a
    case-sensitive text search for the ids' spellings (a quote, then the string's inside; or
    a colon, then the number), then checked one by one (``mentions``), so an id sent as a
    number or with JSON escapes is found too."""
    fe = failed_events
    named = []
    if users:
        named.append(fe.c.external_id.in_(users))
    if devices:
        named.append(fe.c.device_id.in_(devices))
    if not named:
        return
    conn.execute(fe.delete().where(fe.c.workspace_id == ws, sa.or_(*named)))
    ids = users + devices
    needles = sorted(
        {f'"{text}' for value in ids for text in mentions.spellings(value)}
        | {text for value in ids for text in mentions.number_spellings(value)}
    )
    doomed: set[str] = set()
    for part in dialect.chunks(needles, 200):
        candidates = conn.execute(
            sa.select(fe.c.id, fe.c.payload).where(
                fe.c.workspace_id == ws,
                fe.c.item_index.is_(None),
                sa.or_(*(dialect.text_contains(conn, fe.c.payload, n) for n in part)),
            )
        )
        doomed |= {row.id for row in candidates if mentions.mentions(row.payload or "", ids)}
    for chunk in dialect.chunks(sorted(doomed)):
        conn.execute(fe.delete().where(fe.c.workspace_id == ws, fe.c.id.in_(chunk)))


def group_attributes(
    conn: sa.Connection, *, workspace_id: str, group_id: str
) -> dict[str, Any] | None:
    value = conn.execute(
        sa.select(groups.c.attributes).where(
            groups.c.workspace_id == workspace_id, groups.c.id == group_id
        )
    ).first()
    return dict(value[0] or {}) if value else None


def save_group(
    conn: sa.Connection,
    *,
    workspace_id: str,
    group_id: str,
    attributes: dict[str, Any],
    now_ms: int,
) -> None:
    stmt = dialect.upsert(
        conn, groups, on=["workspace_id", "id"], update=["attributes", "updated_at"]
    )
    conn.execute(
        stmt,
        [
            {
                "workspace_id": workspace_id,
                "id": group_id,
                "attributes": attributes,
                "created_at": now_ms,
                "updated_at": now_ms,
            }
        ],
    )
