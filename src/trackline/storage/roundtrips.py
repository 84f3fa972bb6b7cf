"""Fewer PostgreSQL round trips per write transaction.

A commit of single events took eight round trips (BEGIN, the declarations look-up, the hold
against erasure, the identities look-up, SAVEPOINT, COPY, the catalog upsert, COMMIT), and
each one hands the interpreter lock from the writer thread to the event loop and back: with
256 requests in flight the writer spent nine tenths of its time in them (docs/benchmark.md,
round 15). Here the statements that need no answer before the next one share a round trip
with it, in psycopg's pipeline mode:

- ``Database.write`` sends no ``BEGIN`` of its own (the driver is in autocommit mode, see
  ``begin_lazily``): the transaction's ``BEGIN`` goes with its first statement.
- ``soon(conn, statement)`` queues a statement whose rows nobody reads (a lock, an upsert);
  it goes with the transaction's next statement or with its ``COMMIT``.
- ``together(conn, statements)`` sends what waits and ``statements`` at once and answers
  each one's rows.

A statement sent through SQLAlchemy or ``dialect.driver_cursor`` first sends what waits, in a
round trip of its own (``send_waiting``), so the order of statements is always the order in
which they were issued. SQLite has none of this: its statements are calls into a library.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy import exc as sa_exc

# A PostgreSQL statement with ``$n`` placeholders, and its values.
Statement = tuple[str, tuple[Any, ...]]
Rows = list[tuple[Any, ...]]

_KEY = "trackline_waiting"
_TUPLES = pq.ExecStatus.TUPLES_OK


@dataclass(slots=True)
class _Waiting:
    """What one transaction has not sent yet."""

    transaction: sa.RootTransaction | None
    begin: bool = True
    statements: list[Statement] = field(default_factory=list)
    seen: set[Hashable] = field(default_factory=set)


def begin_lazily(conn: sa.Connection) -> None:
    """Mark the transaction just begun on ``conn`` (its driver in autocommit mode) as not
    begun on the server yet: its ``BEGIN`` goes with its first statement."""
    conn.info[_KEY] = _Waiting(conn.get_transaction())


def soon(conn: sa.Connection, statement: Statement) -> None:
    """Run ``statement``, whose rows nobody reads, before the transaction's next statement
    and in the same round trip, or with its ``COMMIT``. Its failure fails that statement."""
    _waiting(conn).statements.append(statement)


def once(conn: sa.Connection, token: Hashable) -> bool:
    """True the first time ``token`` is seen in the transaction (a lock it holds already)."""
    seen = _waiting(conn).seen
    if token in seen:
        return False
    seen.add(token)
    return True


def together(conn: sa.Connection, statements: Sequence[Statement]) -> list[Rows]:
    """Run what waits, then ``statements``, in one round trip; each statement's rows."""
    begin, ahead = _take(conn)
    rows = _send(conn, [*ahead, *statements], begin=begin)
    return rows[len(ahead) :]


def send_waiting(conn: sa.Connection, *, translate: bool = True) -> None:
    """Send what waits (the ``BEGIN``, ``soon`` statements) now, before another statement.
    ``translate=False`` inside SQLAlchemy's own execution of a statement, which translates
    psycopg's errors itself (and invalidates a lost connection its own way)."""
    begin, ahead = _take(conn)
    if begin or ahead:
        _send(conn, ahead, begin=begin, translate=translate)


def commit(conn: sa.Connection) -> None:
    """Commit the transaction, with what waits in the same round trip. One that never sent
    a statement has nothing to commit; one the driver began, SQLAlchemy commits."""
    waiting = _marked(conn)
    conn.info.pop(_KEY, None)  # committed: nothing waits any more, not even a COMMIT
    if waiting is None or (waiting.begin and not waiting.statements):
        return
    _send(conn, [*waiting.statements, ("COMMIT", ())], begin=waiting.begin)


def drop(conn: sa.Connection) -> None:
    """The transaction rolls back: what waits is never sent (a lost connection's is gone
    with it)."""
    if not conn.invalidated:
        conn.info.pop(_KEY, None)


@contextlib.contextmanager
def driver_errors(conn: sa.Connection) -> Iterator[None]:
    """psycopg's errors leave as SQLAlchemy's, as every other statement's do, and a
    connection lost on the way is invalidated."""
    driver = conn.connection.driver_connection
    try:
        yield
    except psycopg.Error as exc:
        lost = bool(driver.closed)  # type: ignore[union-attr]
        if lost:
            conn.invalidate()
        raise sa_exc.DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost
        ) from exc


def _waiting(conn: sa.Connection) -> _Waiting:
    """The transaction's waiting state (a transaction ``begin_lazily`` did not mark has
    begun on the server already: the driver began it)."""
    transaction = conn.get_transaction()
    waiting = conn.info.get(_KEY)
    if waiting is None or waiting.transaction is not transaction:
        waiting = conn.info[_KEY] = _Waiting(transaction, begin=False)
    return waiting


def _marked(conn: sa.Connection) -> _Waiting | None:
    """The transaction's waiting state, if it has one."""
    waiting = conn.info.get(_KEY)
    if waiting is None or waiting.transaction is not conn.get_transaction():
        return None
    return waiting


def _take(conn: sa.Connection) -> tuple[bool, list[Statement]]:
    """Take what waits: whether the ``BEGIN`` is still to be sent, and the ``soon``
    statements; the transaction has begun on the server once they are sent."""
    waiting = _marked(conn)
    if waiting is None:
        return False, []
    taken = waiting.begin, waiting.statements
    waiting.begin, waiting.statements = False, []
    return taken


def _send(
    conn: sa.Connection, statements: list[Statement], *, begin: bool, translate: bool = True
) -> list[Rows]:
    driver: Any = conn.connection.driver_connection
    if begin:
        statements = [("BEGIN", ()), *statements]
    with driver_errors(conn) if translate else contextlib.nullcontext():
        cursors = [psycopg.RawCursor(driver) for _ in statements]
        with driver.pipeline():
            for cursor, (sql, values) in zip(cursors, statements, strict=True):
                cursor.execute(sql, values or None)
        rows = [_rows(cursor) for cursor in cursors]
    return rows[1:] if begin else rows


def _rows(cursor: psycopg.RawCursor[Any]) -> Rows:
    result = cursor.pgresult
    with cursor:
        return cursor.fetchall() if result is not None and result.status == _TUPLES else []
