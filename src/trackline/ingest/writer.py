"""Group commit: one writer thread per process runs every write job that has accumulated in
one transaction, commits, and only then answers the waiting requests. A job that fails makes
the writer re-run the batch's jobs one by one, so one bad job never costs the others.

On PostgreSQL the ``COMMIT`` of a transaction (with the statements that go with it, see
``storage.roundtrips``) waits on a thread of its own, the committer, while the writer runs
the next transaction's statements on another connection: the writer does not sit idle while
the server flushes its WAL. One commit is in flight at a time, so transactions commit in the
order their statements ran; a batch whose ``COMMIT`` fails goes back to the front of the
queue, its jobs to be re-run one by one."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from trackline.errors import Overloaded
from trackline.settings import WriterSettings
from trackline.storage import timeline
from trackline.storage.database import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
Job = Callable[[sa.Connection], Any]


@dataclass(slots=True)
class _Pending:
    fn: Job
    weight: int
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    alone: bool = False  # re-run in a transaction of its own (its batch failed)


@dataclass(slots=True)
class _Ran:
    """A transaction whose statements have run, waiting for its ``COMMIT``."""

    transaction: contextlib.ExitStack  # closing it commits (or rolls back and raises)
    batch: list[_Pending]
    results: list[Any]
    started: float  # perf_counter() when its statements began
    ran: float  # and when they ended


class _Committer:
    """A thread that commits one transaction at a time for the writer (PostgreSQL)."""

    def __init__(self, finish: Callable[[_Ran], None]) -> None:
        self._finish = finish
        self._cond = threading.Condition()
        self._next: _Ran | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="trackline-committer", daemon=True)
        self._thread.start()

    def hand(self, ran: _Ran) -> None:
        """Commit ``ran`` once the commit in flight, if any, has ended."""
        with self._cond:
            self._cond.wait_for(self._idle)
            self._next = ran
            self._cond.notify_all()

    def wait_idle(self) -> None:
        with self._cond:
            self._cond.wait_for(self._idle)

    def _idle(self) -> bool:
        return self._next is None

    def stop(self) -> None:
        """End the thread once the commit in flight, if any, has ended."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._next is not None or self._stopping)
                ran = self._next
            if ran is None:
                return
            self._finish(ran)
            with self._cond:
                self._next = None
                self._cond.notify_all()


