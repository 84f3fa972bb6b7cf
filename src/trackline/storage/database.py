"""Engines, pragmas and transactions for SQLite and PostgreSQL, built from a URL (never at
import time). Driver errors are translated here into domain errors."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from trackline.errors import Unavailable
from trackline.storage import dialect, roundtrips

log = logging.getLogger(__name__)
T = TypeVar("T")
WRITE_POOL = 2  # PostgreSQL: connections kept for writes per process (as many more at a peak)


def normalise_url(url: str) -> sa.URL:
    """Accept ``postgresql://`` and ``postgres://`` and select the psycopg 3 driver for them."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """One database: a write engine and a read engine (the same one on PostgreSQL).

    SQLite discipline: WAL, ``busy_timeout``, ``foreign_keys=ON``, ``synchronous=FULL`` and
    ``BEGIN IMMEDIATE`` for every write transaction, so concurrent writers queue instead of
    failing half way and an acknowledged commit is on disk.
    """

    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 8,
        ping_after_idle_s: float = dialect.PING_AFTER_IDLE_S,
    ) -> None:
        self.url = normalise_url(url)
        self.dialect = "postgresql" if self.url.get_backend_name() == "postgresql" else "sqlite"
        options: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        self._async_reads: tuple[asyncio.AbstractEventLoop, AsyncEngine] | None = None
        if self.dialect == "sqlite":
            self.write_engine = self._sqlite_engine("BEGIN IMMEDIATE", sqlite_synchronous, options)
            self.read_engine = self._sqlite_engine("BEGIN", sqlite_synchronous, options)
            # One-statement reads: no transaction (the driver's autocommit mode).
            self.statement_engine = self._sqlite_engine(None, sqlite_synchronous, options)
        else:
            # No automatic server-side prepared statements: psycopg would prepare the dedup and
            # identity look-ups while the tables are still small, and PostgreSQL's generic plan
            # for them then scans instead of using the index as the tables grow.
            self._pg_options = {
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "connect_args": {"prepare_threshold": None, "options": "-c jit=off"},
                **options,
            }
            self._ping_after_idle_s = ping_after_idle_s
            # The requests' reads have a pool of their own (``reading``); this one serves the
            # writer, its ANALYZE thread, health checks and the CLI.
            writes = min(pool_size, WRITE_POOL)
            self.write_engine = sa.create_engine(
                self.url, **{**self._pg_options, "pool_size": writes, "max_overflow": writes}
            )
            _ping_when_idle(self.write_engine, ping_after_idle_s)
            # Reads need no transaction: under READ COMMITTED every statement has its own
            # snapshot anyway, and BEGIN and COMMIT would be two more round trips per read.
            self.read_engine = self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
            self.statement_engine = self.read_engine
            # Write transactions send their BEGIN with their first statement
            # (``roundtrips``): the driver stays in autocommit mode and is told nothing.
            self._lazy_engine = self.read_engine
            _send_waiting_first(self.write_engine)

    def _sqlite_engine(
        self, begin: str | None, synchronous: str, options: dict[str, Any]
    ) -> sa.Engine:
        engine = sa.create_engine(
            self.url,
            connect_args={
                "check_same_thread": False,
                "cached_statements": dialect.SQLITE_STATEMENT_CACHE,
            },
            **options,
        )
        # ``executemany`` of an INSERT becomes multi-row ``INSERT ... VALUES`` statements:
        # the driver releases the GIL once per statement instead of once per row, and each
        # release makes the writer queue behind the event loop for the GIL again.
        engine.dialect.use_insertmanyvalues_wo_returning = True

        @sa_event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=WAL",
                "busy_timeout=10000",
                "foreign_keys=ON",
                f"synchronous={synchronous}",
                "cache_size=-65536",
                # Checkpoint every 16,000 WAL pages (64 MB) rather than SQLite's 1,000: most
                # index pages a commit writes (a person's timeline page, above all) are written
                # again by the next commits, so a checkpoint copies each back to the database
                # file once for a dozen commits, with one fsync (docs/benchmark.md, round 7).
                f"wal_autocheckpoint={dialect.SQLITE_CHECKPOINT_PAGES}",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        if begin is not None:

            @sa_event.listens_for(engine, "begin")
            def _begin(conn: sa.Connection) -> None:
                conn.exec_driver_sql(begin)

        return engine

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        if self.dialect == "sqlite":
            with translate_errors(), self.write_engine.begin() as conn:
                yield conn
            return
        with translate_errors(), self._lazy_engine.begin() as conn:
            roundtrips.begin_lazily(conn)
            yield conn
            roundtrips.commit(conn)  # what waits goes with the COMMIT

    @contextlib.contextmanager
    def read(self, *, one_statement: bool = False) -> Iterator[sa.Connection]:
        """For reading only. SQLite: a transaction, so one snapshot for all its statements
        (``one_statement``: none, as one statement is its own snapshot; BEGIN and COMMIT are
        two more driver calls, each a GIL hand-off). PostgreSQL: no transaction (``READ
        COMMITTED`` gives each statement its own snapshot either way); a read that needs one
        snapshot puts it in one statement."""
        engine = self.statement_engine if one_statement else self.read_engine
        with translate_errors(), engine.begin() as conn:
            yield conn

    async def reading(
        self, fn: Callable[..., T], /, *, one_statement: bool = False, **kwargs: Any
    ) -> T:
        """Run the read ``fn(conn, **kwargs)`` from async code and return what it returns.
        PostgreSQL: on the event loop, over psycopg's async connections (SQLAlchemy runs
        ``fn``'s statements as awaits), so a read is not handed to a worker thread and back:
        two thread wake-ups fewer, each of which waits for a CPU on a busy server. SQLite,
        whose driver blocks: in a worker thread, in ``read``'s transaction."""
        if self.dialect != "postgresql":
            call = functools.partial(self._read_sync, fn, one_statement, kwargs)
            return await anyio.to_thread.run_sync(call)
        with translate_errors():
            async with self._async_read_engine().connect() as conn:
                return await conn.run_sync(fn, **kwargs)

    def _read_sync(self, fn: Callable[..., T], one_statement: bool, kwargs: dict[str, Any]) -> T:
        with self.read(one_statement=one_statement) as conn:
            return fn(conn, **kwargs)

    def _async_read_engine(self) -> AsyncEngine:
        """PostgreSQL's engine for ``reading``, made on first use: its pool's connections
        belong to the event loop they were opened in, so another loop gets an engine of its
        own (tests run apps in several)."""
        loop = asyncio.get_running_loop()
        if self._async_reads is not None and self._async_reads[0] is not loop:
            # A loop that ended without ``close_reads``: its connections cannot be closed
            # from this one, so they are let go (their sockets close when they are freed).
            log.warning("read connections of another event loop were not closed")
            self._async_reads[1].sync_engine.dispose(close=False)
            self._async_reads = None
        if self._async_reads is None:
            engine = create_async_engine(self.url, isolation_level="AUTOCOMMIT", **self._pg_options)
            _ping_when_idle(engine.sync_engine, self._ping_after_idle_s)
            self._async_reads = (loop, engine)
        return self._async_reads[1]

    async def close_reads(self) -> None:
        """Close the connections ``reading`` opened in the running event loop."""
        if self._async_reads is not None and self._async_reads[0] is asyncio.get_running_loop():
            await self._async_reads[1].dispose()
            self._async_reads = None

    def ping(self) -> bool:
        try:
            with self.read() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Unavailable:
            return False
        return True

    def refresh_statistics(self) -> None:
        """PostgreSQL: ``ANALYZE`` the tables ingest looks things up in. On a young database
        autovacuum has not analyzed them yet, and without statistics the planner answers the
        message-id dedup look-up by scanning the workspace's events instead of using its
        index. Cheap (sampled); SQLite needs nothing."""
        if self.dialect != "postgresql":
            return
        try:
            with self.write() as conn:
                conn.exec_driver_sql(
                    "ANALYZE events, identities, people, event_definitions, event_property_types"
                )
        except Exception:  # statistics are an optimisation, never a failure
            log.warning("ANALYZE failed", exc_info=True)

    def setting_warnings(self) -> list[str]:
        """What the database is set up to do that Trackline's reads suffer from (logged when a
        server starts). PostgreSQL: autovacuum off (or ``track_counts``, which it needs). A
        timeline's ``total`` is an index-only count, which visits the table for every entry
        stored since the last vacuum; without autovacuum that is every entry ingested since
        the last manual ``VACUUM``, and timelines slow down as events arrive."""
        if self.dialect != "postgresql":
            return []
        with self.read(one_statement=True) as conn:
            off = conn.exec_driver_sql(
                "SELECT name FROM pg_settings"
                " WHERE name IN ('autovacuum', 'track_counts') AND setting = 'off' ORDER BY name"
            ).scalars()
            names = ", ".join(f"{name}=off" for name in off)
        if not names:
            return []
        return [
            f"PostgreSQL does not vacuum on its own ({names}): person timelines slow down as"
            " events arrive until the events table is vacuumed; turn autovacuum on"
            " (docs/operations.md)"
        ]

    def migrate(self) -> None:
        """Bring the schema to the newest revision (creates it on an empty database)."""
        from trackline.storage.migrate import upgrade

        with translate_errors(), self.write_engine.begin() as conn:
            upgrade(conn)

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.dialect == "sqlite":  # PostgreSQL's read engines share the write pool
            self.read_engine.dispose()
            self.statement_engine.dispose()


