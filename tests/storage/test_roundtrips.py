"""PostgreSQL write transactions send their BEGIN with their first statement, and statements
nobody reads the answer of with the next one or with the COMMIT (``storage.roundtrips``):
still one transaction, in the order the statements were issued, and all or nothing. Round
trips are counted from libpq's own protocol trace of the connection."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from trackline.ids import EventIds
from trackline.ingest.model import CanonicalEvent, Parsed
from trackline.ingest.pipeline import Origin, admit_many
from trackline.people import identity
from trackline.storage import dialect, roundtrips
from trackline.storage.database import Database
from trackline.storage.schema import (
    event_definitions,
    events,
    identities,
    property_declarations,
    workspaces,
)

WS = "ws_trips"
NOW = 1_700_000_000_000


@pytest.fixture
def pg(database_url: str) -> Iterator[Database]:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite statements are library calls, not round trips")
    database = Database(database_url, pool_size=1)
    yield database
    database.dispose()


def _insert(name: str) -> roundtrips.Statement:
    return ("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, 0)", (name, name))


def _names(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(sa.select(workspaces.c.id).order_by(workspaces.c.id)).scalars())


def test_a_write_is_one_transaction_from_its_first_statement(pg: Database) -> None:
    with pg.write() as conn:
        [[(first,)]] = roundtrips.together(conn, [("SELECT txid_current()", ())])
        second = conn.exec_driver_sql("SELECT txid_current()").scalar_one()
        with dialect.driver_cursor(conn) as cursor:
            cursor.execute("SELECT txid_current()")
            third = cursor.fetchone()[0]
    assert first == second == third


def test_what_waits_goes_before_the_next_statement_whichever_way_it_is_sent(
    pg: Database,
) -> None:
    with pg.write() as conn:
        roundtrips.soon(conn, _insert("ws_a"))
        assert conn.execute(sa.select(sa.func.count()).select_from(workspaces)).scalar() == 1
        roundtrips.soon(conn, _insert("ws_b"))
        with dialect.driver_cursor(conn) as cursor:
            cursor.execute("SELECT count(*) FROM workspaces")
            assert cursor.fetchone() == (2,)
        roundtrips.soon(conn, _insert("ws_c"))
        [rows] = roundtrips.together(conn, [("SELECT id FROM workspaces ORDER BY id", ())])
        assert rows == [("ws_a",), ("ws_b",), ("ws_c",)]
    assert _names(pg) == ["ws_a", "ws_b", "ws_c"]


def test_what_waits_at_the_end_is_committed_with_the_transaction(pg: Database) -> None:
    with pg.write() as conn:
        roundtrips.together(conn, [_insert("ws_first")])
        roundtrips.soon(conn, _insert("ws_last"))
    assert _names(pg) == ["ws_first", "ws_last"]
    with pg.write() as conn:  # a transaction of nothing but a waiting statement
        roundtrips.soon(conn, _insert("ws_only"))
    assert _names(pg) == ["ws_first", "ws_last", "ws_only"]


def test_a_rollback_undoes_what_was_sent_and_drops_what_waits(pg: Database) -> None:
    with pytest.raises(RuntimeError), pg.write() as conn:
        roundtrips.together(conn, [_insert("ws_sent")])
        roundtrips.soon(conn, _insert("ws_waiting"))
        raise RuntimeError("the job failed")
    with pg.write() as conn:  # the next transaction on the same connection sends none of it
        roundtrips.together(conn, [_insert("ws_next")])
    assert _names(pg) == ["ws_next"]


def test_a_waiting_statement_that_fails_fails_the_commit_and_keeps_nothing(
    pg: Database,
) -> None:
    with pytest.raises(sa.exc.IntegrityError), pg.write() as conn:
        roundtrips.together(conn, [_insert("ws_dup")])
        roundtrips.soon(conn, _insert("ws_dup"))  # the same key: fails at the COMMIT
    assert _names(pg) == []
    with pg.write() as conn:  # the connection is usable again
        roundtrips.together(conn, [_insert("ws_after")])
    assert _names(pg) == ["ws_after"]


def _ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(row[0] for row in rows)


def test_a_look_up_ahead_goes_with_the_next_round_trip_and_answers_once(
    pg: Database, tmp_path: Path
) -> None:
    with pg.write() as conn:
        roundtrips.together(conn, [_insert("ws_a"), _insert("ws_b")])
        pgconn = _pgconn(conn)
    with _round_trips(pgconn, tmp_path) as trips, pg.write() as conn:
        roundtrips.soon(conn, _insert("ws_c"))  # waits: goes first, so the look-up sees it
        roundtrips.ahead(conn, "ids", ("SELECT id FROM workspaces", ()))
        [rows] = roundtrips.together(conn, [("SELECT count(*) FROM workspaces", ())])
        roundtrips.soon(conn, _insert("ws_d"))  # after the look-up: not in its answer
        sent = roundtrips.answer(conn, "ids")
        assert roundtrips.answer(conn, "ids") is None  # once
        assert roundtrips.answer(conn, "never queued") is None
    assert trips == [2]  # the look-up with the count; ws_d with the COMMIT
    assert rows == [(3,)]
    assert sent is not None and sent[0] == ("SELECT id FROM workspaces", ())
    assert _ids(sent[1]) == ["ws_a", "ws_b", "ws_c"]


def test_an_answer_not_sent_yet_is_sent_when_asked_for(pg: Database, tmp_path: Path) -> None:
    with pg.write() as conn:
        roundtrips.together(conn, [_insert("ws_a")])
        pgconn = _pgconn(conn)
    with _round_trips(pgconn, tmp_path) as trips, pg.write() as conn:
        roundtrips.ahead(conn, "ids", ("SELECT id FROM workspaces", ()))
        sent = roundtrips.answer(conn, "ids")
    assert trips == [2]  # BEGIN with the look-up, then the COMMIT
    assert sent is not None and _ids(sent[1]) == ["ws_a"]


def test_a_forgotten_look_up_is_never_sent_and_answers_nothing(
    pg: Database, tmp_path: Path
) -> None:
    with pg.write() as conn:
        roundtrips.together(conn, [_insert("ws_a")])
        pgconn = _pgconn(conn)
    with _round_trips(pgconn, tmp_path) as trips, pg.write() as conn:
        roundtrips.ahead(conn, "ids", ("SELECT 1 / 0", ()))  # would fail the transaction
        roundtrips.forget(conn, "ids")
        assert roundtrips.answer(conn, "ids") is None
        roundtrips.together(conn, [_insert("ws_b")])
        roundtrips.ahead(conn, "sent", ("SELECT id FROM workspaces", ()))
        roundtrips.together(conn, [("SELECT 1", ())])
        roundtrips.forget(conn, "sent")  # sent already: its rows are dropped
        assert roundtrips.answer(conn, "sent") is None
    assert trips == [3]
    assert _names(pg) == ["ws_a", "ws_b"]


def test_an_answer_lasts_only_for_its_transaction(pg: Database) -> None:
    with pg.write() as conn:
        roundtrips.ahead(conn, "ids", ("SELECT id FROM workspaces", ()))
        roundtrips.together(conn, [_insert("ws_a")])
    with pg.write() as conn:
        assert roundtrips.answer(conn, "ids") is None


def test_ingest_leaves_no_identities_look_up_behind_for_later_work(pg: Database) -> None:
    """A commit whose events are all refused (a declared type) resolves no identities: the
    look-up sent with its declarations must not answer a later resolution in the same
    transaction, which may come after other jobs' writes."""
    origin, ids = Origin(WS, None, "api/v1/batch"), EventIds()
    with pg.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="trips", created_at=0))
        conn.execute(
            property_declarations.insert().values(
                workspace_id=WS,
                event="purchase_completed",
                property="amount",
                type="boolean",
                updated_at=0,
            )
        )
    with pg.write() as conn:
        batch = _batch("first", 5, devices=True)
        [(stored, refused)] = admit_many(conn, works=[(origin, batch)], now_ms=NOW, ids=ids)
        assert stored == [] and len(refused) == 5  # amount is a number, declared a boolean
        for kind in ("user", "device"):
            assert roundtrips.answer(conn, ("identities", WS, kind)) is None


