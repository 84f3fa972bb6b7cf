"""The ``trackline`` command as a subprocess: workspaces, keys, migrate, and where the database
comes from (``--database-url``, ``TRACKLINE_DATABASE_URL``, the default file)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.conftest import CliRunner, ServerFactory
from trackline.storage.database import Database
from trackline.storage.migrate import alembic_config
from trackline.workspaces import service

pytestmark = pytest.mark.e2e

WORKSPACE_ID = re.compile(r"^ws_[0-9a-f]+$")
NOW_MS = 1_700_000_000_000
KEY_FIELDS = {"id", "workspace_id", "name", "prefix", "scopes", "created_at", "revoked_at"}


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    expected: tuple[str, ...] = ()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file, for what does not depend on the database."""
    path = tmp_path / "cli.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _json(stdout: str) -> Any:
    return json.loads(stdout)


def _make_workspace(database_url: str, name: str) -> str:
    db = Database(database_url)
    with db.write() as conn:
        ws_id = service.create_workspace(conn, name=name, now_ms=NOW_MS).id
    db.dispose()
    return ws_id


HELP_CASES = [
    Case("top level", ("--help",), ("serve", "migrate", "workspaces", "keys")),
    Case("workspaces", ("workspaces", "--help"), ("create", "list")),
    Case("keys", ("keys", "--help"), ("create", "list", "revoke")),
]


@pytest.mark.parametrize("case", HELP_CASES, ids=[c.name for c in HELP_CASES])
def test_help_lists_the_commands(cli: CliRunner, case: Case) -> None:
    done = cli(*case.args)
    assert done.returncode == 0, done.stderr
    for word in case.expected:
        assert re.search(rf"\b{re.escape(word)}\b", done.stdout), word


def test_workspaces_create_and_list(cli: CliRunner, database_url: str) -> None:
    url = ("--database-url", database_url)

    plain = cli("workspaces", "create", "shop", *url)
    as_json = cli("workspaces", "create", "blog", "--json", *url)
    listed = cli("workspaces", "list", *url)
    listed_json = cli("workspaces", "list", "--json", *url)

    assert plain.returncode == 0, plain.stderr
    shop = plain.stdout.strip()
    assert WORKSPACE_ID.match(shop), plain.stdout
    blog = _json(as_json.stdout)
    assert set(blog) == {"id", "name"}
    assert blog["name"] == "blog"
    assert WORKSPACE_ID.match(blog["id"])
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t")[:2] for line in listed.stdout.splitlines()]
    assert rows == [[shop, "shop"], [blog["id"], "blog"]]
    listed_pairs = [(w["id"], w["name"]) for w in _json(listed_json.stdout)]
    assert listed_pairs == [(shop, "shop"), (blog["id"], "blog")]


FAILURE_CASES = [
    Case("duplicate workspace", ("workspaces", "create", "taken"), ("taken",)),
    Case("blank workspace name", ("workspaces", "create", "  "), ("name",)),
    Case(
        "unknown scope",
        ("keys", "create", "--workspace", "taken", "--scopes", "events:write,events:delete"),
        ("events:delete",),
    ),
    Case("unknown workspace for a key", ("keys", "create", "--workspace", "nope"), ("nope",)),
    Case("keys of an unknown workspace", ("keys", "list", "--workspace", "nope"), ("nope",)),
    Case("revoke an unknown key", ("keys", "revoke", "key_0000000000000000"), ("key_0000",)),
]


@pytest.mark.parametrize("case", FAILURE_CASES, ids=[c.name for c in FAILURE_CASES])
def test_refusals_exit_1_with_an_error_on_stderr(
    cli: CliRunner, sqlite_url: str, case: Case
) -> None:
    _make_workspace(sqlite_url, "taken")

    done = cli(*case.args, "--database-url", sqlite_url)

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: "), done.stderr
    for fragment in case.expected:
        assert fragment in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("by", ["name", "id"])
