"""Erasure against ingest storing events for the same person at the same moment (another
server process on PostgreSQL): the event must not outlive the erasure."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from trackline.ids import EventIds
from trackline.ingest.model import CanonicalEvent
from trackline.ingest.pipeline import Origin, store_events
from trackline.people import service, store
from trackline.storage.database import Database
from trackline.storage.schema import events, workspaces

WS = "ws_race"
ORIGIN = Origin(WS, None, "api/v1/track")
NOW = 1_700_000_000_000


def _event(name: str) -> CanonicalEvent:
    return CanonicalEvent(
        event=name, external_id="user_1", device_id=None, parameters={}, timestamp=NOW
    )


def _erase_waits_or_ends(db: Database, eraser: threading.Thread) -> None:
    """Return once the erasing thread has ended or waits for a lock. PostgreSQL shows the
    wait in ``pg_locks``; SQLite's waiting writer is invisible, so give it a moment there."""
    deadline = time.monotonic() + 10
    while eraser.is_alive() and time.monotonic() < deadline:
        if db.dialect == "sqlite":
            eraser.join(0.5)
            return
        with db.read() as conn:
            waiting = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)


def test_event_stored_while_its_person_is_erased_does_not_survive(db: Database) -> None:
    ids = EventIds()
    with db.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="race", created_at=0))
        store_events(conn, origin=ORIGIN, items=[_event("signed_up")], now_ms=NOW, ids=ids)
    with db.read() as conn:
        person = store.find_identities(conn, workspace_id=WS, kind=store.USER, values=["user_1"])
    person_id = person["user_1"]
    failures: list[BaseException] = []

    def erase() -> None:
        try:
            with db.write() as conn:
                service.erase(conn, workspace_id=WS, person_id=person_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    eraser = threading.Thread(target=erase)
    with db.write() as ingest:  # the other process: resolved, stored, not yet committed
        store_events(ingest, origin=ORIGIN, items=[_event("clicked")], now_ms=NOW, ids=ids)
        eraser.start()
        _erase_waits_or_ends(db, eraser)
    eraser.join(30)
    assert not eraser.is_alive() and failures == []

    with db.read() as conn:
        left = (
            conn.execute(sa.select(events.c.event).where(events.c.workspace_id == WS))
            .scalars()
            .all()
        )
        identities = store.find_identities(
            conn, workspace_id=WS, kind=store.USER, values=["user_1"]
        )
    assert (left, identities) == ([], {})
