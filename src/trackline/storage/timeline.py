"""Person timelines: which events are a person's, newest first.

On PostgreSQL they are an index on ``events`` (``workspace_id, person_id, timestamp``). On
SQLite, whose WAL would write one page of such an index per person in every commit, entries
live in two tables of the same shape (``schema.timeline``, ``schema.timeline_recent``): a
trigger on ``events`` (migration 0004) adds each stored event's entry to the small recent
table, and ``move`` carries the recent entries into the large one in key order. An entry is
in exactly one of the two at any time, so a read takes both (``UNION ALL``) and a change to a
person's events (a merge, an erasure) changes both. ``events.person_id`` stays the record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from trackline.storage.schema import events, timeline, timeline_recent

Key = tuple[str, str, int, int]  # an entry: workspace_id, person_id, timestamp, seq
_TABLES = (timeline, timeline_recent)
_NAMES = "workspace_id, person_id, timestamp, seq"


def in_tables(dialect: str) -> bool:
    """Whether this database keeps timelines in the two tables (and the writer moves them)."""
    return dialect == "sqlite"


def tables(dialect: str) -> tuple[sa.Table, ...]:
    """Where a person's entries are: both timeline tables, or ``events`` and its index."""
    return _TABLES if in_tables(dialect) else (events,)


@dataclass(frozen=True, slots=True)
class Moved:
    """What one ``move`` did: ``entries`` moved, and ``last``, the key of the last of them
    when the move stopped at its ``limit`` (the next slice of the pass starts after it), or
    None when it reached the end of the recent table (the pass is over)."""

    entries: int
    last: Key | None


def move(conn: sa.Connection, *, after: Key | None = None, limit: int | None = None) -> Moved:
    """Move recent entries into ``timeline`` in key order: those after ``after``, at most
    ``limit`` of them (all when None). A pass of slices, each in a transaction of its own,
    writes each person's page of ``timeline`` once, as one whole move does, but holds the
    database (and the writer) a slice at a time. Entries added behind a pass's position wait
    for the next pass. SQLite only (``in_tables``); the caller holds its one write lock."""
    bounds: list[str] = []
    params: dict[str, object] = {}
    if after is not None:
        bounds.append(_after(">", "a", after, params))
    last: Key | None = None
    if limit is not None:
        row = conn.execute(
            sa.text(
                f"SELECT {_NAMES} FROM timeline_recent{_where(bounds)}"
                f" ORDER BY {_NAMES} LIMIT 1 OFFSET :skip"
            ),
            {**params, "skip": limit - 1},
        ).first()
        if row is not None:
            last = (row[0], row[1], row[2], row[3])
            bounds.append(_after("<=", "b", last, params))
    where = _where(bounds)
    conn.execute(
        sa.text(
            f"INSERT INTO timeline ({_NAMES})"
            f" SELECT {_NAMES} FROM timeline_recent{where} ORDER BY {_NAMES}"
        ),
        params,
    )
    deleted = conn.execute(sa.text(f"DELETE FROM timeline_recent{where}"), params).rowcount
    return Moved(deleted, last)


def _after(op: str, prefix: str, key: Key, params: dict[str, object]) -> str:
    """A bound on the entries' key: ``(key columns) op (key)``, its values put in ``params``."""
    names = [f"{prefix}{i}" for i in range(len(key))]
    params.update(zip(names, key, strict=True))
    return f"({_NAMES}) {op} ({', '.join(':' + n for n in names)})"


def _where(bounds: list[str]) -> str:
    return f" WHERE {' AND '.join(bounds)}" if bounds else ""


def entries(
    workspace_id: sa.ColumnElement[str],
    person_id: sa.ColumnElement[str],
    where: Callable[[sa.Table], list[sa.ColumnElement[bool]]] = lambda table: [],
) -> sa.Subquery:
    """The entries (``seq``, ``timestamp``) of a person in both tables (SQLite), as a
    subquery; ``where(table)`` adds conditions on a table's columns."""
    parts = [
        sa.select(t.c.seq, t.c.timestamp).where(
            t.c.workspace_id == workspace_id, t.c.person_id == person_id, *where(t)
        )
        for t in _TABLES
    ]
    return sa.union_all(*parts).subquery("entries")


def span(
    dialect: str, workspace_id: str, person_id: str
) -> sa.Select[tuple[int | None, int | None]]:
    """The first and last timestamp of a person's events (NULLs when there is none): each
    table answers from the ends of its key."""
    parts = [
        sa.select(
            sa.func.min(t.c.timestamp).label("first"), sa.func.max(t.c.timestamp).label("last")
        ).where(t.c.workspace_id == workspace_id, t.c.person_id == person_id)
        for t in tables(dialect)
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
    """Run ``statement(table, where)`` on the person's events, then (SQLite) on the entries
    of both tables. SQLite finds the events by their entries: it has no index on
    ``events.person_id``."""

    def mine(table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.workspace_id == workspace_id, table.c.person_id == person_id)

    if not in_tables(conn.dialect.name):
        conn.execute(statement(events, mine(events)))
        return
    seqs = sa.select(entries(sa.literal(workspace_id), sa.literal(person_id)).c.seq)
    conn.execute(
        statement(events, sa.and_(events.c.workspace_id == workspace_id, events.c.seq.in_(seqs)))
    )
    for table in _TABLES:
        conn.execute(statement(table, mine(table)))
