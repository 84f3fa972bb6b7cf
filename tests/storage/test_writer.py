"""The group-commit writer on a real database: jobs share transactions, a failing job costs no
other job, ``stop`` drains, and a full queue answers 503 (also through the API)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from trackline.app import create_app
from trackline.errors import Overloaded
from trackline.ingest.writer import Writer
from trackline.settings import Settings, WriterSettings
from trackline.storage import roundtrips
from trackline.storage.database import Database
from trackline.storage.schema import workspaces
from trackline.workspaces import store
from trackline.workspaces.store import Workspace

T = TypeVar("T")
WAIT_S = 10.0  # the most a test waits for the writer thread to reach a point


class Gate:
    """A job that holds the writer until ``open``: ``started`` is set once it runs."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def job(self, conn: sa.Connection) -> str:
        self.started.set()
        assert self.opened.wait(WAIT_S), "the gate was never opened"
        return "gate"

    def open(self) -> None:
        self.opened.set()


@dataclass
class Harness:
    writer: Writer
    gate: Gate
    db: Database

    async def close_gate(self) -> asyncio.Task[Any]:
        """Submit the gate job and wait until the writer thread runs it."""
        task = asyncio.create_task(self.writer.submit(self.gate.job))
        started = await asyncio.to_thread(self.gate.started.wait, WAIT_S)
        assert started, "the writer never ran the gate job"
        return task

    async def behind_gate(self, jobs: list[Callable[[sa.Connection], Any]]) -> list[Any]:
        """Queue ``jobs`` while the gate job holds the writer (so they share a batch), open
        the gate, and return each job's result or error."""
        gate = await self.close_gate()
        tasks = [asyncio.create_task(self.writer.submit(job)) for job in jobs]
        await asyncio.sleep(0)
        self.gate.open()
        await gate
        return await asyncio.gather(*tasks, return_exceptions=True)

    def names(self) -> list[str]:
        with self.db.read() as conn:
            return sorted(conn.execute(sa.select(workspaces.c.name)).scalars())


def _make(db: Database, settings: WriterSettings | None = None) -> Harness:
    writer = Writer(db, settings or WriterSettings())
    writer.start()
    return Harness(writer, Gate(), db)


@pytest.fixture
def harness(db: Database) -> Iterator[Harness]:
    made = _make(db)
    yield made
    made.gate.open()
    made.writer.stop()


def _insert(name: str) -> Callable[[sa.Connection], str]:
    def job(conn: sa.Connection) -> str:
        store.insert_workspace(conn, ws=Workspace(f"ws_{name}", name, 1))
        return name

    return job


def _run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro())


def test_concurrent_jobs_share_transactions(harness: Harness) -> None:
    jobs = 50

    async def scenario() -> list[str]:
        gate = await harness.close_gate()  # the jobs pile up behind it
        tasks = [asyncio.create_task(harness.writer.submit(_insert(f"w{n}"))) for n in range(jobs)]
        await asyncio.sleep(0)  # each task queues its job before it first waits
        assert harness.writer.queued_weight == jobs
        harness.gate.open()
        await gate
        return await asyncio.gather(*tasks)

    results = _run(scenario)

    assert results == [f"w{n}" for n in range(jobs)]
    assert harness.writer.commits < jobs
    assert len(harness.names()) == jobs


def _raises_after_insert(conn: sa.Connection) -> str:
    _insert("doomed")(conn)
    raise ValueError("boom")


@dataclass(frozen=True)
class Failing:
    name: str
    job: Callable[[sa.Connection], Any]
    error: type[BaseException]


FAILING = [
    Failing("exception after a write", _raises_after_insert, ValueError),
    Failing("database error", _insert("w0"), sa.exc.IntegrityError),  # w0 is queued first
]


@pytest.mark.parametrize("case", FAILING, ids=[c.name for c in FAILING])
def test_a_failing_job_costs_no_other_job_of_its_batch(harness: Harness, case: Failing) -> None:
    jobs = [_insert("w0"), _insert("w1"), case.job, _insert("w2")]
    results = _run(lambda: harness.behind_gate(jobs))

    assert results[:2] == ["w0", "w1"]
    assert isinstance(results[2], case.error)
    assert results[3] == "w2"
    assert harness.names() == ["w0", "w1", "w2"]  # nothing of the failed job is kept


async def _stopping(writer: Writer) -> None:
    # No public signal says "stop() has begun"; reading the flag keeps the test deterministic.
    while not writer._stopping:
        await asyncio.sleep(0.001)


