"""A server warns at start when the database is set up so that reads will slow down: on
PostgreSQL, autovacuum off (the timeline's index-only count then visits the table for every
entry ingested since the last vacuum)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event

from trackline.app import create_app
from trackline.settings import Settings
from trackline.storage.database import Database

NEEDED = ("autovacuum", "track_counts")


def _off(db: Database) -> list[str]:
    """The settings autovacuum needs that are off, as ``SHOW`` tells them."""
    with db.read() as conn:
        shown = {name: conn.exec_driver_sql(f"SHOW {name}").scalar_one() for name in NEEDED}
    return [f"{name}=off" for name, value in shown.items() if value == "off"]


def test_the_warning_follows_the_servers_settings(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Whichever way this PostgreSQL is set up, the server says so exactly when it will not
    vacuum; SQLite needs no vacuum."""
    off = _off(db) if db.dialect == "postgresql" else []
    expect_warning = bool(off)
    warnings = db.setting_warnings()
    assert len(warnings) == expect_warning
    assert all(f"({', '.join(off)})" in w for w in warnings)
    with (
        caplog.at_level(logging.WARNING, logger="trackline.app"),
        TestClient(create_app(settings, migrate=False)),
    ):
        pass
    assert ("does not vacuum on its own" in caplog.text) == expect_warning


def test_postgresql_without_table_statistics_is_warned_about(database_url: str) -> None:
    """``track_counts`` off (a superuser can turn it off for a session) stops autovacuum from
    knowing what to vacuum, whatever ``autovacuum`` says."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's settings")
    db = Database(database_url)

    @sa_event.listens_for(db.write_engine, "connect")
    def _no_counts(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.autocommit = True
        dbapi_conn.execute("SET track_counts = off")
        dbapi_conn.autocommit = False

    try:
        (warning,) = db.setting_warnings()
    finally:
        db.dispose()
    assert "track_counts=off" in warning
