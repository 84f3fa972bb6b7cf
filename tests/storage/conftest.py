"""PostgreSQL pools of one connection, and a way to lose it: for the tests of how pooled
connections are checked and replaced (sync engines and ``Database.reading``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from trackline.storage.database import Database

IDLE_S = 0.2  # ``pg``'s connections are checked after sitting idle this long


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


def kill_backend(db: Database, pid: int) -> None:
    """Terminate the backend and wait until it is gone (from a connection of its own, with no
    transaction: ``pg_stat_activity`` is read afresh each time)."""
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
