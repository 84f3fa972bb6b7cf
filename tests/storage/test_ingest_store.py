"""The ingest path's SQL: event rows in multi-row statements or COPY, dedup look-ups."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from trackline.errors import Unavailable
from trackline.ids import EventIds
from trackline.ingest import store
from trackline.ingest.model import CanonicalEvent
from trackline.ingest.pipeline import Origin, store_events
from trackline.storage import dialect
from trackline.storage.database import Database
from trackline.storage.schema import event_definitions, events, workspaces

WS = "ws_store"


def _rows(prefix: str, count: int, *, message_ids: bool) -> list[store.EventRow]:
    return [
        store.event_row(
            f"evt_{prefix}{n:06d}",
            WS,
            "p1",
            CanonicalEvent(
                event="purchase_completed",
                external_id="user_1",
                device_id=None,
                parameters={"amount": 9.99, "n": n, "tags": ["a", "b"], "note": 'it\'s "q" é'},
                context={"ip": "203.0.113.7"},
                timestamp=1_700_000_000_000 + n,
                message_id=f"{prefix}-{n}" if message_ids else None,
            ),
            1_700_000_000_000,
        )
        for n in range(count)
    ]


def test_an_event_row_holds_the_columns_in_schema_order() -> None:
    """Rows go to the database positionally: ``event_row`` must follow ``COLUMNS``."""
    event = CanonicalEvent(
        event="signed_up",
        external_id="u",
        device_id="d",
        parameters={"plan": "pro"},
        timestamp=5,
        message_id="m",
        group_id="g",
        context={"ip": "x"},
        context_json='{"ip":"x"}',
    )
    row = dict(zip(store.COLUMNS, store.event_row("evt_1", WS, "p", event, 7), strict=True))
    assert row == {
        "id": "evt_1",
        "workspace_id": WS,
        "person_id": "p",
        "external_id": "u",
        "device_id": "d",
        "event": "signed_up",
        "parameters": '{"plan":"pro"}',
        "group_id": "g",
        "context": '{"ip":"x"}',
        "timestamp": 5,
        "created_at": 7,
        "message_id": "m",
    }
    assert {c.name for c in events.columns} == {*store.COLUMNS, "seq"}
    assert [store.COLUMNS[i] for i in (store.ID, store.EVENT, store.MESSAGE_ID)] == [
        "id",
        "event",
        "message_id",
    ]


def _setup(db: Database) -> None:
    with db.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="store", created_at=0))


def _stored(db: Database) -> list[sa.Row[tuple[str, object, str | None]]]:
    with db.read() as conn:
        return list(
            conn.execute(
                sa.select(events.c.id, events.c.parameters, events.c.message_id).order_by(
                    events.c.id
                )
            )
        )


def test_rows_round_trip_in_chunks_of_any_size(db: Database) -> None:
    _setup(db)
    for count in (1, 9, 10, 49, 50, 100, 101, 250):  # below and above the chunk and COPY sizes
        with db.write() as conn:
            store.insert_events(conn, _rows(f"c{count}_", count, message_ids=True))
    stored = _stored(db)
    assert len(stored) == 1 + 9 + 10 + 49 + 50 + 100 + 101 + 250
    first = next(r for r in stored if r.id == "evt_c250_000007")
    assert first.parameters == {"amount": 9.99, "n": 7, "tags": ["a", "b"], "note": 'it\'s "q" é'}
    assert first.message_id == "c250_-7"


def test_a_commit_larger_than_one_statement_is_stored_whole(db: Database) -> None:
    """More rows than one multi-row statement holds: several statements, every row stored."""
    _setup(db)
    count = dialect.ROWS_PER_INSERT * 2 + 7
    with db.write() as conn:
        assert store.insert_events(conn, _rows("big", count, message_ids=False)) == count
    assert len(_stored(db)) == count


@pytest.mark.parametrize("most", [2048, 83, 1])
def test_statement_parts_cover_the_rows_in_few_distinct_sizes(most: int) -> None:
    """Every row once and in order, no part over ``most``, and few distinct part sizes (each
    one a statement the driver keeps prepared)."""
    sizes: set[int] = set()
    for count in range(0, 5000, 7):
        rows = list(range(count))
        parts = list(dialect.statement_parts(rows, most))
        assert [r for part in parts for r in part] == rows
        assert all(0 < len(part) <= most for part in parts)
        sizes.update(len(part) for part in parts)
    assert len(sizes) <= dialect.SMALL_PART + 12


def test_rows_per_statement_keeps_within_the_parameter_limit(db: Database) -> None:
    """An SQLite built with the old limit of 999 parameters gets smaller statements."""
    _setup(db)
    with db.write() as conn:
        width = len(store.COLUMNS)
        if db.dialect == "sqlite":
            driver = conn.connection.driver_connection
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
            assert dialect.rows_per_statement(conn, width) == 999 // width
            assert store.insert_events(conn, _rows("old", 200, message_ids=True)) == 200
        else:
            assert dialect.rows_per_statement(conn, width) == dialect.ROWS_PER_INSERT
    assert len(_stored(db)) == (200 if db.dialect == "sqlite" else 0)


def test_two_inserts_in_one_transaction_store_each_row_once(db: Database) -> None:
    """Rows without message ids cannot be deduplicated: a second insert in the same
    transaction must not bring the first one's rows again (PostgreSQL's staging table)."""
    _setup(db)
    with db.write() as conn:
        store.insert_events(conn, _rows("a", 60, message_ids=False))
        store.insert_events(conn, _rows("b", 70, message_ids=False))
    assert len(_stored(db)) == 130


def test_stored_message_ids_are_skipped_and_found(db: Database) -> None:
    _setup(db)
    with db.write() as conn:
        store.insert_events(conn, _rows("m", 120, message_ids=True))
    again = [(f"evt_again{row[0]}", *row[1:]) for row in _rows("m", 130, message_ids=True)]
    with db.write() as conn:
        store.insert_events(conn, again)  # 120 repeats skipped, 10 new rows stored
        found = store.existing_message_ids(
            conn, workspace_id=WS, message_ids=["m-0", "m-129", "m-0", "nope"]
        )
    assert len(_stored(db)) == 130
    assert found == {"m-0": "evt_m000000", "m-129": "evt_againevt_m000129"}
    with db.read() as conn:
        assert store.existing_message_ids(conn, workspace_id="ws_other", message_ids=["m-0"]) == {}
        assert store.existing_message_ids(conn, workspace_id=WS, message_ids=[]) == {}


def test_a_message_id_stored_meanwhile_answers_with_the_stored_event(db: Database) -> None:
    """Two processes may store the same message id at once: the insert that loses is
    skipped, and its request must answer with the event id that was kept."""
    _setup(db)
    ids = EventIds()
    origin = Origin(WS, None, "test")

    def event(n: int) -> CanonicalEvent:
        return CanonicalEvent(
            event="signed_up",
            external_id="user_1",
            device_id=None,
            parameters={},
            timestamp=1_700_000_000_000,
            message_id=f"race-{n}",
        )

    with db.write() as conn:
        [first] = store_events(conn, origin=origin, items=[event(1)], now_ms=1, ids=ids)
    for count in (2, 70):  # a multi-row INSERT, and on PostgreSQL COPY
        items = [event(1)] + [event(count * 100 + n) for n in range(1, count)]
        with db.write() as conn:  # as if the look-up ran before the other writer committed
            answers = store_events(conn, origin=origin, items=items, now_ms=2, ids=ids, known={})
        assert answers[0] == first
        stored = {r.message_id: r.id for r in _stored(db)}
        assert all(stored[e.message_id] == a for e, a in zip(items, answers, strict=True))
    assert len(stored) == 1 + 1 + 69
    with db.read() as conn:  # the catalog counted the stored rows, not the skipped repeats
        counted = conn.execute(
            sa.select(event_definitions.c.count).where(
                event_definitions.c.workspace_id == WS, event_definitions.c.name == "signed_up"
            )
        ).scalar_one()
    assert counted == len(stored)


def test_connection_lost_during_a_raw_insert_is_unavailable(db: Database) -> None:
    """PostgreSQL's many-row inserts and COPY go through a driver cursor; losing the
    connection there must look like losing it anywhere else: 503, connection invalidated."""
    if db.dialect != "postgresql":
        pytest.skip("a PostgreSQL connection is killed from another session")
    _setup(db)
    raised: list[Exception] = []
    with pytest.raises(Unavailable), db.write() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with db.write_engine.connect() as killer:
            killer.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        try:
            store.insert_events(conn, _rows("lost", 3, message_ids=True))
        except Exception as exc:
            raised.append(exc)
            raise
    (lost,) = raised
    assert isinstance(lost, sa.exc.OperationalError) and lost.connection_invalidated
    with db.read() as conn:  # the pool hands out a working connection again
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 0


def test_many_large_inserts_in_one_transaction_store_each_row_once(db: Database) -> None:
    """A commit of many workspaces' requests runs one insert each. On PostgreSQL the first
    ``_COPY_SAVEPOINTS`` are COPYs under a savepoint and the rest multi-row INSERTs; a repeat
    in either kind (a COPY after a COPY rolls back to its own savepoint) is skipped."""
    _setup(db)
    inserts = store._COPY_SAVEPOINTS + 3
    with db.write() as conn:
        store.insert_events(conn, _rows("seen_", 10, message_ids=True))
    with db.write() as conn:
        counts = [
            store.insert_events(conn, _rows(f"i{n}_", 10, message_ids=True)) for n in range(inserts)
        ]
        repeats = [
            store.insert_events(conn, _rows("seen_", 10, message_ids=True)),
            store.insert_events(conn, _rows("i0_", 12, message_ids=True)),
        ]
    assert counts == [10] * inserts
    assert repeats == [0, 2]  # rows 10 and 11 of "i0_" are new
    assert len(_stored(db)) == 10 + inserts * 10 + 2