def test_resolution_reads_again_after_its_locks_what_was_looked_up_ahead(
    pg: Database, database_url: str
) -> None:
    """An identity looked up ahead as unknown and created by another writer before this
    one takes its lock: resolution waits for the lock, reads again and finds that person,
    rather than trusting the answer and creating a second one."""
    with pg.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="trips", created_at=0))
    other = Database(database_url)
    try:
        with pg.write() as conn:
            identity.look_up_soon(conn, workspace_id=WS, pairs=[("user_new", None)])
            roundtrips.together(conn, [("SELECT 1", ())])  # the look-up went: user_new unknown
            with other.write() as elsewhere:
                created = identity.resolve(
                    elsewhere, workspace_id=WS, pairs=[("user_new", None)], now_ms=NOW
                ).person_ids
            found = identity.resolve(conn, workspace_id=WS, pairs=[("user_new", None)], now_ms=NOW)
    finally:
        other.dispose()
    assert found.person_ids == created
    with pg.read() as conn:
        users = identities.select().where(identities.c.value == "user_new")
        assert len(conn.execute(users).all()) == 1


def test_once_is_true_once_per_transaction(pg: Database) -> None:
    with pg.write() as conn:
        assert roundtrips.once(conn, ("lock", "a"))
        assert not roundtrips.once(conn, ("lock", "a"))
        assert roundtrips.once(conn, ("lock", "b"))
    with pg.write() as conn:
        assert roundtrips.once(conn, ("lock", "a"))


