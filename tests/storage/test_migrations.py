"""The Alembic migrations build exactly the schema of ``trackline.storage.schema.metadata``, on
SQLite and PostgreSQL, from an empty database and again on a migrated one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.conftest import POSTGRES_ADMIN_URL
from trackline.storage.database import Database
from trackline.storage.migrate import alembic_config, upgrade
from trackline.storage.schema import metadata, workspaces


def _differences(db: Database) -> list[Any]:
    with db.write_engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _for_dialect(db.dialect),
            },
        )
        return compare_metadata(context, metadata)  # type: ignore[no-any-return]


def _for_dialect(dialect: str) -> Callable[..., bool]:
    """Alembic compares an index made only on one dialect (``Index.ddl_if``) on every one."""

    def include(item: Any, _name: Any, _kind: str, _reflected: bool, _other: Any) -> bool:
        only = getattr(item, "_ddl_if", None)  # SQLAlchemy keeps the condition here
        if only is None or only.dialect is None:
            return True
        assert only.callable_ is None, "a ddl_if condition this comparison cannot evaluate"
        dialects = only.dialect if isinstance(only.dialect, tuple) else (only.dialect,)
        return dialect in dialects

    return include


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


def _event(n: int, person: str) -> dict[str, Any]:
    return {
        "id": f"evt_{n}",
        "workspace_id": "ws_1",
        "person_id": person,
        "event": "page_viewed",
        "parameters": {},
        "context": {},
        "timestamp": 1_000 + n,
        "created_at": 1,
        "message_id": f"m{n}",
    }


def _timeline_entries(conn: sa.Connection, table: str) -> set[tuple[Any, ...]]:
    return set(conn.exec_driver_sql(f"SELECT workspace_id, person_id, timestamp, seq FROM {table}"))


def _stored(conn: sa.Connection) -> set[tuple[Any, ...]]:
    events = metadata.tables["events"]
    key = (events.c.workspace_id, events.c.person_id, events.c.timestamp, events.c.seq)
    return set(conn.execute(sa.select(*key)))


def _person_index(db: Database) -> bool:
    indexes = sa.inspect(db.write_engine).get_indexes("events")
    return "ix_events_workspace_id_person_id_timestamp" in {i["name"] for i in indexes}


def test_timelines_move_out_of_events_and_back(empty_db: Database) -> None:
    """SQLite: 0004 fills the timeline from the stored events, and from then on every new
    event gets its entry; going back to 0003 restores the index on ``events``. PostgreSQL
    keeps the index, and the two tables stay empty."""
    events = metadata.tables["events"]
    sqlite = empty_db.dialect == "sqlite"
    with empty_db.write_engine.begin() as conn:
        upgrade(conn, "0003")
        conn.execute(workspaces.insert().values(id="ws_1", name="a", created_at=1))
        conn.execute(events.insert(), [_event(n, f"p{n % 3}") for n in range(7)])
        upgrade(conn, "0004")
    with empty_db.write() as conn:
        conn.execute(events.insert(), [_event(n, "p9") for n in range(7, 9)])
        stored = _stored(conn)
        moved = {e for e in stored if e[1] != "p9"} if sqlite else set()
        recent = {e for e in stored if e[1] == "p9"} if sqlite else set()
        assert _timeline_entries(conn, "timeline") == moved
        assert _timeline_entries(conn, "timeline_recent") == recent
    assert _person_index(empty_db) is not sqlite

    with empty_db.write_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0003")
    assert "timeline" not in sa.inspect(empty_db.write_engine).get_table_names()
    assert _person_index(empty_db)
    with empty_db.write() as conn:  # no trigger is left behind to insert into a missing table
        conn.execute(events.insert(), [_event(9, "p9")])
    empty_db.migrate()  # and nothing is left behind that upgrading again would trip over
    assert _differences(empty_db) == []


def test_0005_repairs_postgresql_after_an_earlier_0004(empty_db: Database) -> None:
    """An earlier 0004 replaced PostgreSQL's index on ``events`` with the timeline tables and
    a trigger filling them; 0005 brings back the index, drops the trigger and empties the
    tables, and a new event gets no entry there."""
    if empty_db.dialect != "postgresql":
        pytest.skip("SQLite's 0004 is the one it always was")
    events = metadata.tables["events"]
    with empty_db.write_engine.begin() as conn:
        upgrade(conn, "0004")
        conn.execute(workspaces.insert().values(id="ws_1", name="a", created_at=1))
        conn.exec_driver_sql("DROP INDEX ix_events_workspace_id_person_id_timestamp")
        conn.exec_driver_sql(
            "CREATE FUNCTION events_timeline() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO timeline_recent (workspace_id, person_id, timestamp, seq)"
            " SELECT workspace_id, person_id, timestamp, seq FROM stored; RETURN NULL; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER events_timeline AFTER INSERT ON events REFERENCING NEW TABLE AS"
            " stored FOR EACH STATEMENT EXECUTE FUNCTION events_timeline()"
        )
        conn.execute(events.insert(), [_event(n, f"p{n % 3}") for n in range(4)])
        assert len(_timeline_entries(conn, "timeline_recent")) == 4
    empty_db.migrate()
    with empty_db.write() as conn:
        conn.execute(events.insert(), [_event(n, "p9") for n in range(4, 6)])
        assert len(_stored(conn)) == 6
        assert _timeline_entries(conn, "timeline_recent") == set()
        assert _timeline_entries(conn, "timeline") == set()
    assert _person_index(empty_db)
    assert _differences(empty_db) == []
    with empty_db.write_engine.begin() as conn:  # and back, and forth again
        command.downgrade(alembic_config(conn), "0003")
    assert _person_index(empty_db)
    empty_db.migrate()
    assert _differences(empty_db) == []


def _collations(db: Database) -> dict[tuple[str, str], str]:
    """PostgreSQL: each string column of Trackline's tables, and its collation ('' for the
    database's default)."""
    with db.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, coalesce(collation_name, '')"
                " FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name = ANY(:tables) AND data_type IN ('character varying', 'text')"
            ),
            {"tables": list(metadata.tables)},
        )
        return {(table, column): collation for table, column, collation in rows}


