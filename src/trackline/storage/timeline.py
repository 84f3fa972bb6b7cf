"""Person timelines: which events are a person's, newest first, without an index on ``events``.

Entries live in two tables of the same shape (``schema.timeline``, ``schema.timeline_recent``).
A trigger on ``events`` (migration 0004) adds each stored event's entry to the small recent
table; ``move`` carries the recent entries into the large one in key order. An entry is in
exactly one of the two at any time, so a read takes both (``UNION ALL``) and a change to a
person's events (a merge, an erasure) changes both. ``events.person_id`` stays the record."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from trackline.storage import dialect
from trackline.storage.schema import events, timeline, timeline_recent

TABLES = (timeline, timeline_recent)
# PostgreSQL: a move excludes merges and erasures (they take it shared), so none of them
# re-points or deletes one table while a move carries its entries to the other unseen.
_MOVING = "timeline-move"


def move(conn: sa.Connection) -> int | None:
    """Move every recent entry into ``timeline``, in one transaction; returns how many, or
    None when another process is moving or a merge or erasure is under way (PostgreSQL): the
    writer then tries again after its next commit rather than wait. The delete names the rows
    it moves, so entries that another process stores meanwhile stay for the next move."""
    names = "workspace_id, person_id, timestamp, seq"
    if conn.dialect.name == "postgresql":
        if not dialect.try_lock_key(conn, _MOVING):
            return None
        moved = conn.exec_driver_sql(
            f"WITH moved AS (DELETE FROM timeline_recent RETURNING {names}),"
            f" stored AS (INSERT INTO timeline ({names}) SELECT {names} FROM moved"
            f" ORDER BY {names} RETURNING 1)"
            " SELECT count(*) FROM stored"
        ).scalar_one()
        return int(moved)
    # SQLite: the caller holds the database's one write lock, so nothing is added between.
    conn.exec_driver_sql(
        f"INSERT INTO timeline ({names}) SELECT {names} FROM timeline_recent ORDER BY {names}"
    )
    return conn.exec_driver_sql("DELETE FROM timeline_recent").rowcount


def entries(
    workspace_id: sa.ColumnElement[str],
    person_id: sa.ColumnElement[str],
    where: Callable[[sa.Table], list[sa.ColumnElement[bool]]] = lambda table: [],
) -> sa.Subquery:
    """The entries (``seq``, ``timestamp``) of a person in both tables, as a subquery;
    ``where(table)`` adds conditions on that table's columns."""
    parts = [
        sa.select(t.c.seq, t.c.timestamp).where(
            t.c.workspace_id == workspace_id, t.c.person_id == person_id, *where(t)
        )
        for t in TABLES
    ]
    return sa.union_all(*parts).subquery("entries")


def span(workspace_id: str, person_id: str) -> sa.Select[tuple[int | None, int | None]]:
    """The first and last timestamp of a person's events (NULLs when there is none): each
    table answers from the ends of its key."""
    parts = [
        sa.select(
            sa.func.min(t.c.timestamp).label("first"), sa.func.max(t.c.timestamp).label("last")
        ).where(t.c.workspace_id == workspace_id, t.c.person_id == person_id)
        for t in TABLES
    ]
    both = sa.union_all(*parts).subquery()
    return sa.select(sa.func.min(both.c.first), sa.func.max(both.c.last))


def repoint(conn: sa.Connection, *, workspace_id: str, loser: str, survivor: str) -> None:
    """A merge: the events of ``loser`` become ``survivor``'s, with their entries."""
    _change(
        conn,
        workspace_id,
        loser,
        lambda t, where: t.update().where(where).values(person_id=survivor),
    )


def erase(conn: sa.Connection, *, workspace_id: str, person_id: str) -> None:
    """Delete a person's events and their entries."""
    _change(conn, workspace_id, person_id, lambda t, where: t.delete().where(where))


def _change(
    conn: sa.Connection,
    workspace_id: str,
    person_id: str,
    statement: Callable[[sa.Table, sa.ColumnElement[bool]], sa.Executable],
) -> None:
    """Run ``statement(table, where)`` on the person's events (found by their entries), then
    on the entries of both tables."""
    dialect.lock_keys(conn, [_MOVING], shared=True)
    seqs = sa.select(entries(sa.literal(workspace_id), sa.literal(person_id)).c.seq)
    conn.execute(
        statement(events, sa.and_(events.c.workspace_id == workspace_id, events.c.seq.in_(seqs)))
    )
    for table in TABLES:
        mine = sa.and_(table.c.workspace_id == workspace_id, table.c.person_id == person_id)
        conn.execute(statement(table, mine))
