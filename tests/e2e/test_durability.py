"""Durability of the Track API under load: an acknowledged event is stored, once, with the id it
was acknowledged with, whether the server is killed (SIGKILL) or stopped (SIGTERM) mid-load;
and re-sending every batch afterwards is safe (dedup by message id). With one server process,
and with two workers (SIGTERM then goes to their supervisor, which stops them)."""

from __future__ import annotations

import signal
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.conftest import STOP_S, Server, ServerFactory, admin_keys
from trackline.storage.database import Database
from trackline.storage.schema import events

pytestmark = pytest.mark.e2e

THREADS = 6
BATCH_EVENTS = 50
MAX_BATCHES = 60  # per thread: bounds the load even if the signal never comes
ACKED_BEFORE_SIGNAL = 1000
LOAD_S = 20.0  # the most we wait for ACKED_BEFORE_SIGNAL acknowledged events
PREFIX = "load-"

Batch = list[dict[str, Any]]


@dataclass
class Load:
    """Client threads, each sending batches of events with unique message ids in a loop.

    Every batch is recorded before it is sent; every event of a batch answered 200 is recorded
    as acknowledged (message id -> event id). After a transport error a thread waits for
    ``finish``: the server is going away."""

    server: Server
    batches: list[Batch] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)
    refused: Counter[int] = field(default_factory=Counter)  # non-200 answers, by status
    enough: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(THREADS):
            thread = threading.Thread(target=self._send, args=(n,), daemon=True)
            self.threads.append(thread)
            thread.start()
        assert self.enough.wait(LOAD_S), f"only {len(self.acked)} events acknowledged"

    def finish(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(timeout=STOP_S)
            assert not thread.is_alive()

    def _send(self, thread: int) -> None:
        with self.server.client() as client:
            for n in range(MAX_BATCHES):
                if self.done.is_set():
                    return
                batch = _batch(f"{PREFIX}{thread}-{n}")
                with self.lock:
                    self.batches.append(batch)
                try:
                    response = client.post("/api/v1/track/batch", json={"events": batch})
                except httpx.TransportError:
                    self.done.wait(STOP_S)
                    return
                self._record(batch, response)

    def _record(self, batch: Batch, response: httpx.Response) -> None:
        with self.lock:
            if response.status_code != 200:
                self.refused[response.status_code] += 1
                return
            ids = response.json()["event_ids"]
            self.acked.update(zip([e["message_id"] for e in batch], ids, strict=True))
            if len(self.acked) >= ACKED_BEFORE_SIGNAL:
                self.enough.set()

    def message_ids(self) -> set[str]:
        return {e["message_id"] for batch in self.batches for e in batch}


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def server(serve: ServerFactory, database_url: str, request: pytest.FixtureRequest) -> Server:
    """A started server with one process or two workers."""
    return serve(database_url, workers=request.param)


@pytest.fixture
def load(server: Server) -> Iterator[Load]:
    """Load on ``server``; its threads are told to end in teardown, whatever happened."""
    made = Load(server)
    yield made
    made.done.set()


def _batch(name: str) -> Batch:
    return [
        {
            "external_id": f"user-{name.split('-')[1]}-{k % 5}",
            "event": "load_test",
            "message_id": f"{name}-{k}",
            "parameters": {"k": k},
        }
        for k in range(BATCH_EVENTS)
    ]


def _stored(db: Database) -> dict[str, list[str]]:
    """message id -> the event ids stored under it (one, when all is well)."""
    found: dict[str, list[str]] = defaultdict(list)
    with db.read() as conn:
        rows = conn.execute(
            sa.select(events.c.message_id, events.c.id).where(
                events.c.message_id.like(f"{PREFIX}%")
            )
        )
        for message_id, event_id in rows:
            found[message_id].append(event_id)
    return dict(found)


def _resend(server: Server, batches: list[Batch]) -> dict[str, str]:
    """Send every batch again, one at a time; message id -> the event id answered."""
    answered: dict[str, str] = {}
    with server.client() as client:
        for batch in batches:
            response = client.post("/api/v1/track/batch", json={"events": batch})
            assert response.status_code == 200, response.text
            ids = response.json()["event_ids"]
            answered.update(zip([e["message_id"] for e in batch], ids, strict=True))
    return answered


def _assert_acked_stored_once(db: Database, acked: dict[str, str]) -> None:
    stored = _stored(db)
    lost_or_changed = {m: stored.get(m) for m, e in acked.items() if stored.get(m) != [e]}
    assert lost_or_changed == {}, f"{len(lost_or_changed)} of {len(acked)} acknowledged events"


def test_sigkill_loses_no_acknowledged_event_and_retries_are_safe(
    server: Server, load: Load, db: Database
) -> None:
    load.start()
    server.stop(signal.SIGKILL)  # mid-load: the client threads are still sending
    load.finish()
    assert load.refused == Counter()

    assert admin_keys(server.start()) == []  # same database: no second bootstrap
    _assert_acked_stored_once(db, load.acked)

    answered = _resend(server, load.batches)

    stored = _stored(db)
    assert set(stored) == load.message_ids()
    assert [m for m, ids in stored.items() if len(ids) != 1] == []
    assert answered == {m: ids[0] for m, ids in stored.items()}
    assert {m: answered[m] for m in load.acked} == load.acked


def test_sigterm_under_load_stores_every_acknowledged_event(
    server: Server, load: Load, db: Database
) -> None:
    load.start()
    server.send(signal.SIGTERM)
    code = server.wait(STOP_S)  # bounded: TimeoutExpired fails the test
    load.finish()

    assert code == 0
    drained = server.stderr().count("Application shutdown complete")  # each writer drained
    assert drained == server.workers
    assert load.refused == Counter()
    _assert_acked_stored_once(db, load.acked)


def test_sigterm_exits_zero(server: Server) -> None:
    assert server.stop(signal.SIGTERM) == 0
