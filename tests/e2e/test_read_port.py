"""``trackline serve --read-port``: a process of its own answers reads on a second port and
refuses writes with ``read_only``; it is started again when it fails, stops with the server and
ends itself when the server is killed; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.e2e.conftest import STARTUP_S, CliRunner, Server, ServerFactory, free_port
from tests.e2e.test_serve import LISTEN, _children, _fds, _inodes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path("/proc/net/tcp").exists(), reason="reads /proc to find the read process"
    ),
]
T = TypeVar("T")


def test_the_read_port_answers_reads_of_what_the_main_port_stored(
    serve: ServerFactory, database_url: str
) -> None:
    server, reads = _with_read_port(serve, database_url)
    with server.client() as main:
        sent = main.post("/api/v1/track", json={"external_id": "reader-1", "event": "signed_up"})
        assert sent.status_code == 200, sent.text
    with reads:
        found = reads.get("/api/v1/people", params={"external_id": "reader-1"})
        person_id = found.json()["people"][0]["id"]
        timeline = reads.get(f"/api/v1/people/{person_id}/events")
        recent = reads.get("/api/v1/events", params={"user_id": "reader-1"})
        catalog = reads.get("/api/v1/event-definitions")
        health = reads.get("/health")

    event_id = sent.json()["event_id"]
    assert timeline.status_code == 200, timeline.text
    assert ([e["id"] for e in timeline.json()["events"]], timeline.json()["total"]) == (
        [event_id],
        1,
    )
    assert [e["id"] for e in recent.json()["events"]] == [event_id]
    assert "signed_up" in catalog.text
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/track", {"external_id": "writer-1", "event": "refused"}),
        ("POST", "/api/v1/track/batch", {"events": [{"external_id": "writer-1", "event": "x"}]}),
        ("POST", "/v1/track", {"userId": "writer-1", "event": "refused"}),
        ("PATCH", "/api/v1/event-definitions/refused", {"description": "no"}),
        ("DELETE", "/api/v1/people/someone", None),
    ],
)
def test_the_read_port_refuses_every_write(
    serve: ServerFactory, database_url: str, method: str, path: str, body: object
) -> None:
    server, reads = _with_read_port(serve, database_url)
    with reads:
        refused = reads.request(method, path, json=body)
    with server.client() as main:
        stored = main.get("/api/v1/events").json()["events"]

    assert refused.status_code == 405, refused.text
    assert refused.headers["allow"] == "GET"
    assert refused.json()["error"]["code"] == "read_only"
    assert "main port" in refused.json()["error"]["message"]
    assert stored == []


def test_a_failed_read_process_is_started_again_and_stops_with_the_server(
    serve: ServerFactory, database_url: str
) -> None:
    server, reads = _with_read_port(serve, database_url)
    first = _wait_for(lambda: _read_process(server))

    os.kill(first, signal.SIGKILL)
    second = _wait_for(lambda: _read_process(server, not_pid=first))
    with reads:
        assert reads.get("/api/v1/events").status_code == 200

    assert server.stop(signal.SIGTERM) == 0
    assert not _alive(second)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_group_stops_both_without_a_restart(
    serve: ServerFactory, database_url: str, sig: signal.Signals
) -> None:
    server, reads = _with_read_port(serve, database_url)
    reads.close()
    pid = _wait_for(lambda: _read_process(server))

    os.killpg(server.pid, sig)  # Ctrl-C in a terminal, or a service manager's stop
    server.wait()

    _wait_for(lambda: not _alive(pid) or None)
    assert "starting it again" not in server.stderr()
    assert "trackline-reads" not in server.stderr()  # no traceback of the read process


def test_the_read_process_ends_when_the_server_is_killed(
    serve: ServerFactory, database_url: str
) -> None:
    server, reads = _with_read_port(serve, database_url)
    reads.close()
    pid = _wait_for(lambda: _read_process(server))

    os.kill(server.pid, signal.SIGKILL)  # the server only: no stop of the read process
    server.wait()

    _wait_for(lambda: not _alive(pid) or None)


def test_the_read_port_must_be_free_and_differ_from_the_port(
    cli: CliRunner, database_url: str
) -> None:
    env = {"TRACKLINE_DATABASE_URL": database_url}
    port = str(free_port())
    same = cli("serve", "--port", port, "--read-port", port, env=env)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = cli("serve", "--port", port, "--read-port", str(taken.getsockname()[1]), env=env)

    assert same.returncode == 1
    assert "--read-port must differ from --port" in same.stderr
    assert busy.returncode != 0
    assert "address already in use" in busy.stderr.lower()


def _with_read_port(serve: ServerFactory, database_url: str) -> tuple[Server, httpx.Client]:
    """A started server with a read port, and a client of that port with the admin key."""
    port = free_port()
    server = serve(database_url, env={"TRACKLINE_READ_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    _wait_for(lambda: _healthy(url))
    return server, httpx.Client(base_url=url, headers=server.headers(), timeout=30)


def _healthy(url: str) -> bool | None:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200 or None
    except httpx.TransportError:
        return None


def _read_process(server: Server, not_pid: int | None = None) -> int | None:
    """The child of the server that holds the read port's listening socket."""
    inodes = _inodes(int(server.env["TRACKLINE_READ_PORT"]), LISTEN)
    for pid in _children(server.pid):
        if pid != not_pid and any(fd[8:-1] in inodes for fd in _fds(pid) if "socket:[" in fd):
            return pid
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(probe: Callable[[], T | None]) -> T:
    """What ``probe`` returns once it is not None (polled for up to ``STARTUP_S``)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {STARTUP_S} s")
