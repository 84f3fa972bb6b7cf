"""``trackline serve --workers N``: the serve process only supervises; each worker accepts on a
listening socket of its own (``SO_REUSEPORT``), so the kernel spreads connections over them; a
worker that fails is started again and no new connection waits for it meanwhile, while one that
fails before it is ready stops the server; a taken port fails ``serve`` at once; the workers stop
with the server and end when it is killed; on SQLite and PostgreSQL. Every check reads
``/proc``, and the sockets of their own are Linux only."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CliRunner, Server, ServerFactory, free_port
from tests.e2e.test_read_port import _alive, _wait_for
from tests.e2e.test_serve import LISTEN, _children, _inodes, socket_owners
from trackline.serving import STARTUP_FAILURE, run_workers
from trackline.settings import Settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform != "linux", reason="a socket per worker is Linux only"),
]
PROBES = 40  # new connections opened while a worker is gone
SUPERVISOR_S = 60


def test_each_worker_listens_on_a_socket_of_its_own(
    serve: ServerFactory, database_url: str
) -> None:
    server = serve(database_url, workers=2)
    listening = _wait_for(lambda: _two(_listeners(server)))

    assert server.pid not in listening  # the supervisor holds no socket of the port
    assert sorted(listening.values()) == [1, 1]
    assert set(listening) <= set(_children(server.pid))
    assert len(_inodes(server.port, LISTEN)) == 2  # two sockets, not one shared


def test_a_killed_worker_is_started_again_and_no_connection_waits_for_it(
    serve: ServerFactory, database_url: str
) -> None:
    server = serve(database_url, workers=2)
    victim, survivor = _wait_for(lambda: _two(_listeners(server)))

    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: _listeners(server) == {survivor: 1} or None)
    with ThreadPoolExecutor(max_workers=8) as pool:  # before the replacement listens
        answers = list(pool.map(lambda _: _health(server), range(PROBES)))
    replaced = _wait_for(lambda: _two(_listeners(server)))
    with server.client() as client:
        tracked = client.post("/api/v1/track", json={"external_id": "u-1", "event": "after"})

    assert answers == [200] * PROBES
    assert victim not in replaced and survivor in replaced
    assert tracked.status_code == 200, tracked.text
    assert "exited with code -9; starting it again" in server.stderr()
    assert server.stop(signal.SIGTERM) == 0


def test_a_taken_port_fails_serve_at_once(
    serve: ServerFactory, cli: CliRunner, database_url: str
) -> None:
    first = serve(database_url, workers=2)

    second = cli(
        "serve",
        "--workers",
        "2",
        "--port",
        str(first.port),
        env={"TRACKLINE_DATABASE_URL": database_url},
    )

    assert second.returncode != 0  # it did not join the first server's sockets
    assert "address already in use" in second.stderr.lower()
    assert _health(first) == 200


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_group_stops_every_worker_without_a_restart(
    serve: ServerFactory, database_url: str, sig: signal.Signals
) -> None:
    server = serve(database_url, workers=2)
    workers = _wait_for(lambda: _two(_listeners(server)))

    os.killpg(server.pid, sig)  # Ctrl-C in a terminal, or a service manager's stop
    code = server.wait()

    assert code == 0
    for pid in workers:
        _wait_for(lambda pid=pid: not _alive(pid) or None)
    assert "starting it again" not in server.stderr()
    assert "Traceback" not in server.stderr(), server.stderr()


def test_a_worker_asked_to_stop_twice_still_shuts_down_cleanly(
    serve: ServerFactory, database_url: str
) -> None:
    server = serve(database_url, workers=2)
    worker, other = _wait_for(lambda: _two(_listeners(server)))

    os.kill(worker, signal.SIGTERM)  # serve's stop, then the terminal's Ctrl-C to the group
    _wait_for(lambda: _listeners(server) == {other: 1} or None)  # it is shutting down
    with contextlib.suppress(ProcessLookupError):  # unless it has already ended
        os.kill(worker, signal.SIGINT)
    _wait_for(lambda: not _alive(worker) or None)

    assert "Traceback" not in server.stderr(), server.stderr()
    assert "starting it again" not in server.stderr()
    assert server.stderr().count("Application shutdown complete") == 1
    assert server.stop(signal.SIGTERM) == 0


def test_the_workers_end_when_the_server_is_killed(serve: ServerFactory, database_url: str) -> None:
    server = serve(database_url, workers=2)
    workers = _wait_for(lambda: _two(_listeners(server)))

    os.kill(server.pid, signal.SIGKILL)  # the supervisor only: nobody stops the workers
    server.wait()

    for pid in workers:
        _wait_for(lambda pid=pid: not _alive(pid) or None)


@pytest.fixture
def supervisor() -> Iterator[None]:
    """``run_workers`` in the test process: its signal handlers are put back afterwards, and a
    supervisor that does not return within ``SUPERVISOR_S`` fails the test."""
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGTTIN", "SIGTTOU", "SIGALRM")
    saved = {sig: signal.getsignal(sig) for name in names if (sig := getattr(signal, name, None))}
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(SUPERVISOR_S)
    yield
    signal.alarm(0)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _too_long(*_: object) -> None:
    raise AssertionError(f"run_workers did not return within {SUPERVISOR_S} s")


@pytest.mark.parametrize("main", ["_exit_3", "_raise"])
def test_a_worker_that_fails_before_it_is_ready_stops_the_server(
    supervisor: None, tmp_path: Path, main: str
) -> None:
    settings, options = _settings(tmp_path)

    with pytest.raises(SystemExit) as stopped:
        run_workers(settings, options, main=globals()[main])

    assert stopped.value.code == STARTUP_FAILURE


def test_the_server_ends_when_every_worker_was_stopped_on_its_own(
    supervisor: None, tmp_path: Path
) -> None:
    settings, options = _settings(tmp_path)

    run_workers(settings, options, main=_exit_0)  # returns: nothing left to supervise


def _settings(tmp_path: Path) -> tuple[Settings, dict[str, Any]]:
    """Settings for two workers whose stand-in mains open no database."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", workers=2)
    options = {"host": "127.0.0.1", "port": free_port(), "timeout_graceful_shutdown": 5}
    return settings, options


# Stand-ins for a worker's main (``trackline.serving._serve``), run in the worker processes.


def _exit_3(*_: Any, **__: Any) -> None:
    sys.exit(STARTUP_FAILURE)  # what uvicorn does when the app's startup fails


def _raise(*_: Any, **__: Any) -> None:
    raise RuntimeError("cannot build the app")


def _exit_0(*_: Any, **__: Any) -> None:
    sys.exit(0)


def _listeners(server: Server) -> dict[int, int]:
    """process id -> listening sockets on the server's port, for the server and its children."""
    return dict(socket_owners(server, LISTEN))


def _two(listening: dict[int, int]) -> dict[int, int] | None:
    return listening if len(listening) == 2 else None


def _health(server: Server) -> int:
    """GET /health on a new connection; a connection that waits fails on the timeout."""
    return httpx.get(f"{server.url}/health", timeout=5).status_code
