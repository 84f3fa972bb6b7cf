"""Person timelines (``storage/timeline``). SQLite keeps them in two tables: every stored
event gets an entry, whichever statement stores it; a move carries the entries into the large
table, whole or in slices; merges and erasures change both tables; the writer moves on its
own. PostgreSQL keeps them in an index on ``events``: merges, erasures and first/last seen
work the same there, and its writer never moves anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from trackline.ingest import store
from trackline.ingest.model import CanonicalEvent
from trackline.ingest.writer import Writer
from trackline.settings import WriterSettings
from trackline.storage import timeline
from trackline.storage.database import Database
from trackline.storage.schema import events, timeline_recent, workspaces
from trackline.storage.schema import timeline as timeline_table

WS = "ws_timeline"
T0 = 1_700_000_000_000
Entry = tuple[str, str, int, int]


def _rows(person: str, count: int, prefix: str, *, at: int = T0) -> list[store.EventRow]:
    return [
        store.event_row(
            f"evt_{prefix}{n:04d}",
            WS,
            person,
            CanonicalEvent(
                event="page_viewed",
                external_id=None,
                device_id=f"dev_{person}",
                parameters={"n": n},
                timestamp=at + n,
                message_id=f"{prefix}-{n}",
            ),
            T0,
        )
        for n in range(count)
    ]


def _store(db: Database, rows: list[store.EventRow]) -> None:
    with db.write() as conn:
        store.insert_events(conn, rows)


def _move(db: Database, after: timeline.Key | None = None, limit: int | None = None) -> int:
    """A move (a slice of one, with ``after`` and ``limit``); how many entries it took."""
    with db.write() as conn:
        return timeline.move(conn, after=after, limit=limit).entries


def _in_tables(db: Database) -> None:
    if not timeline.in_tables(db.dialect):
        pytest.skip("PostgreSQL keeps person timelines in an index on events")


def _timeline(db: Database) -> set[Entry]:
    """Every entry as the timeline knows it: both tables (SQLite), or ``events`` itself."""
    if not timeline.in_tables(db.dialect):
        return _of_events(db)
    return _entries(db, timeline_recent) | _entries(db, timeline_table)


def _entries(db: Database, table: sa.Table) -> set[Entry]:
    with db.read() as conn:
        return {tuple(row) for row in conn.execute(sa.select(table))}  # type: ignore[misc]


def _of_events(db: Database) -> set[Entry]:
    """The entries the stored events call for."""
    with db.read() as conn:
        found = conn.execute(
            sa.select(events.c.workspace_id, events.c.person_id, events.c.timestamp, events.c.seq)
        )
        return {tuple(row) for row in found}  # type: ignore[misc]


@pytest.fixture
def ws(db: Database) -> str:
    with db.write() as conn:
        conn.execute(workspaces.insert().values(id=WS, name="timeline", created_at=0))
    return WS


def test_every_stored_event_gets_an_entry_whatever_stores_it(db: Database, ws: str) -> None:
    """One row, a multi-row statement, and one whose message ids are partly stored."""
    _in_tables(db)
    _store(db, _rows("p1", 1, "one"))
    _store(db, _rows("p1", 70, "many"))
    again = [(f"evt_again{row[0]}", *row[1:]) for row in _rows("p2", 80, "many")]
    _store(db, again)  # 70 message ids are stored already: only the last 10 rows go in

    assert len(_of_events(db)) == 1 + 70 + 10
    assert _entries(db, timeline_recent) == _of_events(db)
    assert _entries(db, timeline_table) == set()


def test_a_move_carries_every_entry_into_the_large_table(db: Database, ws: str) -> None:
    _in_tables(db)
    _store(db, _rows("p1", 20, "a") + _rows("p2", 10, "b"))
    assert _move(db) == 30
    _store(db, _rows("p1", 5, "c", at=T0 + 100))

    assert _entries(db, timeline_recent) | _entries(db, timeline_table) == _of_events(db)
    assert len(_entries(db, timeline_recent)) == 5
    assert _move(db) == 5
    assert _move(db) == 0
    assert _entries(db, timeline_recent) == set()
    assert _entries(db, timeline_table) == _of_events(db)


def test_a_move_goes_in_slices_in_key_order(db: Database, ws: str) -> None:
    """Each slice takes the next ``limit`` entries after the last one it moved, in key order;
    entries stored during a pass wait for the next one when they sort before its position,
    and are taken by it when they sort after."""
    _in_tables(db)
    _store(db, _rows("p1", 3, "a") + _rows("p2", 3, "b") + _rows("p3", 2, "c"))
    with db.write() as conn:
        first = timeline.move(conn, limit=3)
    assert first.entries == 3
    assert first.last is not None and first.last[1:3] == ("p1", T0 + 2)
    assert {e[1] for e in _entries(db, timeline_table)} == {"p1"}

    _store(db, _rows("p0", 1, "d") + _rows("p4", 2, "e"))  # behind / ahead of the pass
    with db.write() as conn:
        second = timeline.move(conn, after=first.last, limit=3)
    assert second.entries == 3
    assert second.last is not None and second.last[1:3] == ("p2", T0 + 2)
    with db.write() as conn:
        third = timeline.move(conn, after=second.last, limit=3)
    assert third.entries == 3 and third.last is not None
    assert third.last[1:3] == ("p4", T0)
    with db.write() as conn:
        assert timeline.move(conn, after=third.last, limit=3) == timeline.Moved(1, None)

    assert {e[1] for e in _entries(db, timeline_recent)} == {"p0"}
    assert _move(db, limit=3) == 1  # the next pass
    assert _entries(db, timeline_table) == _of_events(db)


def _split(db: Database) -> None:
    """Persons ``old`` and ``new`` with entries in both tables (SQLite); ``other`` in one."""
    _store(db, _rows("old", 4, "o1") + _rows("new", 3, "n1") + _rows("other", 2, "x"))
    if timeline.in_tables(db.dialect):
        _move(db)
    _store(db, _rows("old", 3, "o2", at=T0 + 50) + _rows("new", 2, "n2", at=T0 + 50))


def test_a_merge_moves_events_and_entries_of_both_tables(db: Database, ws: str) -> None:
    _split(db)
    with db.write() as conn:
        timeline.repoint(conn, workspace_id=WS, loser="old", survivor="new")

    with db.read() as conn:
        owners = conn.execute(
            sa.select(events.c.person_id, sa.func.count()).group_by(events.c.person_id)
        ).all()
        first, last = conn.execute(timeline.span(db.dialect, WS, "new")).one()
        assert conn.execute(timeline.span(db.dialect, WS, "old")).one() == (None, None)
    assert dict(owners) == {"new": 12, "other": 2}
    assert _timeline(db) == _of_events(db)
    assert (first, last) == (T0, T0 + 50 + 2)


def test_an_erasure_deletes_events_and_entries_of_both_tables(db: Database, ws: str) -> None:
    _split(db)
    with db.write() as conn:
        timeline.erase(conn, workspace_id=WS, person_id="old")

    with db.read() as conn:
        left = set(conn.execute(sa.select(events.c.person_id)).scalars())
    assert left == {"new", "other"}
    assert _timeline(db) == _of_events(db)


def test_another_workspace_is_untouched(db: Database, ws: str) -> None:
    _split(db)
    with db.write() as conn:
        conn.execute(workspaces.insert().values(id="ws_b", name="b", created_at=0))
        rows = [(r[0] + "b", "ws_b", *r[2:11], r[11] + "b") for r in _rows("old", 3, "wb")]
        store.insert_events(conn, rows)
        timeline.repoint(conn, workspace_id=WS, loser="old", survivor="new")
        timeline.erase(conn, workspace_id=WS, person_id="new")

    with db.read() as conn:
        theirs = conn.execute(timeline.span(db.dialect, "ws_b", "old")).one()
    assert theirs == (T0, T0 + 2)
    assert {(e[0], e[1]) for e in _of_events(db)} == {(WS, "other"), ("ws_b", "old")}


@dataclass
class _Run:
    moves: int  # moves the writer finished
    seen: list[int]  # entries in the recent table as each commit began
    answers: list[int]  # what each commit's job answered (events stored)


def _run_writer(db: Database, settings: WriterSettings, persons: list[str], size: int) -> _Run:
    """A writer with ``settings`` commits ``size`` events for each of ``persons`` in turn,
    one commit each; it is stopped (its last slice moved) before this returns."""
    writer = Writer(db, settings)
    seen: list[int] = []

    def job(n: int, person: str) -> Callable[[sa.Connection], int]:
        def run(conn: sa.Connection) -> int:
            seen.append(_recent_count(conn))
            return store.insert_events(conn, _rows(person, size, f"s{n}_", at=T0 + n * size))

        return run

    async def scenario() -> list[int]:
        return [await writer.submit(job(n, p), weight=size) for n, p in enumerate(persons)]

    writer.start()
    try:
        answers = asyncio.run(scenario())
    finally:
        writer.stop()
    return _Run(writer.moves, seen, answers)


def _recent_count(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(timeline_recent)).scalar_one()


def test_the_writer_moves_every_so_many_events(db: Database, ws: str) -> None:
    """Jobs of 3 events against a move every 5: after 6 and after 12 events."""
    _in_tables(db)
    run = _run_writer(db, WriterSettings(timeline_move_events=5), ["p0", "p1", "p2", "p3"], 3)
    assert run.moves == 2
    assert _entries(db, timeline_recent) == set()
    assert _entries(db, timeline_table) == _of_events(db)
    assert len(_of_events(db)) == 12


def test_the_writer_moves_a_slice_after_each_commit(db: Database, ws: str) -> None:
    """Commits of 3 entries, each for a person that sorts before the last, a move due every 6
    events, slices of 1: each slice takes 1 entry more than its commit stored (4), so a move
    outruns what arrives; entries stored behind its position wait for the next move."""
    _in_tables(db)
    settings = WriterSettings(timeline_move_events=6, timeline_move_slice=1)
    run = _run_writer(db, settings, ["p9", "p8", "p7", "p6", "p5"], 3)
    # Entries in the recent table as each commit began: after the second, the move takes
    # p8's 3 and p9's first; after the third, p9's last 2 and ends (p7 is behind it); after
    # the fourth, the next move takes p6's 3 and p7's first; after the fifth, p7's last 2.
    assert run.seen == [0, 3, 2, 3, 2]
    assert run.moves == 2
    assert {e[1] for e in _entries(db, timeline_recent)} == {"p5"}
    assert _entries(db, timeline_recent) | _entries(db, timeline_table) == _of_events(db)


def test_moves_keep_up_with_commits_larger_than_a_slice(db: Database, ws: str) -> None:
    """Commits of 10 events from people all over the key, slices of 1: the recent table stays
    small and every move ends (a slice of a fixed size would fall behind by 9 a commit)."""
    _in_tables(db)
    persons = [f"p{(n * 7) % 10}" for n in range(40)]
    settings = WriterSettings(timeline_move_events=20, timeline_move_slice=1)
    run = _run_writer(db, settings, persons, 10)
    assert max(run.seen) <= 60
    assert run.moves >= 10
    assert _entries(db, timeline_recent) | _entries(db, timeline_table) == _of_events(db)


def test_postgresql_s_writer_never_moves(db: Database, ws: str) -> None:
    if timeline.in_tables(db.dialect):
        pytest.skip("SQLite's writer moves (the tests above)")
    run = _run_writer(db, WriterSettings(timeline_move_events=1), ["p", "p", "p"], 2)
    assert run.moves == 0
    assert _entries(db, timeline_recent) == _entries(db, timeline_table) == set()
    assert len(_of_events(db)) == 6


def test_a_failed_move_costs_ingest_nothing(db: Database, ws: str) -> None:
    """A move that fails (here: its table is gone) is logged; the commits it followed are
    answered, and later ones too."""
    _in_tables(db)
    with db.write() as conn:
        conn.exec_driver_sql("ALTER TABLE timeline RENAME TO timeline_away")
    try:
        run = _run_writer(db, WriterSettings(timeline_move_events=1), ["p", "p"], 2)
    finally:
        with db.write() as conn:
            conn.exec_driver_sql("ALTER TABLE timeline_away RENAME TO timeline")
    assert run.answers == [2, 2]
    assert run.moves == 0
    assert _entries(db, timeline_recent) == _of_events(db)
    assert len(_of_events(db)) == 4


def test_a_person_s_page_reads_only_as_far_as_the_page(db: Database) -> None:
    """SQLite reads a person's entries from both tables' keys, merged newest first, and stops
    at the page's end (``MERGE (UNION ALL)``) instead of sorting every entry of the person:
    this needs the ordering columns selected from the union."""
    if db.dialect != "sqlite":
        pytest.skip("a plan of SQLite's timeline tables")
    from trackline.events import queries

    params = {"workspace_id": WS, "user_id": "u", "limit": 50, "last_offset": 49, "kind_1": "user"}
    statement = queries._recent_statement("sqlite", ("user_id",))
    with db.read() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        values = tuple(params.get(name, 1) for name in compiled.positiontup or ())
        plan = [
            row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), values)
        ]
    assert plan.count("MERGE (UNION ALL)") == 4  # the page, its last row (time, seq), the next
    assert "COMPOUND QUERY" not in plan
