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
- ``ahead(conn, key, statement)`` queues a look-up whose rows are wanted later: it goes with
  the next round trip, after the ``soon`` statements, and ``answer(conn, key)`` hands back its
  rows (sending what waits first if nothing has gone yet).

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
    reads: dict[Hashable, Statement] = field(default_factory=dict)  # ``ahead``, not sent yet
    answers: dict[Hashable, tuple[Statement, Rows]] = field(default_factory=dict)


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


def ahead(conn: sa.Connection, key: Hashable, statement: Statement) -> None:
    """Send ``statement`` with the transaction's next round trip and keep its rows for
    ``answer(conn, key)``: a look-up issued before the statement that needs its rows, so the
    two share a round trip."""
    _waiting(conn).reads[key] = statement


def answer(conn: sa.Connection, key: Hashable) -> tuple[Statement, Rows] | None:
    """The statement queued by ``ahead`` under ``key`` and its rows, once: sent now with what
    waits if it has not gone yet; None when this transaction queued none."""
    waiting = _marked(conn)
    if waiting is None:
        return None
    if key in waiting.reads:
        send_waiting(conn)
    return waiting.answers.pop(key, None)


def forget(conn: sa.Connection, key: Hashable) -> None:
    """Drop the look-up queued under ``key`` and its rows, sent or not."""
    waiting = _marked(conn)
    if waiting is not None:
        waiting.reads.pop(key, None)
        waiting.answers.pop(key, None)


def together(conn: sa.Connection, statements: Sequence[Statement]) -> list[Rows]:
    """Run what waits, then ``statements``, in one round trip; each statement's rows."""
    taken = _take(conn)
    rows = _send(conn, [*taken.statements, *statements], begin=taken.begin)
    _keep(conn, taken, rows)
    return rows[len(taken.statements) :]


def send_waiting(conn: sa.Connection, *, translate: bool = True) -> None:
    """Send what waits (the ``BEGIN``, ``soon`` and ``ahead`` statements) now, before
    another statement. ``translate=False`` inside SQLAlchemy's own execution of a statement,
    which translates psycopg's errors itself (and invalidates a lost connection its own
    way)."""
    taken = _take(conn)
    if taken.begin or taken.statements:
        rows = _send(conn, taken.statements, begin=taken.begin, translate=translate)
        _keep(conn, taken, rows)


def commit(conn: sa.Connection) -> None:
    """Commit the transaction, with what waits in the same round trip. One that never sent
    a statement has nothing to commit; one the driver began, SQLAlchemy commits."""
    waiting = _marked(conn)
    conn.info.pop(_KEY, None)  # committed: nothing waits any more, not even a COMMIT
    if waiting is None or (waiting.begin and not waiting.statements):
        return  # look-ups still waiting are not sent: nothing reads them any more
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


@dataclass(slots=True)
class _Taken:
    """What waited, taken to be sent."""

    begin: bool  # the ``BEGIN`` is still to be sent
    statements: list[Statement]  # the ``soon`` statements, then the ``ahead`` look-ups
    reads: list[Hashable]  # the look-ups' keys: the last ``len(reads)`` of ``statements``


def _take(conn: sa.Connection) -> _Taken:
    """Take what waits; the transaction has begun on the server once it is sent."""
    waiting = _marked(conn)
    if waiting is None:
        return _Taken(False, [], [])
    taken = _Taken(waiting.begin, [*waiting.statements, *waiting.reads.values()], [*waiting.reads])
    waiting.begin, waiting.statements, waiting.reads = False, [], {}
    return taken


def _keep(conn: sa.Connection, taken: _Taken, rows: list[Rows]) -> None:
    """Keep the rows of the ``ahead`` look-ups just sent for ``answer``."""
    waiting = _marked(conn)
    if waiting is None or not taken.reads:
        return
    first = len(taken.statements) - len(taken.reads)
    for n, key in enumerate(taken.reads, start=first):
        waiting.answers[key] = (taken.statements[n], rows[n])


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