def test_stop_drains_queued_jobs(harness: Harness) -> None:
    async def scenario() -> list[str]:
        gate = await harness.close_gate()
        tasks = [asyncio.create_task(harness.writer.submit(_insert(f"w{n}"))) for n in range(10)]
        await asyncio.sleep(0)
        stopping = asyncio.create_task(asyncio.to_thread(harness.writer.stop))
        await asyncio.wait_for(_stopping(harness.writer), WAIT_S)  # the jobs are still queued
        assert harness.writer.queued_weight == 10
        harness.gate.open()
        await gate
        await stopping
        with pytest.raises(Overloaded):  # a stopped writer takes no new work
            await harness.writer.submit(_insert("late"))
        return await asyncio.gather(*tasks)

    results = _run(scenario)

    assert results == [f"w{n}" for n in range(10)]
    assert harness.names() == sorted(f"w{n}" for n in range(10))


def test_jobs_queued_during_a_commit_do_not_wait_for_the_gather_window(db: Database) -> None:
    """The gather window is for a first job after an idle spell; jobs that queued while the
    writer was busy are committed as soon as it is free (a window of a minute would show)."""
    settings = WriterSettings(max_wait_ms=60_000)
    made = _make(db, settings)

    async def scenario() -> list[str]:
        # The gate fills a batch on its own, so it does not wait out the window either.
        gate = asyncio.create_task(
            made.writer.submit(made.gate.job, weight=settings.max_batch_events)
        )
        assert await asyncio.to_thread(made.gate.started.wait, WAIT_S)
        tasks = [asyncio.create_task(made.writer.submit(_insert(f"w{n}"))) for n in range(5)]
        await asyncio.sleep(0)
        made.gate.open()
        await gate
        return await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)

    try:
        assert _run(scenario) == [f"w{n}" for n in range(5)]
    finally:
        made.gate.open()
        made.writer.stop()


def test_a_full_queue_answers_overloaded(db: Database) -> None:
    harness = _make(db, WriterSettings(queue_events=1, enqueue_timeout_s=0.05))

    async def scenario() -> str:
        gate = await harness.close_gate()
        queued = asyncio.create_task(harness.writer.submit(_insert("queued")))
        await asyncio.sleep(0)
        assert harness.writer.queued_weight == 1
        with pytest.raises(Overloaded) as refused:
            await harness.writer.submit(_insert("refused"))
        assert (refused.value.status, refused.value.code) == (503, "overloaded")
        assert refused.value.headers() == {"Retry-After": "1"}
        harness.gate.open()
        await gate
        await queued
        return await harness.writer.submit(_insert("later"))

    try:
        assert _run(scenario) == "later"
    finally:
        harness.gate.open()
        harness.writer.stop()
    assert harness.names() == ["later", "queued"]


@dataclass
class Blocked:
    """A TestClient app whose writer has a one-event queue, and a gate to saturate it."""

    client: TestClient
    gate: Gate
    tasks: list[asyncio.Task[Any]]

    def saturate(self) -> None:
        """From the app's own event loop: the gate job running, one job queued behind it."""
        writer: Writer = self.client.app.state.services.writer  # type: ignore[attr-defined]

        async def fill() -> None:
            self.tasks.append(asyncio.create_task(writer.submit(self.gate.job)))
            assert await asyncio.to_thread(self.gate.started.wait, WAIT_S)
            self.tasks.append(asyncio.create_task(writer.submit(lambda conn: None)))
            await asyncio.sleep(0)
            assert writer.queued_weight == 1

        self.portal().call(fill)

    def release(self) -> None:
        self.gate.open()
        self.portal().call(_settle, self.tasks)

    def portal(self) -> BlockingPortal:
        assert self.client.portal is not None
        return self.client.portal