class Writer:
    """The process's single writer. ``submit`` from async code; ``start``/``stop`` around it."""

    def __init__(self, db: Database, settings: WriterSettings) -> None:
        self.db = db
        self.settings = settings
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_weight = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._committer: _Committer | None = None
        self.commits = 0  # transactions committed, for stats and tests
        self.jobs = 0  # jobs committed
        self.weight = 0  # events (job weights) committed
        self.run_s = 0.0  # seconds running jobs inside transactions
        self.commit_s = 0.0  # seconds committing them
        self._analyze_at = 1_000  # PostgreSQL: refresh planner statistics at 1k, 10k, 100k, ...
        self._analyzing: threading.Thread | None = None
        self._moves = timeline.in_tables(db.dialect)  # SQLite: timeline entries to move
        self._moved_at = 0  # ``weight`` when the last move of timeline entries began
        self._moving: timeline.Key | None = None  # where the move under way goes on
        self._move_due = False  # a move is under way (its next slice is due)
        self.moves = 0  # moves of timeline entries finished, for tests

    def start(self) -> None:
        # The writer releases the GIL on every database call; with the default 5 ms switch
        # interval it then waits behind the busy event loop for each one (a convoy) and a
        # commit of a few statements takes tens of ms. A short interval keeps it moving.
        sys.setswitchinterval(min(sys.getswitchinterval(), self.settings.switch_interval_s))
        _tune_gc(self.settings.gc_young_objects)
        if self.db.dialect == "postgresql" and self.settings.overlap_commits:
            self._committer = _Committer(self._finish)
        self._thread = threading.Thread(target=self._run, name="trackline-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Drain: commit everything queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._committer is not None:
                self._committer.stop()
                self._committer = None
            if self._analyzing is not None:
                self._analyzing.join()
            commits = max(self.commits, 1)
            log.info(
                "writer stopped: %d commits, %d jobs, %d events (%.1f jobs per commit;"
                " %.2f ms running and %.2f ms committing per commit)",
                self.commits,
                self.jobs,
                self.weight,
                self.jobs / commits,
                self.run_s / commits * 1000,
                self.commit_s / commits * 1000,
            )

    @property
    def queued_weight(self) -> int:
        """Events waiting for the writer (what backpressure limits)."""
        return self._queued_weight

    async def submit(self, fn: Callable[[sa.Connection], T], *, weight: int = 1) -> T:
        """Run ``fn(conn)`` in the writer's next transaction; return once it is committed.

        Waits at most ``enqueue_timeout_s`` for queue room, then raises ``Overloaded`` (503).
        """
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.settings.enqueue_timeout_s
        while (future := self._try_put(fn, weight, loop)) is None:
            if time.monotonic() >= deadline:
                raise Overloaded(
                    "the writer is saturated; retry later",
                    retry_after_s=self.settings.retry_after_s,
                )
            await asyncio.sleep(0.005)
        return await future  # type: ignore[no-any-return]

    def _try_put(
        self, fn: Job, weight: int, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[Any] | None:
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down", retry_after_s=1)
            limit = self.settings.queue_events
            if self._queue and self._queued_weight + weight > limit:
                return None
            future: asyncio.Future[Any] = loop.create_future()
            first = not self._queue
            self._queue.append(_Pending(fn, weight, future, loop))
            self._queued_weight += weight
            # Wake the writer only when it may be waiting for a first job or the batch is
            # full: waking it for every request of a gather window makes it take the GIL
            # from the event loop each time, only to wait again.
            if first or self._queued_weight >= self.settings.max_batch_events:
                self._cond.notify()
            return future

    def _take(self) -> list[_Pending]:
        with self._cond:
            # Jobs that queued while the last commit ran are taken at once: waiting for more
            # would only stall the writer, which is then the busy part. A first job after an
            # idle spell waits up to ``max_wait_ms`` for company, so a trickle of small
            # requests shares commits.
            idle = not self._queue
            while not self._queue and not self._stopping:
                self._cond.wait()
            if idle and self.settings.max_wait_ms > 0 and not self._stopping:
                self._cond.wait_for(
                    lambda: self._queued_weight >= self.settings.max_batch_events,
                    self.settings.max_wait_ms / 1000,
                )
            batch: list[_Pending] = []
            weight = 0
            while self._queue and (not batch or self._joins(batch, weight)):
                job = self._queue.popleft()
                batch.append(job)
                weight += job.weight
            self._queued_weight -= weight
            return batch

    def _joins(self, batch: list[_Pending], weight: int) -> bool:
        """Whether the next queued job joins ``batch``: not once it is full, and a job to be
        re-run alone neither joins nor is joined."""
        return (
            weight < self.settings.max_batch_events
            and not batch[0].alone
            and not self._queue[0].alone
        )

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._commit(batch)
                continue
            if self._committer is None:
                return  # stopping and drained
            self._committer.wait_idle()  # a failed commit puts its jobs back in the queue
            with self._cond:
                if not self._queue:
                    return

    def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            with contextlib.ExitStack() as transaction:
                conn = transaction.enter_context(self.db.write())
                results = _run(conn, batch)
                ran = time.perf_counter()
                if self._committer is not None:
                    # The commit goes on while the writer runs the next transaction.
                    self._committer.hand(_Ran(transaction.pop_all(), batch, results, started, ran))
                    return
        except BaseException as exc:  # noqa: BLE001 - every failure must reach its request
            self._failed(batch, exc)
            return
        self._committed(batch, results, started, ran)

    def _failed(self, batch: list[_Pending], exc: BaseException) -> None:
        if len(batch) == 1:
            _answer(batch[0], error=exc)
            return
        for job in batch:
            self._commit([job])

    def _finish(self, ran: _Ran) -> None:
        """The committer's part: commit, then answer. A batch whose ``COMMIT`` fails goes back
        to the front of the queue, each job to be re-run alone by the writer (not here: the
        writer's next transaction may hold locks those jobs wait for, and it waits for this
        thread before it commits)."""
        try:
            ran.transaction.close()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach its request
            if len(ran.batch) == 1:
                _answer(ran.batch[0], error=exc)
                return
            self._requeue(ran.batch)
            return
        self._committed(ran.batch, ran.results, ran.started, ran.ran)

    def _requeue(self, batch: list[_Pending]) -> None:
        with self._cond:
            for job in reversed(batch):
                job.alone = True
                self._queue.appendleft(job)
                self._queued_weight += job.weight
            self._cond.notify()

    def _committed(
        self, batch: list[_Pending], results: list[Any], started: float, ran: float
    ) -> None:
        self.commits += 1
        self.run_s += ran - started
        self.commit_s += time.perf_counter() - ran
        self.jobs += len(batch)
        stored = sum(job.weight for job in batch)
        self.weight += stored
        _answer_all([(job, result, None) for job, result in zip(batch, results, strict=True)])
        # After answering: the requests need not wait.
        if (
            self._moves
            and not self._move_due
            and self.weight - self._moved_at >= self.settings.timeline_move_events
        ):
            self._move_due, self._moving, self._moved_at = True, None, self.weight
        if self._move_due:
            self._move_timeline(stored)
        if self.weight >= self._analyze_at and self._analyze():
            self._analyze_at *= 10

    def _analyze(self) -> bool:
        """Refresh the planner's statistics on a thread of its own: ``ANALYZE`` of a large
        table takes a few hundred ms, which the next commit's requests need not wait for
        (PostgreSQL lets inserts go on meanwhile). False while the last one still runs."""
        if self._analyzing is not None and self._analyzing.is_alive():
            return False
        self._analyzing = threading.Thread(
            target=self.db.refresh_statistics, name="trackline-analyze", daemon=True
        )
        self._analyzing.start()
        return True

    def _move_timeline(self, stored: int) -> None:
        """Carry the next slice of recent person-timeline entries into the large table
        (SQLite), in a transaction of its own: ``timeline_move_slice`` entries more than the
        commit just stored, so a move outruns what arrives meanwhile and ends however large
        the commits are. A failure costs nothing but time: every entry is still in one of the
        two tables, and the next move (after as many events again) takes them."""
        started = time.perf_counter()
        try:
            with self.db.write() as conn:
                moved = timeline.move(
                    conn, after=self._moving, limit=self.settings.timeline_move_slice + stored
                )
        except Exception:  # an optimisation, never a failure of ingest
            log.warning("moving timeline entries failed", exc_info=True)
            self._move_due = False
            return
        self._moving = moved.last
        if moved.last is None:
            self._move_due = False
            self.moves += 1
        log.debug(
            "moved %d timeline entries in %.1f ms",
            moved.entries,
            (time.perf_counter() - started) * 1000,
        )


def _tune_gc(young: int) -> None:
    """Collect garbage less often. Ingest allocates dozens of short-lived objects per event,
    freed by reference counting, and at Python's default thresholds the collector kept
    scanning them (and the whole heap in its older generations): 22k instead of 17k events/s
    in the SQLite batch benchmark. What exists at start-up (modules, the app) is frozen out of
    the scans, once per process."""
    if young <= 0:
        return
    if gc.get_freeze_count() == 0:
        gc.freeze()
    gc.set_threshold(young, 50, 100)


def _run(conn: sa.Connection, batch: list[_Pending]) -> list[Any]:
    """Run a batch's jobs in order. Jobs with the same ``merge_key`` (and a ``run_many``) run
    together, at the place of the first of them."""
    groups: dict[Any, list[int]] = {}
    order: list[list[int]] = []
    for index, job in enumerate(batch):
        key = getattr(job.fn, "merge_key", None)
        if key is None:
            order.append([index])
        elif key in groups:
            groups[key].append(index)
        else:
            groups[key] = [index]
            order.append(groups[key])
    results: list[Any] = [None] * len(batch)
    for group in order:
        first = batch[group[0]].fn
        if len(group) == 1:
            results[group[0]] = first(conn)
            continue
        outs = type(first).run_many(conn, [batch[i].fn for i in group])  # type: ignore[attr-defined]
        for index, out in zip(group, outs, strict=True):
            results[index] = out
    return results


def _answer(job: _Pending, *, result: Any = None, error: BaseException | None = None) -> None:
    _answer_all([(job, result, error)])


_Answer = tuple[_Pending, Any, BaseException | None]  # a job, its result or its error


def _answer_all(answers: list[_Answer]) -> None:
    """Settle the jobs' futures: one wake-up per event loop, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
    for answer in answers:
        by_loop.setdefault(answer[0].loop, []).append(answer)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the requests' loop is closed
            loop.call_soon_threadsafe(_settle, items)


def _settle(answers: list[_Answer]) -> None:
    for job, result, error in answers:
        if job.future.done():  # the request went away; its work is committed all the same
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
