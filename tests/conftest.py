"""Shared fixtures. ``database_url`` is parametrised over SQLite and PostgreSQL, so every test
that uses it (directly or through ``client``) runs on both. PostgreSQL is skipped when absent,
except under ``CI=true``, where its absence fails the run."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from trackline.app import create_app
from trackline.settings import Settings, WriterSettings
from trackline.storage.database import Database
from trackline.storage.schema import metadata
from trackline.workspaces import service

POSTGRES_ADMIN_URL = os.environ.get(
    "TRACKLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    admin = Database(POSTGRES_ADMIN_URL)
    name = f"trackline_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL
        admin.dispose()
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if IN_CI:
            pytest.fail(message + " (required when CI=true)")
        pytest.skip(message)
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.migrate()
    db.dispose()
    yield url
    with admin.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _truncate(url: str) -> None:
    db = Database(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.write() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "trackline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, key_cache_s=0)


@pytest.fixture(params=[False, True], ids=["unmoved", "moved-every-2"])
def timeline_settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    """Settings under which a person's timeline entries are all in the recent table (the move
    threshold is not reached), or moved into the large table every 2 events, so that most
    people have entries in both tables. Test modules about timelines use it as ``settings``."""
    writer = WriterSettings(timeline_move_events=2 if request.param else 10**9)
    return Settings(database_url=database_url, key_cache_s=0, writer=writer)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


@dataclass
class Tenant:
    """A workspace with one key per scope, as request headers."""

    id: str
    name: str
    write: dict[str, str]
    read: dict[str, str]
    admin: dict[str, str]
    both: dict[str, str]


@pytest.fixture
def make_tenant(database_url: str) -> Iterator[object]:
    database = Database(database_url)

    def make(name: str = "acme") -> Tenant:
        with database.write() as conn:
            ws = service.create_workspace(conn, name=name, now_ms=1_700_000_000_000)
            headers = {}
            for label, scopes in (
                ("write", ("events:write",)),
                ("read", ("events:read",)),
                ("admin", ("admin",)),
                ("both", ("events:write", "events:read")),
            ):
                key = service.create_key(
                    conn, workspace=ws.id, scopes=scopes, name=label, now_ms=1_700_000_000_000
                )
                headers[label] = {"Authorization": f"Bearer {key.secret}"}
        return Tenant(ws.id, name, **headers)

    yield make
    database.dispose()


@pytest.fixture
def tenant(make_tenant: object) -> Tenant:
    return make_tenant("acme")  # type: ignore[operator, no-any-return]
