"""SQL of the ingest path: dedup look-ups, event rows, failed events.

A commit's rows go to the database in as few statements as possible, because every statement
is a GIL hand-off between the writer thread and the event loop: multi-row ``INSERT ... VALUES``
statements (the SQLite driver releases the GIL once per statement, not once per row as
``executemany`` does), or on PostgreSQL, from ``_COPY_THRESHOLD`` rows, ``COPY``. The
dedup look-up binds the whole list of message ids as one parameter."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa

from trackline.ingest.model import CanonicalEvent
from trackline.storage import dialect
from trackline.storage.schema import events, failed_events

# An event row is a tuple of these columns' values, in this order (``event_row``).
COLUMNS = tuple(str(c.name) for c in events.columns if c.name != "seq")
ID, EVENT, MESSAGE_ID = (COLUMNS.index(c) for c in ("id", "event", "message_id"))
_NAMES = ", ".join(COLUMNS)
EventRow = tuple[Any, ...]
_SKIP_STORED = "ON CONFLICT (workspace_id, message_id) DO NOTHING"
_COPY_THRESHOLD = 10  # PostgreSQL rows; below it one multi-row INSERT is as cheap as COPY
# COPYs (each under a savepoint, a subtransaction) in one transaction; then multi-row INSERTs.
# PostgreSQL keeps 64 subtransactions per session in shared memory; past that, every other
# session's snapshots look them up in pg_subtrans.
_COPY_SAVEPOINTS = 32


def existing_message_ids(
    conn: sa.Connection, *, workspace_id: str, message_ids: Iterable[str]
) -> dict[str, str]:
    """``message_id -> event id`` for the message ids already stored in the workspace."""
    wanted = list(set(message_ids))
    if not wanted:
        return {}
    name = conn.dialect.name
    bound = {"workspace_id": workspace_id, "message_ids": dialect.listed(name, wanted)}
    return {mid: eid for mid, eid in conn.execute(_known_statement(name), bound)}


@functools.lru_cache(maxsize=4)
def _known_statement(dialect_name: str) -> sa.Select[tuple[str, str]]:
    """Built once per dialect: every commit of ingest on SQLite runs it."""
    return sa.select(events.c.message_id, events.c.id).where(
        events.c.workspace_id == sa.bindparam("workspace_id"),
        dialect.one_of(dialect_name, events.c.message_id, "message_ids"),
    )


def event_row(
    event_id: str, workspace_id: str, person_id: str, e: CanonicalEvent, created_at: int
) -> EventRow:
    """An event's row, in ``COLUMNS`` order, its JSON columns as text."""
    return (
        event_id,
        workspace_id,
        person_id,
        e.external_id,
        e.device_id,
        e.event,
        e.parameters_json or orjson.dumps(e.parameters).decode(),
        e.group_id,
        e.context_json or orjson.dumps(e.context).decode(),
        e.timestamp,
        created_at,
        e.message_id,
    )


def insert_events(conn: sa.Connection, rows: list[EventRow]) -> int:
    """Insert event rows (``event_row``); a message id already stored (by another writer
    meanwhile) is skipped. Returns how many rows were inserted."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql" and len(rows) >= _COPY_THRESHOLD and _copies_left(conn):
        return _copy_events(conn, rows)
    return dialect.insert_values(conn, events, COLUMNS, rows, conflict=_SKIP_STORED)


def _copies_left(conn: sa.Connection) -> bool:
    """Count a ``COPY`` against the transaction's ``_COPY_SAVEPOINTS``; False once spent (a
    commit of many workspaces' requests runs one insert per workspace)."""
    transaction = conn.get_transaction()
    spent = conn.info.get("copies")
    if spent is None or spent[0] is not transaction:
        spent = conn.info["copies"] = [transaction, 0]
    if spent[1] >= _COPY_SAVEPOINTS:
        return False
    spent[1] += 1
    return True


def insert_failed(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(failed_events.insert(), rows)


def _copy_events(conn: sa.Connection, values: list[EventRow]) -> int:
    """PostgreSQL: ``COPY`` the rows straight into ``events`` under a savepoint. A conflict
    means a message id was stored before (a retry) or by another process meanwhile (rare):
    then the savepoint is rolled back and the rows go through a staging table and ``INSERT ...
    SELECT ... ON CONFLICT DO NOTHING``, which skips them. The savepoint is not released: it
    ends with the transaction, and a release would be one more round trip per commit. Any
    other error leaves the transaction failed: the caller must not go on with it."""
    conn.exec_driver_sql("SAVEPOINT events_copy")
    try:
        _copy(conn, "events", values)
        return len(values)
    except sa.exc.IntegrityError as exc:
        if not isinstance(exc.orig, psycopg.errors.UniqueViolation):
            raise
    conn.exec_driver_sql("ROLLBACK TO SAVEPOINT events_copy")
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS events_staging ON COMMIT DELETE ROWS"
        f" AS SELECT {_NAMES} FROM events WITH NO DATA"
    )
    _copy(conn, "events_staging", values)
    # Moving the rows out empties the staging table for the next insert of this transaction.
    inserted = conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM events_staging RETURNING {_NAMES}),"
        f" stored AS (INSERT INTO events ({_NAMES}) SELECT {_NAMES} FROM moved"
        f" {_SKIP_STORED} RETURNING 1)"
        " SELECT count(*) FROM stored"
    ).scalar_one()
    return int(inserted)


def _copy(conn: sa.Connection, table: str, values: list[EventRow]) -> None:
    with (
        dialect.driver_cursor(conn) as cursor,
        cursor.copy(f"COPY {table} ({_NAMES}) FROM STDIN") as copy,
    ):
        for row in values:
            copy.write_row(row)
