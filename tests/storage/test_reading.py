"""``Database.reading``: a read from async code. On PostgreSQL it runs on the event loop over
psycopg's async connections (no worker thread), with the same connection discipline as the
other engines; on SQLite in a worker thread, in a read transaction."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import sqlalchemy as sa

from tests.storage.conftest import IDLE_S, kill_backend
from trackline.errors import NotFound, Unavailable
from trackline.storage.database import Database


def _thread(conn: sa.Connection) -> int:
    conn.execute(sa.text("SELECT 1"))
    return threading.get_ident()


def _backend(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _count(conn: sa.Connection, *, table: str) -> int:
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def _missing(conn: sa.Connection) -> None:
    raise NotFound("no such thing")


def test_a_read_returns_what_its_function_returns(db: Database) -> None:
    async def main() -> tuple[int, int]:
        try:
            return (
                await db.reading(_count, table="workspaces"),
                await db.reading(_count, one_statement=True, table="workspaces"),
            )
        finally:
            await db.close_reads()

    assert asyncio.run(main()) == (0, 0)


def test_postgresql_reads_on_the_event_loop_and_sqlite_in_a_worker_thread(db: Database) -> None:
    async def main() -> int:
        try:
            return await db.reading(_thread)
        finally:
            await db.close_reads()

    ran_on = asyncio.run(main())
    if db.dialect == "postgresql":
        assert ran_on == threading.get_ident()
    else:
        assert ran_on != threading.get_ident()


def test_an_error_of_the_function_reaches_the_caller(db: Database) -> None:
    async def main() -> None:
        try:
            await db.reading(_missing)
        finally:
            await db.close_reads()

    with pytest.raises(NotFound):
        asyncio.run(main())


def test_each_event_loop_gets_working_connections(db: Database) -> None:
    """Connections opened in one loop are never used from another (tests, and a server
    restarted in-process, run several loops)."""

    async def main() -> int:
        try:
            return await db.reading(_count, table="workspaces")
        finally:
            await db.close_reads()  # as the app does when its loop ends

    assert asyncio.run(main()) == 0
    assert asyncio.run(main()) == 0


def test_postgresql_replaces_a_read_connection_lost_while_idle(pg: Database) -> None:
    async def main() -> tuple[int, int]:
        try:
            first = await pg.reading(_backend)
            await asyncio.to_thread(kill_backend, pg, first)
            await asyncio.sleep(IDLE_S)
            return first, await pg.reading(_backend)
        finally:
            await pg.close_reads()

    first, second = asyncio.run(main())
    assert second != first


def test_postgresql_fails_a_read_on_a_connection_lost_while_busy_once(
    unchecked: Database,
) -> None:
    async def main() -> tuple[int, int]:
        try:
            first = await unchecked.reading(_backend)
            await asyncio.to_thread(kill_backend, unchecked, first)  # in use lately: not checked
            with pytest.raises(Unavailable):
                await unchecked.reading(_backend)
            return first, await unchecked.reading(_backend)
        finally:
            await unchecked.close_reads()

    first, second = asyncio.run(main())
    assert second != first


def test_postgresql_reads_need_no_transaction(pg: Database) -> None:
    """As on the sync engine: every statement its own snapshot, no BEGIN or COMMIT."""

    def autocommit(conn: sa.Connection) -> bool:
        return bool(conn.connection.driver_connection.autocommit)  # type: ignore[union-attr]

    async def main() -> bool:
        try:
            return await pg.reading(autocommit)
        finally:
            await pg.close_reads()

    assert asyncio.run(main())


def test_postgresql_checks_a_read_connection_only_after_it_sat_idle(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> list[int]:
        checks: list[int] = []
        dialect = pg._async_read_engine().sync_engine.dialect
        ping = dialect.do_ping

        def counted(dbapi_conn: object) -> bool:
            checks.append(1)
            return ping(dbapi_conn)

        monkeypatch.setattr(dialect, "do_ping", counted)  # the real check, counted
        try:
            for _ in range(5):
                await pg.reading(_backend)
            assert checks == []
            await asyncio.sleep(IDLE_S)
            await pg.reading(_backend)
            return checks
        finally:
            await pg.close_reads()

    assert asyncio.run(main()) == [1]


def test_a_loop_that_ended_without_closing_its_reads_leaves_them_behind(
    pg: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def read() -> int:
        return await pg.reading(_backend)

    first = asyncio.run(read())  # not closed: the loop is gone

    async def main() -> int:
        try:
            return await read()
        finally:
            await pg.close_reads()

    assert asyncio.run(main()) != first
    assert "were not closed" in caplog.text


def test_postgresql_closes_its_read_connections(pg: Database) -> None:
    def open_ones(pid: int) -> int:
        with pg.read() as conn:
            found = f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
            return int(conn.exec_driver_sql(found).scalar_one())

    async def main() -> int:
        pid = await pg.reading(_backend)
        await pg.close_reads()
        return pid

    pid = asyncio.run(main())
    for _ in range(500):
        if open_ones(pid) == 0:
            return
        time.sleep(0.01)
    raise AssertionError("the read connection is still open")