def test_keys_create_json(cli: CliRunner, database_url: str, by: str) -> None:
    ws_id = _make_workspace(database_url, "shop")
    workspace = "shop" if by == "name" else ws_id

    options = ["--workspace", workspace, "--scopes", "events:write,events:read", "--name", "X"]

    done = cli("keys", "create", *options, "--json", "--database-url", database_url)

    assert done.returncode == 0, done.stderr
    key = _json(done.stdout)
    assert set(key) == {"id", "key", "workspace_id", "scopes"}
    assert key["workspace_id"] == ws_id
    assert key["scopes"] == ["events:write", "events:read"]
    assert key["key"].startswith("tl_")
    assert key["id"].startswith("key_")


def test_keys_list_never_prints_a_secret(cli: CliRunner, sqlite_url: str) -> None:
    _make_workspace(sqlite_url, "shop")
    url = ("--database-url", sqlite_url)
    plain_secret = cli("keys", "create", "--workspace", "shop", "--name", "one", *url).stdout
    made = _json(cli("keys", "create", "--workspace", "shop", "--json", *url).stdout)
    secrets = [plain_secret.strip(), made["key"]]

    outputs = [
        cli("keys", "list", *url).stdout,
        cli("keys", "list", "--workspace", "shop", "--json", *url).stdout,
    ]

    for output in outputs:
        for secret in secrets:
            assert secret not in output
            assert secret[:10] in output  # the prefix, to recognise a key
    rows = _json(outputs[1])
    assert len(rows) == 2
    assert made["id"] in {r["id"] for r in rows}
    assert all(set(r) == KEY_FIELDS for r in rows)


def test_a_revoked_key_answers_401_from_a_running_server(
    cli: CliRunner, serve: ServerFactory, database_url: str
) -> None:
    server = serve(database_url, env={"TRACKLINE_KEY_CACHE_S": "0"})
    url = ("--database-url", database_url)
    made = _json(cli("keys", "create", "--workspace", "default", "--json", *url).stdout)
    event = {"external_id": "u1", "event": "ping"}
    auth = {"Authorization": f"Bearer {made['key']}"}
    before = httpx.post(f"{server.url}/api/v1/track", json=event, headers=auth)

    revoked = cli("keys", "revoke", made["id"], *url)
    after = httpx.post(f"{server.url}/api/v1/track", json=event, headers=auth)
    again = cli("keys", "revoke", made["id"], *url)

    assert before.status_code == 200, before.text
    assert revoked.returncode == 0, revoked.stderr
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_key"
    assert again.returncode == 1
    listed = _json(cli("keys", "list", "--json", *url).stdout)
    assert [r["revoked_at"] is not None for r in listed if r["id"] == made["id"]] == [True]


def test_migrate_a_fresh_file_twice(cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    first = cli("migrate", "--database-url", url)
    second = cli("migrate", "--database-url", url)

    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    db = Database(url)
    with db.read() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == [_head()]
    db.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class Source:
    name: str
    flag: str | None  # file name given with --database-url
    env: str | None  # file name given in TRACKLINE_DATABASE_URL
    lands_in: str  # the file that gets the workspace


SOURCES = [
    Source("flag", "flag.db", None, "flag.db"),
    Source("environment", None, "env.db", "env.db"),
    Source("flag over environment", "flag.db", "env.db", "flag.db"),
    Source("default file in the working directory", None, None, "cli/trackline.db"),
]


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_where_the_database_comes_from(cli: CliRunner, tmp_path: Path, source: Source) -> None:
    args = ["workspaces", "create", "shop"]
    if source.flag:
        args += ["--database-url", f"sqlite:///{tmp_path / source.flag}"]
    env = {"TRACKLINE_DATABASE_URL": f"sqlite:///{tmp_path / source.env}"} if source.env else {}

    done = cli(*args, env=env)

    assert done.returncode == 0, done.stderr
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.db")}
    assert files == {source.lands_in}
    db = Database(f"sqlite:///{tmp_path / source.lands_in}")
    with db.read() as conn:
        names = conn.execute(sa.text("SELECT id, name FROM workspaces")).all()
    db.dispose()
    assert [tuple(n) for n in names] == [(done.stdout.strip(), "shop")]
