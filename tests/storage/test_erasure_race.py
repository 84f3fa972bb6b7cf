"""Erasure against writers storing events for the same person at the same moment (another
server process on PostgreSQL): nothing stored, linked or merged meanwhile outlives it, and
neither side deadlocks. Each test holds a writer's transaction open, starts the erasure, waits
until it waits (or has ended), then lets the writer go on and commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from trackline.ids import EventIds
from trackline.ingest.model import CanonicalEvent
from trackline.ingest.pipeline import Origin, store_events
from trackline.people import service, store
from trackline.storage.database import Database
from trackline.storage.schema import events, identities, workspaces

WS = "ws_race"
ORIGIN = Origin(WS, None, "api/v1/track")
NOW = 1_700_000_000_000
IDS = EventIds()


def _event(name: str, user: str | None = "user_1", device: str | None = None) -> CanonicalEvent:
    return CanonicalEvent(
        event=name, external_id=user, device_id=device, parameters={}, timestamp=NOW
    )


def _store(conn: sa.Connection, *items: CanonicalEvent) -> None:
    store_events(conn, origin=ORIGIN, items=list(items), now_ms=NOW, ids=IDS)


def _setup(db: Database, *items: CanonicalEvent) -> None:
    with db.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="race", created_at=0))
        _store(conn, *items)


def _person(db: Database, kind: str, value: str) -> str:
    with db.read() as conn:
        return store.find_identities(conn, workspace_id=WS, kind=kind, values=[value])[value]


@contextmanager
def _erasing(db: Database, person_id: str) -> Iterator[Callable[[], None]]:
    """Erase ``person_id`` in another thread; yields a function that waits until the erasure
    waits for a lock (PostgreSQL shows it in ``pg_locks``; SQLite's waiting writer is
    invisible, so it gets a moment) or has ended. On leaving, the erasure must have ended
    without an error."""
    failures: list[BaseException] = []

    def erase() -> None:
        try:
            with db.write() as conn:
                service.erase(conn, workspace_id=WS, person_id=person_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    eraser = threading.Thread(target=erase)

    def started_and_waiting() -> None:
        eraser.start()
        deadline = time.monotonic() + 10
        while eraser.is_alive() and time.monotonic() < deadline:
            if db.dialect == "sqlite":
                eraser.join(0.5)
                return
            with db.read() as conn:
                waiting = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                ).scalar_one()
            if waiting:
                return
            time.sleep(0.01)

    yield started_and_waiting
    eraser.join(30)
    assert not eraser.is_alive() and failures == []


def _left(db: Database) -> tuple[list[str], list[str]]:
    with db.read() as conn:
        stored = conn.execute(sa.select(events.c.event).where(events.c.workspace_id == WS))
        kept = conn.execute(sa.select(identities.c.value).where(identities.c.workspace_id == WS))
        return sorted(stored.scalars()), sorted(kept.scalars())


def test_event_stored_while_its_person_is_erased_does_not_survive(db: Database) -> None:
    _setup(db, _event("signed_up"))
    with _erasing(db, _person(db, store.USER, "user_1")) as erase, db.write() as ingest:
        _store(ingest, _event("clicked"))  # resolved and stored, not yet committed
        erase()
    assert _left(db) == ([], [])


@pytest.mark.parametrize("first", ["dev_1", "dev_2"])
def test_one_commit_resolving_twice_around_an_erasure_does_not_deadlock(
    db: Database, first: str
) -> None:
    """The writer runs several requests' resolutions in one transaction; the erasure starts
    between two of them (both orders, whatever order locks are taken in)."""
    _setup(db, _event("signed_up", "user_1", "dev_1"), _event("opened", "user_1", "dev_2"))
    second = {"dev_1": "dev_2", "dev_2": "dev_1"}[first]
    with _erasing(db, _person(db, store.USER, "user_1")) as erase, db.write() as ingest:
        _store(ingest, _event("seen", None, first))
        erase()
        _store(ingest, _event("seen", None, second))
    assert _left(db) == ([], [])


def test_device_linked_while_its_person_is_erased_goes_too(db: Database) -> None:
    _setup(db, _event("signed_up"))
    with _erasing(db, _person(db, store.USER, "user_1")) as erase, db.write() as linking:
        _store(linking, _event("logged_in", "user_1", "dev_new"))  # links a new device
        erase()
    assert _left(db) == ([], [])


def test_person_merged_while_it_is_erased_is_erased_with_its_survivor(db: Database) -> None:
    """Erasing an anonymous person while it is merged into a user erases the user's person
    (a merged-away id names its survivor), not nothing."""
    _setup(db, _event("viewed", None, "dev_anon"), _event("signed_up"))
    anonymous = _person(db, store.DEVICE, "dev_anon")
    with _erasing(db, anonymous) as erase, db.write() as merging:
        _store(merging, _event("logged_in", "user_1", "dev_anon"))  # merges it into user_1
        erase()
    assert _left(db) == ([], [])
