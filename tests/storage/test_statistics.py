"""Planner statistics: the writer refreshes them on PostgreSQL as the tables grow."""

from __future__ import annotations

import asyncio
from datetime import datetime

import sqlalchemy as sa

from trackline.ingest.writer import Writer
from trackline.settings import WriterSettings
from trackline.storage.database import Database


def _last_analyze(db: Database) -> datetime | None:
    if db.dialect != "postgresql":
        return None
    with db.read() as conn:
        return conn.execute(  # type: ignore[no-any-return]
            sa.text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'events'")
        ).scalar()


def _analyzed_since(db: Database, before: datetime | None) -> bool:
    after = _last_analyze(db)
    return after is not None and (before is None or after > before)


def test_refresh_statistics_runs_on_both_databases(db: Database) -> None:
    before = _last_analyze(db)
    db.refresh_statistics()  # SQLite: nothing to do; PostgreSQL: ANALYZE
    if db.dialect == "postgresql":
        assert _analyzed_since(db, before)


def test_writer_refreshes_statistics_once_1000_events_are_written(db: Database) -> None:
    writer = Writer(db, WriterSettings())
    writer.start()
    try:
        asyncio.run(writer.submit(lambda conn: None, weight=999))
        before = _last_analyze(db)
        asyncio.run(writer.submit(lambda conn: None, weight=1))
    finally:
        writer.stop()
    if db.dialect == "postgresql":
        assert _analyzed_since(db, before)