def _batch(prefix: str, count: int, *, devices: bool = False) -> Parsed:
    return Parsed(
        events=[
            (
                n,
                CanonicalEvent(
                    event="purchase_completed",
                    external_id=f"user_{n % 5}",
                    device_id=f"device_{n}" if devices else None,
                    parameters={"amount": n},
                    timestamp=NOW + n,
                    message_id=f"{prefix}-{n}",
                ),
            )
            for n in range(count)
        ],
        errors=[],
    )


def _pgconn(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection.pgconn  # type: ignore[union-attr]


@contextmanager
def _round_trips(pgconn: Any, tmp_path: Path) -> Iterator[list[int]]:
    """Count the round trips a connection makes (libpq's trace of what it sends: a pipeline
    or a statement ends with ``Sync``, a simple query is one ``Query``)."""
    counted: list[int] = []
    trace = tmp_path / "trace"
    fd = os.open(trace, os.O_WRONLY | os.O_CREAT)
    pgconn.trace(fd)
    try:
        yield counted
    finally:
        pgconn.untrace()
        os.close(fd)
    sent = [line.split("\t") for line in trace.read_text().splitlines()]
    counted.append(sum(1 for f in sent if f[1:2] == ["F"] and f[3:4] in (["Sync"], ["Query"])))


def test_an_ingest_commit_of_known_people_takes_four_round_trips(
    pg: Database, tmp_path: Path
) -> None:
    """BEGIN, the hold against erasure, the identities look-up and the declarations look-up;
    SAVEPOINT; COPY; the catalog upsert and COMMIT. Eight before, five until the identities
    went with the declarations."""
    origin, ids = Origin(WS, None, "api/v1/batch"), EventIds()
    with pg.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="trips", created_at=0))
        admit_many(conn, works=[(origin, _batch("first", 20))], now_ms=NOW, ids=ids)
        pgconn = _pgconn(conn)
    with _round_trips(pgconn, tmp_path) as trips, pg.write() as conn:
        assert _pgconn(conn) is pgconn  # the pool's one connection
        [(stored, refused)] = admit_many(
            conn, works=[(origin, _batch("second", 20))], now_ms=NOW, ids=ids
        )
    assert trips == [4]
    assert len(stored) == 20 and refused == []
    with pg.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 40
        counted = sa.select(event_definitions.c.count).where(
            event_definitions.c.name == "purchase_completed"
        )
        assert conn.execute(counted).scalar() == 40
