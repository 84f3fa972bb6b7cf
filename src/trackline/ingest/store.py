"""SQL of the ingest path: dedup look-ups, event rows, failed events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from trackline.storage import dialect
from trackline.storage.schema import events, failed_events


def existing_message_ids(
    conn: sa.Connection, *, workspace_id: str, message_ids: Iterable[str]
) -> dict[str, str]:
    """``message_id -> event id`` for the message ids already stored in the workspace."""
    found: dict[str, str] = {}
    for part in dialect.chunks(sorted(set(message_ids))):
        if not part:
            continue
        rows = conn.execute(
            sa.select(events.c.message_id, events.c.id).where(
                events.c.workspace_id == workspace_id, events.c.message_id.in_(part)
            )
        )
        found.update({mid: eid for mid, eid in rows})
    return found


_COPY_COLUMNS = [c.name for c in events.columns if c.name != "seq"]
_JSON_COLUMNS = frozenset({"parameters", "context"})
_COPY_THRESHOLD = 50  # rows; below it one multi-row INSERT is cheaper than COPY's round trips


def insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert event rows; a message id stored meanwhile by another writer is skipped."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= _COPY_THRESHOLD:
        _copy_events(conn, rows)
        return
    if any(row["message_id"] is not None for row in rows):
        conn.execute(dialect.insert_ignore(conn, events, on=["workspace_id", "message_id"]), rows)
    else:
        conn.execute(events.insert(), rows)


def insert_failed(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(failed_events.insert(), rows)


def _copy_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: ``COPY`` the rows into a per-transaction staging table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: far cheaper than a multi-row INSERT with
    bound parameters, and the dedup rule stays the database's."""
    columns = ", ".join(_COPY_COLUMNS)
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS events_staging ON COMMIT DELETE ROWS"
        f" AS SELECT {columns} FROM events WITH NO DATA"
    )
    driver = conn.connection.driver_connection
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY events_staging ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    orjson.dumps(row[name]).decode() if name in _JSON_COLUMNS else row[name]
                    for name in _COPY_COLUMNS
                ]
            )
    conn.exec_driver_sql(
        f"INSERT INTO events ({columns}) SELECT {columns} FROM events_staging"
        " ON CONFLICT (workspace_id, message_id) DO NOTHING"
    )
