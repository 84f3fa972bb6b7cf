"""The ``trackline`` command. Every flag falls back to the same ``TRACKLINE_*`` variable as the
settings; every command that changes data migrates the database first."""

from __future__ import annotations

import json
import signal
from typing import Annotated, Any

import typer

from trackline.clock import SystemClock, to_iso
from trackline.errors import InvalidInput, TracklineError
from trackline.logs import configure_logging
from trackline.serving import read_process, run_workers
from trackline.settings import Settings
from trackline.storage.database import Database
from trackline.workspaces import service, store

app = typer.Typer(help="Trackline: a self-hosted customer event platform.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Create and list workspaces.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(workspaces_app, name="workspaces")
app.add_typer(keys_app, name="keys")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="TRACKLINE_DATABASE_URL",
        show_envvar=True,
        help="SQLAlchemy URL of the database [default: sqlite:///trackline.db].",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _settings(database_url: str | None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


def _database(settings: Settings) -> Database:
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    db.migrate()
    return db


def _fail(exc: TracklineError) -> None:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(envvar="TRACKLINE_HOST", help="Listen address [default: 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(envvar="TRACKLINE_PORT", help="Listen port [default: 8000].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(envvar="TRACKLINE_WORKERS", help="Server processes [default: 1].")
    ] = None,
    read_port: Annotated[
        int | None,
        typer.Option(
            envvar="TRACKLINE_READ_PORT",
            help="Also answer reads (GET) from a process of their own on this port, where they "
            "never wait behind ingest [default: none].",
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Start the HTTP server. On an empty database, creates workspace `default` and prints an
    admin key once."""
    settings = _settings(database_url, host=host, port=port, workers=workers, read_port=read_port)
    if settings.read_port is not None and settings.read_port == settings.port:
        _fail(InvalidInput("--read-port must differ from --port", field="read_port"))
    configure_logging()
    db = _database(settings)
    with db.write() as conn:
        first = service.bootstrap(conn, now_ms=SystemClock().now_ms())
    db.dispose()
    if first is not None:
        typer.echo(
            f"Created workspace 'default' ({first.record.workspace_id}) and an admin API key.\n"
            f"  key: {first.secret}\n"
            "It is shown only this once: keep it somewhere safe."
        )
    from trackline.transport import GatheringProtocol

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": GatheringProtocol,  # one socket write per response
        "access_log": access_log,
        "timeout_graceful_shutdown": 30,
        "log_level": "info",
    }
    reads = read_process(settings, options) if settings.read_port is not None else None
    if reads is not None:
        reads.start()
    try:
        _run_server(settings, options)
    finally:
        if reads is not None:
            reads.stop()


def _run_server(settings: Settings, options: dict[str, Any]) -> None:
    import uvicorn

    from trackline.app import create_app

    if settings.workers > 1:
        run_workers(settings, options)
    else:
        # uvicorn re-raises the signal that stopped it once shutdown is complete; a clean drain
        # after SIGTERM is a normal stop, so that re-raise lands here and the exit code is 0.
        signal.signal(signal.SIGTERM, lambda *_: None)
        uvicorn.run(create_app(settings, migrate=False), **options)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema to the newest version."""
    settings = _settings(database_url)
    _database(settings).dispose()
    typer.echo(f"database is up to date ({settings.database_url})")


@workspaces_app.command("create")
def workspaces_create(
    name: Annotated[str, typer.Argument(help="A unique name.")],
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a workspace and print its id."""
    db = _database(_settings(database_url))
    try:
        with db.write() as conn:
            ws = service.create_workspace(conn, name=name, now_ms=SystemClock().now_ms())
    except TracklineError as exc:
        _fail(exc)
    typer.echo(json.dumps({"id": ws.id, "name": ws.name}) if as_json else ws.id)


@workspaces_app.command("list")
def workspaces_list(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """List workspaces."""
    db = _database(_settings(database_url))
    with db.read() as conn:
        found = store.list_workspaces(conn)
    if as_json:
        typer.echo(
            json.dumps(
                [{"id": w.id, "name": w.name, "created_at": to_iso(w.created_at)} for w in found]
            )
        )
        return
    for w in found:
        typer.echo(f"{w.id}\t{w.name}\t{to_iso(w.created_at)}")


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace id or name.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: events:write, events:read, admin.")
    ] = "events:write,events:read",
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key and print its secret (shown only this once)."""
    db = _database(_settings(database_url))
    try:
        parsed = service.parse_scopes(scopes)
        with db.write() as conn:
            key = service.create_key(
                conn, workspace=workspace, scopes=parsed, name=name, now_ms=SystemClock().now_ms()
            )
    except TracklineError as exc:
        _fail(exc)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": key.record.id,
                    "key": key.secret,
                    "workspace_id": key.record.workspace_id,
                    "scopes": list(key.record.scopes),
                }
            )
        )
    else:
        typer.echo(key.secret)


@keys_app.command("list")
def keys_list(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace (id or name).")] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List API keys (never their secrets: only a prefix)."""
    db = _database(_settings(database_url))
    with db.read() as conn:
        ws_id = None
        if workspace is not None:
            ws = store.find_workspace(conn, id_or_name=workspace)
            if ws is None:
                typer.echo(f"error: no workspace {workspace!r}", err=True)
                raise typer.Exit(code=1)
            ws_id = ws.id
        found = store.list_keys(conn, workspace_id=ws_id)
    rows = [
        {
            "id": k.id,
            "workspace_id": k.workspace_id,
            "name": k.name,
            "prefix": k.prefix,
            "scopes": list(k.scopes),
            "created_at": to_iso(k.created_at),
            "revoked_at": to_iso(k.revoked_at) if k.revoked_at else None,
        }
        for k in found
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        typer.echo(
            f"{r['id']}\t{r['workspace_id']}\t{r['prefix']}...\t"
            f"{','.join(r['scopes'])}\t{state}\t{r['name']}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...), as `keys list` shows.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key; running servers refuse it within TRACKLINE_KEY_CACHE_S seconds."""
    db = _database(_settings(database_url))
    with db.write() as conn:
        done = store.revoke_key(conn, key_id=key_id, now_ms=SystemClock().now_ms())
    if not done:
        typer.echo(f"error: no active key {key_id!r}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {key_id}")


def main() -> None:
    app()
