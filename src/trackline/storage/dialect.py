"""The differences between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from trackline.storage import roundtrips


def insert_ignore(conn: sa.Connection, table: sa.Table, *, on: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (on) DO NOTHING`` for the connection's dialect."""
    return _insert_ignore(conn.dialect.name, table, tuple(on))


# The statement builders below are cached: one statement object per shape keeps its SQL cache
# key memoised, which saves rebuilding and hashing it on every execution of the write path.
@functools.lru_cache(maxsize=64)
def _insert_ignore(dialect: str, table: sa.Table, on: tuple[str, ...]) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=list(on))


def upsert(conn: sa.Connection, table: sa.Table, *, on: list[str], update: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (on) DO UPDATE SET col = excluded.col`` for each of ``update``."""
    return _upsert(conn.dialect.name, table, tuple(on), tuple(update))


@functools.lru_cache(maxsize=64)
def _upsert(dialect: str, table: sa.Table, on: tuple[str, ...], update: tuple[str, ...]) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(on), set_={name: stmt.excluded[name] for name in update}
    )


# Most rows in one multi-row INSERT (``rows_per_statement`` keeps within the parameter limit).
# A commit's rows go in statements of power-of-two sizes and one smaller rest
# (``statement_parts``), so a table has about 130 distinct INSERT texts at most and the
# driver's statement cache (``SQLITE_STATEMENT_CACHE``) holds them: preparing a statement anew
# costs about 1.6 microseconds per row on SQLite, more than binding and running it. Few
# statements per commit also means few GIL hand-offs for the writer (docs/benchmark.md,
# round 6).
ROWS_PER_INSERT = 2048
SMALL_PART = 128  # below this many rows, one statement of any size (``statement_parts``)
SQLITE_STATEMENT_CACHE = 512  # prepared statements kept per SQLite connection (Python: 128)
SQLITE_CHECKPOINT_PAGES = 16_000  # WAL pages between automatic checkpoints (SQLite: 1,000)
POSTGRES_PARAMETERS = 65_535  # the protocol's limit on one statement's parameters
PING_AFTER_IDLE_S = 1.0  # PostgreSQL: a pooled connection idle this long is checked before use


def insert_values(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    conflict: str = "",
) -> int:
    """``INSERT INTO table (columns) VALUES (...), (...) [conflict]`` for positional rows, as
    driver-level statements of up to ``rows_per_statement`` rows: no per-row work in Python, and
    on SQLite one GIL release per statement instead of one per row as with ``executemany``.
    Values go to the driver as they are (JSON already serialised). Returns the rows inserted
    (those a ``DO NOTHING`` conflict clause skipped not counted)."""
    if not rows:
        return 0
    postgres = conn.dialect.name == "postgresql"
    # PostgreSQL: a raw cursor takes the statement with native ``$n`` placeholders as it is.
    # psycopg's own ``%s`` statements are parsed anew on every call once they carry more than
    # 50 parameters (about 1 ms for a commit's rows, more than PostgreSQL takes to run them).
    inserted = 0
    with contextlib.ExitStack() as stack:
        cursor = stack.enter_context(driver_cursor(conn, raw=True)) if postgres else None
        for part in statement_parts(rows, rows_per_statement(conn, len(columns))):
            sql = _values_sql(table.name, columns, len(part), conflict, postgres)
            values = tuple(itertools.chain.from_iterable(part))
            if cursor is not None:
                cursor.execute(sql, values)
                inserted += cursor.rowcount
            else:
                inserted += conn.exec_driver_sql(sql, values).rowcount
    return inserted


def rows_per_statement(conn: sa.Connection, width: int) -> int:
    """Rows of ``width`` values that fit one statement: ``ROWS_PER_INSERT``, or fewer where the
    database takes fewer parameters (SQLite's limit is a build setting: 32,766 since 3.32,
    999 before)."""
    if conn.dialect.name == "postgresql":
        limit = POSTGRES_PARAMETERS
    else:
        limit = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(ROWS_PER_INSERT, limit // width))


def statement_parts(rows: list[Any], most: int) -> Iterator[list[Any]]:
    """``rows`` in consecutive parts: power-of-two sizes of at least ``SMALL_PART`` rows, the
    largest first and none over ``most``, then the rest (under ``SMALL_PART`` rows) in one
    part. 1,500 rows with ``most`` 2,048 go as 1,024 + 256 + 128 + 92; 70 rows as one part.
    A table's INSERTs then have at most ``SMALL_PART`` + 5 distinct sizes."""
    size = 1 << (max(most, 1).bit_length() - 1)  # the largest power of two <= most
    start = 0
    while start < len(rows):
        left = len(rows) - start
        if left < SMALL_PART and left <= most:
            yield rows[start:]
            return
        while size > left:
            size //= 2
        yield rows[start : start + size]
        start += size


@contextlib.contextmanager
def driver_cursor(conn: sa.Connection, *, raw: bool = False) -> Iterator[Any]:
    """A psycopg cursor on the connection's transaction (``raw``: PostgreSQL's ``$n``
    placeholders), for what SQLAlchemy cannot send as cheaply (``COPY``, many-row inserts).
    What the transaction left waiting is sent first (``roundtrips``). Its errors leave as
    SQLAlchemy's, as every other statement's do, and a connection lost on the way is
    invalidated, so callers see a lost database the same way whichever path lost it."""
    roundtrips.send_waiting(conn)
    driver = conn.connection.driver_connection
    with (
        roundtrips.driver_errors(conn),
        psycopg.RawCursor(driver) if raw else driver.cursor() as cursor,  # type: ignore[union-attr]
    ):
        yield cursor


@functools.lru_cache(maxsize=256)
def _values_sql(table: str, columns: tuple[str, ...], count: int, tail: str, numbered: bool) -> str:
    width = len(columns)
    if numbered:  # PostgreSQL's own $1, $2, ...
        rows = [
            "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
            for r in range(count)
        ]
    else:
        rows = ["(" + ", ".join("?" for _ in columns) + ")"] * count
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(rows)} {tail}"


