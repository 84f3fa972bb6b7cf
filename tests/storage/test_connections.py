"""Pooled PostgreSQL connections are checked before use only after sitting idle: a connection
lost while idle is replaced unseen; one lost while busy fails one use with ``Unavailable``,
and the pool hands out working connections again."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests.storage.conftest import IDLE_S, kill_backend
from trackline.errors import Unavailable
from trackline.storage.database import Database


def _backend(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_connection_lost_while_idle_is_replaced_before_use(pg: Database) -> None:
    first = _backend(pg)
    kill_backend(pg, first)
    time.sleep(IDLE_S)
    assert _backend(pg) != first  # the check found it dead; the pool opened another


def test_a_connection_lost_while_busy_fails_once_then_the_pool_recovers(
    unchecked: Database,
) -> None:
    first = _backend(unchecked)
    kill_backend(unchecked, first)  # used a moment ago: not checked
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