async def _settle(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def blocked(database_url: str) -> Iterator[Blocked]:
    settings = Settings(
        database_url=database_url,
        key_cache_s=0,
        writer=WriterSettings(queue_events=1, enqueue_timeout_s=0.05),
    )
    with TestClient(create_app(settings, migrate=False)) as client:
        made = Blocked(client, Gate(), [])
        try:
            yield made
        finally:
            made.release()  # the app's shutdown drains the writer: it must not stay blocked


def test_api_answers_503_while_the_writer_is_saturated(blocked: Blocked, tenant: Tenant) -> None:
    event = {"external_id": "u1", "event": "ping"}
    blocked.saturate()

    refused = blocked.client.post("/api/v1/track", headers=tenant.write, json=event)
    blocked.release()
    accepted = blocked.client.post("/api/v1/track", headers=tenant.write, json=event)

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("young", [0, 12_345])
def test_the_writer_sets_the_collector_threshold_it_is_given(db: Database, young: int) -> None:
    before = gc.get_threshold()
    writer = Writer(db, WriterSettings(gc_young_objects=young))
    try:
        writer.start()
        expected = before if young == 0 else (young, 50, 100)
        assert gc.get_threshold() == expected
        assert young == 0 or gc.get_freeze_count() > 0
    finally:
        writer.stop()
        gc.set_threshold(*before)


# --- PostgreSQL: a commit in flight while the next transaction runs ---------------------------

LOCK = 4242  # an advisory lock the tests hold to keep a COMMIT's round trip waiting


def _postgresql_only(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite commits where it runs: one writer at a time")


def _waits_at_commit(name: str) -> Callable[[sa.Connection], str]:
    """Insert a workspace; the transaction's COMMIT waits for ``LOCK`` (the lock goes in the
    COMMIT's round trip, as every statement queued with ``soon`` does)."""

    def job(conn: sa.Connection) -> str:
        _insert(name)(conn)
        roundtrips.soon(conn, ("SELECT pg_advisory_xact_lock($1)", (LOCK,)))
        return name

    return job


def _fails_at_commit(conn: sa.Connection) -> str:
    _insert("doomed")(conn)
    roundtrips.soon(conn, ("SELECT 1 / 0", ()))
    return "doomed"


class Lock:
    """``LOCK``, held by a connection of the test's own until ``release``."""

    def __init__(self, db: Database) -> None:
        self._db = Database(db.url.render_as_string(hide_password=False))
        self._conn = self._db.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn.exec_driver_sql(f"SELECT pg_advisory_lock({LOCK})")
        self._held = True

    def someone_waits(self) -> None:
        """Return once a transaction waits for the lock."""
        waiting = (
            "SELECT count(*) FROM pg_locks"
            f" WHERE locktype = 'advisory' AND NOT granted AND objid = {LOCK}"
        )
        deadline = time.monotonic() + WAIT_S
        while self._conn.exec_driver_sql(waiting).scalar_one() == 0:
            assert time.monotonic() < deadline, "no transaction waits for the lock"
            time.sleep(0.01)

    def release(self) -> None:
        if self._held:
            self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK})")
            self._held = False

    def close(self) -> None:
        self.release()
        self._conn.close()
        self._db.dispose()


@pytest.fixture
def lock(db: Database) -> Iterator[Lock]:
    _postgresql_only(db)
    held = Lock(db)
    yield held
    held.close()


def test_postgresql_runs_the_next_transaction_while_a_commit_waits(
    harness: Harness, lock: Lock
) -> None:
    ran = threading.Event()

    def second(conn: sa.Connection) -> str:
        _insert("second")(conn)
        ran.set()
        return "second"

    async def scenario() -> list[str]:
        done: list[str] = []
        first = asyncio.create_task(harness.writer.submit(_waits_at_commit("first")))
        first.add_done_callback(lambda _: done.append("first"))
        await asyncio.to_thread(lock.someone_waits)  # the first transaction's COMMIT waits
        later = asyncio.create_task(harness.writer.submit(second))
        later.add_done_callback(lambda _: done.append("second"))
        assert await asyncio.to_thread(ran.wait, WAIT_S), "the next transaction never ran"
        await asyncio.sleep(0.05)
        assert not first.done() and not later.done()  # neither is committed yet
        await asyncio.to_thread(lock.release)
        assert await asyncio.gather(first, later) == ["first", "second"]
        return done

    assert _run(scenario) == ["first", "second"]  # committed and answered in that order
    assert harness.names() == ["first", "second"]
    assert harness.writer.commits == 2


def test_postgresql_reruns_alone_the_jobs_of_a_batch_whose_commit_fails(
    harness: Harness,
) -> None:
    _postgresql_only(harness.db)

    results = _run(lambda: harness.behind_gate([_insert("w0"), _fails_at_commit, _insert("w1")]))

    assert results[0] == "w0" and results[2] == "w1"
    assert isinstance(results[1], sa.exc.DataError)  # division by zero, at its own COMMIT
    assert harness.names() == ["w0", "w1"]
    assert harness.writer.jobs == 3  # the gate and the two good jobs, each committed once


def test_postgresql_stop_drains_a_commit_in_flight_and_the_jobs_it_puts_back(
    harness: Harness, lock: Lock
) -> None:
    async def scenario() -> list[Any]:
        first = asyncio.create_task(harness.writer.submit(_waits_at_commit("first")))
        await asyncio.to_thread(lock.someone_waits)
        jobs = [_insert("w0"), _fails_at_commit, _insert("w1")]
        tasks = [asyncio.create_task(harness.writer.submit(job)) for job in jobs]
        await asyncio.sleep(0)
        stopping = asyncio.create_task(asyncio.to_thread(harness.writer.stop))
        await asyncio.wait_for(_stopping(harness.writer), WAIT_S)
        await asyncio.to_thread(lock.release)
        await stopping
        return await asyncio.gather(first, *tasks, return_exceptions=True)

    results = _run(scenario)

    assert results[0] == "first" and results[1] == "w0" and results[3] == "w1"
    assert isinstance(results[2], sa.exc.DataError)
    assert harness.names() == ["first", "w0", "w1"]
