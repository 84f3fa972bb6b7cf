"""The Alembic migrations build exactly the schema of ``trackline.storage.schema.metadata``, on
SQLite and PostgreSQL, from an empty database and again on a migrated one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.conftest import POSTGRES_ADMIN_URL
from trackline.storage.database import Database
from trackline.storage.migrate import alembic_config
from trackline.storage.schema import metadata, workspaces


def _differences(db: Database) -> list[Any]:
    with db.write_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)  # type: ignore[no-any-return]


def _versions(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield db
        db.dispose()
        return
    request.getfixturevalue("postgres_url")  # skips (or fails in CI) without PostgreSQL
    admin = Database(POSTGRES_ADMIN_URL)
    name = f"trackline_migrate_{uuid.uuid4().hex[:10]}"
    with admin.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db = Database(sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False))
    yield db
    db.dispose()
    with admin.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_migrated_database_matches_the_metadata(db: Database) -> None:
    assert _differences(db) == []
    assert _versions(db) == [_head()]


def test_migrating_again_is_a_no_op(db: Database) -> None:
    db.migrate()
    db.migrate()

    assert _differences(db) == []
    assert _versions(db) == [_head()]


def test_migrating_an_empty_database_twice(empty_db: Database) -> None:
    assert sa.inspect(empty_db.write_engine).get_table_names() == []

    empty_db.migrate()
    tables = set(sa.inspect(empty_db.write_engine).get_table_names())
    empty_db.migrate()

    assert tables == {*metadata.tables, "alembic_version"}
    assert _differences(empty_db) == []
    assert _versions(empty_db) == [_head()]


def test_migrating_again_keeps_the_data(db: Database) -> None:
    with db.write() as conn:
        conn.execute(
            metadata.tables["workspaces"].insert().values(id="ws_1", name="a", created_at=1)
        )

    db.migrate()

    with db.read() as conn:
        rows = conn.execute(sa.select(workspaces.c.name)).scalars().all()
    assert rows == ["a"]
