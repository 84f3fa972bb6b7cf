"""Pooled PostgreSQL connections are checked before use only after sitting idle: a connection
lost while idle is replaced unseen; one lost while busy fails one use with ``Unavailable``,
and the pool hands out working connections again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from trackline.errors import Unavailable
from trackline.storage.database import Database

IDLE_S = 0.2


def _pool(database_url: str, idle_s: float) -> Iterator[Database]:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no connections to lose")
    database = Database(database_url, pool_size=1, ping_after_idle_s=idle_s)
    yield database
    database.dispose()


@pytest.fixture
def pg(database_url: str) -> Iterator[Database]:
    yield from _pool(database_url, IDLE_S)


@pytest.fixture
def unchecked(database_url: str) -> Iterator[Database]:
    """Connections never idle long enough to be checked."""
    yield from _pool(database_url, 3600)


def _backend(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _kill(db: Database, pid: int) -> None:
    """Terminate the backend and wait until it is gone."""
    killer = Database(str(db.url.render_as_string(hide_password=False)))
    try:
        with killer.read() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
            for _ in range(500):
                alive = f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
                if conn.exec_driver_sql(alive).scalar_one() == 0:
                    return
                time.sleep(0.01)
        raise AssertionError(f"backend {pid} still runs")
    finally:
        killer.dispose()


def test_a_connection_lost_while_idle_is_replaced_before_use(pg: Database) -> None:
    first = _backend(pg)
    _kill(pg, first)
    time.sleep(IDLE_S)
    assert _backend(pg) != first  # the check found it dead; the pool opened another


def test_a_connection_lost_while_busy_fails_once_then_the_pool_recovers(
    unchecked: Database,
) -> None:
    first = _backend(unchecked)
    _kill(unchecked, first)  # used a moment ago: not checked
    with pytest.raises(Unavailable), unchecked.write() as conn:
        conn.execute(sa.text("SELECT 1"))
    assert _backend(unchecked) != first


def test_a_connection_in_steady_use_is_not_checked(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = pg.write_engine.dialect
    checks: list[int] = []
    ping = dialect.do_ping

    def counted(dbapi_conn: object) -> bool:
        checks.append(1)
        return ping(dbapi_conn)

    monkeypatch.setattr(dialect, "do_ping", counted)  # the real check, counted
    for _ in range(5):
        _backend(pg)
    assert checks == []
    time.sleep(IDLE_S)
    _backend(pg)
    assert checks == [1]