def test_strings_are_ordered_byte_by_byte(db: Database) -> None:
    """Ids and names sort by their bytes on both databases (SQLite's ``BINARY``, PostgreSQL's
    ``C``), whatever the PostgreSQL database's locale: upper case before lower, accents last."""
    names = ["b", "é", "B", "a", "Z", "ä"]
    with db.write() as conn:
        for n, name in enumerate(names):
            conn.execute(workspaces.insert().values(id=f"ws_order_{n}", name=name, created_at=1))
    with db.read() as conn:
        rows = conn.execute(
            sa.select(workspaces.c.name)
            .where(workspaces.c.id.like("ws_order_%"))
            .order_by(workspaces.c.name)
        )
        assert list(rows.scalars()) == sorted(names, key=str.encode)
    if db.dialect == "postgresql":
        columns = _collations(db)
        assert len(columns) == sum(
            isinstance(c.type, sa.String) for t in metadata.tables.values() for c in t.columns
        )
        assert set(columns.values()) == {"C"}


def test_0006_gives_postgresql_strings_byte_order_and_back(empty_db: Database) -> None:
    """0006 changes the collation of every string column on PostgreSQL, keeping the rows;
    going back to 0005 restores the database's default. SQLite: nothing to change."""
    if empty_db.dialect != "postgresql":
        pytest.skip("SQLite's strings always compared byte by byte")
    events = metadata.tables["events"]
    with empty_db.write_engine.begin() as conn:
        upgrade(conn, "0005")
        conn.execute(workspaces.insert().values(id="ws_1", name="a", created_at=1))
        conn.execute(events.insert(), [_event(n, f"p{n % 3}") for n in range(5)])
    assert set(_collations(empty_db).values()) == {""}

    empty_db.migrate()
    assert set(_collations(empty_db).values()) == {"C"}
    with empty_db.read() as conn:
        assert len(_stored(conn)) == 5
    assert _differences(empty_db) == []

    with empty_db.write_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0005")
    assert set(_collations(empty_db).values()) == {""}
    empty_db.migrate()
    assert set(_collations(empty_db).values()) == {"C"}
