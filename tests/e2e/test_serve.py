"""``trackline serve`` as a real process: the bootstrap key, health, tracking and reading,
``--workers 2`` and the OpenAPI documents, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, ServerFactory, admin_keys

pytestmark = pytest.mark.e2e

ESTABLISHED, LISTEN = "01", "0A"  # the state column of /proc/net/tcp


def test_first_start_prints_an_admin_key_once(serve: ServerFactory, database_url: str) -> None:
    server = serve(database_url)
    first = server.stdout()
    assert len(admin_keys(first)) == 1, first
    assert "Created workspace 'default'" in first

    second = server.restart(signal.SIGTERM)

    assert admin_keys(second) == [], second
    with server.client() as client:  # the key printed on the first start still works
        assert client.post("/api/v1/track", json=_event("after-restart")).status_code == 200


def test_health_docs_and_a_missing_key(server: Server) -> None:
    health = httpx.get(f"{server.url}/health")
    docs = httpx.get(f"{server.url}/docs")
    schema = httpx.get(f"{server.url}/openapi.json")
    anonymous = httpx.post(f"{server.url}/api/v1/track", json=_event("anonymous"))

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger" in docs.text.lower()
    assert schema.status_code == 200
    assert {"/api/v1/track", "/api/v1/track/batch"} <= set(schema.json()["paths"])
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_key"


def test_admin_key_tracks_and_reads(server: Server) -> None:
    with server.client() as client:
        sent = client.post("/api/v1/track", json=_event("first", message_id="m-1"))
        assert sent.status_code == 200, sent.text
        event_id = sent.json()["event_id"]
        recent = client.get("/api/v1/events", params={"user_id": "user-1"})
        people = client.get("/api/v1/people", params={"external_id": "user-1"})

    assert recent.status_code == 200, recent.text
    assert [(e["id"], e["event"]) for e in recent.json()["events"]] == [(event_id, "first")]
    assert len(people.json()["people"]) == 1


@pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads /proc to see which process holds a connection"
)
def test_two_workers_both_serve_requests(serve: ServerFactory, database_url: str) -> None:
    server = serve(database_url, workers=2)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=8) as pool:
        clients = _clients_until_both_workers_accepted(server, stack)
        # every worker process holds connections now: each client tracks on its own one
        sent = list(pool.map(_track_on, clients, range(len(clients))))
        # both processes race to store one message id: one event, one id in every answer
        repeats = [list(pool.map(_track_on, clients, [-r] * len(clients))) for r in range(1, 4)]
    assert all(status == 200 for status, _ in sent), sent
    assert [set(repeat) for repeat in repeats] == [{(200, repeat[0][1])} for repeat in repeats]

    with server.client() as client:
        read = client.get("/api/v1/events", params={"event": "spread", "limit": 500}).json()

    stored = sorted(e["id"] for e in read["events"])
    assert stored == sorted(event_id for _, event_id in [*sent, *(r[0] for r in repeats)])
    assert server.stop(signal.SIGTERM) == 0


def _event(name: str, *, message_id: str | None = None, user: str = "user-1") -> dict[str, str]:
    event = {"external_id": user, "event": name}
    if message_id is not None:
        event["message_id"] = message_id
    return event


def _track_on(client: httpx.Client, n: int) -> tuple[int, str | None]:
    """Track event ``spread`` with message id ``spread-<n>`` (one per ``n``)."""
    response = client.post("/api/v1/track", json=_event("spread", message_id=f"spread-{n}"))
    return response.status_code, response.json().get("event_id")


def _clients_until_both_workers_accepted(server: Server, stack: ExitStack) -> list[httpx.Client]:
    """Open keep-alive connections (at least 32, at most 200) until two worker processes each
    hold some of them; a worker that never accepts a connection fails the test."""
    clients: list[httpx.Client] = []
    owners: Counter[int] = Counter()
    while len(clients) < 200 and (len(clients) < 32 or len(owners) < 2):
        client = stack.enter_context(server.client())
        assert client.get("/health").status_code == 200
        clients.append(client)
        owners = socket_owners(server, ESTABLISHED)
    assert len(owners) == 2, f"connections per worker process: {dict(owners)}"
    assert server.pid not in owners  # the supervisor only supervises
    return clients


def socket_owners(server: Server, state: str) -> Counter[int]:
    """How many sockets on the server's port in ``state`` (``ESTABLISHED``: accepted
    connections) the server process and each of its children hold."""
    inodes = _inodes(server.port, state)
    owners: Counter[int] = Counter()
    for pid in [server.pid, *_children(server.pid)]:
        for fd in _fds(pid):
            if fd.startswith("socket:[") and fd[8:-1] in inodes:
                owners[pid] += 1
    return owners


def _inodes(port: int, state: str) -> set[str]:
    """The socket inodes on 127.0.0.1:``port`` in ``state`` (a /proc/net/tcp state column)."""
    local = f"0100007F:{port:04X}"  # 127.0.0.1, as /proc/net/tcp writes it
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    rows = [line.split() for line in lines]
    return {r[9] for r in rows if r[1] == local and r[3] == state}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # the field after state is the ppid
            found.append(int(entry.name))
    return found


def _fds(pid: int) -> list[str]:
    links = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for name in names:
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            continue
    return links


def test_responses_arrive_whole_on_one_connection_and_when_it_closes(server: Server) -> None:
    """Responses go out through ``trackline.transport``, which gathers each one's writes into
    one: they still arrive whole on a kept-alive connection one after another, a large one
    among them, and before the end of a connection that closes after its response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for path in ("/health", "/openapi.json", "/health"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, headers = _head(stream)
            body = stream.read(int(headers["content-length"]))
            assert status == 200 and len(body) == int(headers["content-length"])
        assert len(body) < 100 and b"ok" in body
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, headers = _head(stream)
        assert (status, headers["connection"]) == (200, "close")
        assert stream.read() == b'{"status":"ok"}'  # the whole body, then the end of stream


def _head(stream: Any) -> tuple[int, dict[str, str]]:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline().decode().strip()) != "":
        name, value = line.split(":", 1)
        headers[name.lower()] = value.strip()
    return status, headers