def _send_waiting_first(engine: sa.Engine) -> None:
    """PostgreSQL: what a transaction left waiting (``roundtrips``) goes before its next
    statement sent through SQLAlchemy, and with its COMMIT; a rollback drops it."""

    @sa_event.listens_for(engine, "before_cursor_execute")
    def _before(conn: sa.Connection, *_: Any) -> None:
        roundtrips.send_waiting(conn, translate=False)

    @sa_event.listens_for(engine, "commit")
    def _commit(conn: sa.Connection) -> None:
        roundtrips.commit(conn)

    @sa_event.listens_for(engine, "rollback")
    def _rollback(conn: sa.Connection) -> None:
        roundtrips.drop(conn)


def _ping_when_idle(engine: sa.Engine, idle_s: float) -> None:
    """Check a pooled connection before use only when it sat idle ``idle_s`` or longer (a
    server restart, an idle timeout): SQLAlchemy's ``pool_pre_ping`` costs a round trip on
    every checkout, one more per commit for the writer and per read, and under load those
    connections were in use a moment ago. A connection that fails the check is replaced,
    with every pooled connection older than it (the pool then retries with a new one); one
    lost within ``idle_s`` of its last use fails its statement as ``Unavailable`` and is
    replaced."""

    @sa_event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa_event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa_exc.InvalidatePoolError("connection failed its check") from exc


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a lost or refused database connection into ``Unavailable`` (503)."""
    try:
        yield
    except sa_exc.OperationalError as exc:
        if _is_connection_problem(exc):
            raise Unavailable(f"database unavailable: {exc.orig}") from exc
        raise
    except sa_exc.DisconnectionError as exc:
        raise Unavailable("database unavailable") from exc


def _is_connection_problem(exc: sa_exc.OperationalError) -> bool:
    text = str(exc.orig).lower()
    signs = ("connection", "could not connect", "unable to open", "server closed", "refused")
    return exc.connection_invalidated or any(sign in text for sign in signs)