def counting_conflict(
    table: sa.Table,
    *,
    on: tuple[str, ...],
    add: tuple[str, ...],
    latest: tuple[str, ...],
    first: tuple[str, ...],
) -> str:
    """``ON CONFLICT (on) DO UPDATE``: ``add`` columns are summed, ``latest`` take the new value,
    ``first`` keep the stored value unless it is null. SQL text, the same on both databases."""
    changes = [f"{c} = {table.name}.{c} + excluded.{c}" for c in add]
    changes += [f"{c} = excluded.{c}" for c in latest]
    changes += [f"{c} = COALESCE({table.name}.{c}, excluded.{c})" for c in first]
    return f"ON CONFLICT ({', '.join(on)}) DO UPDATE SET {', '.join(changes)}"


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    """Split bound-parameter lists so no statement exceeds a dialect's parameter limit."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def one_of(dialect: str, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    """``column IN (the list bound as name)`` with one parameter however many values: ``=
    ANY(array)`` on PostgreSQL, ``IN (SELECT value FROM json_each(json))`` on SQLite; bind
    ``listed(dialect, values)``. A parameter per value made psycopg parse the statement anew
    on every call (it caches only statements of up to 50 parameters) and SQLAlchemy expand
    the list on every call: milliseconds per commit. With the list bound, a statement using
    this is built once (see ``catalog.store.declarations``)."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    listed = sa.func.json_each(sa.bindparam(name, type_=sa.String)).table_valued("value")
    return column.in_(sa.select(listed.c.value))


def listed(dialect: str, values: list[Any]) -> Any:
    """The value to bind for ``one_of``."""
    return values if dialect == "postgresql" else orjson.dumps(values).decode()


def lock_keys(conn: sa.Connection, keys: list[str], *, shared: bool = False) -> None:
    """Serialise concurrent writers that touch the same keys (identities) until commit;
    ``shared`` locks only exclude the exclusive ones.

    SQLite needs nothing: ``BEGIN IMMEDIATE`` already admits one writer at a time. PostgreSQL
    takes transaction-scoped advisory locks, in a fixed order so two writers cannot deadlock.
    """
    if conn.dialect.name != "postgresql" or not keys:
        return
    roundtrips.together(conn, [lock_statement(keys, shared=shared)])


def lock_statement(keys: list[str], *, shared: bool = False) -> roundtrips.Statement:
    """PostgreSQL: ``lock_keys``'s statement, to send with others (``roundtrips``)."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    sql = (
        f"SELECT {function}(k) FROM"
        " (SELECT DISTINCT hashtextextended(x, 0) AS k FROM unnest($1::text[]) AS x)"
        " AS t ORDER BY k"
    )
    return sql, (sorted(set(keys)),)


def text_contains(
    conn: sa.Connection, column: sa.ColumnElement[str], text: str
) -> sa.ColumnElement[bool]:
    """``column`` contains ``text``, case-sensitively and with no pattern characters (SQLite's
    ``LIKE`` ignores case)."""
    position = "instr" if conn.dialect.name == "sqlite" else "strpos"
    return getattr(sa.func, position)(column, text) > 0
