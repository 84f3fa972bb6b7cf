"""Ingestion benchmark: a real ``trackline serve`` driven over HTTP, next to the raw database
ceiling measured in the same run.

    .venv/bin/python bench/ingest.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/ingest.py --databases sqlite --read-events 0

For each database it reports events/s for 100-event batches and for single events (at
several numbers of requests in flight, next to a bare FastAPI endpoint at the same ones), p50/p99
latency, server CPU per event, p99 at 80 % of the batch peak, read latency (a person's timeline
and the recent-events page) with ``--read-events`` stored events while ingest goes on (on the
read port of ``serve --read-port`` and on the main port), and the
raw ceiling: the same rows inserted straight into the same schema and indexes in 10,000-row
transactions (``executemany`` on SQLite, ``COPY`` on PostgreSQL); on SQLite their
person-timeline entries are added by the schema's trigger and moved into the large timeline
table as often as a server moves them. Ratios are what to compare; single numbers depend on
the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
import loadgen
import targets

from trackline.ingest import store
from trackline.ingest.model import CanonicalEvent
from trackline.settings import WriterSettings
from trackline.storage import timeline
from trackline.storage.database import Database

ROOT = Path(__file__).resolve().parent.parent
NAMES = [
    "page_viewed",
    "button_clicked",
    "purchase_completed",
    "cart_updated",
    "signed_up",
    "feature_used",
    "search_performed",
    "logged_in",
    "file_uploaded",
    "email_opened",
]
# Event columns in the order of the server's rows (``raw_rows`` builds them the same way).
COLUMNS = store.COLUMNS
TICKS = os.sysconf("SC_CLK_TCK")
READS = 1500  # timed reads of each kind (p99: the 15th slowest)
PACE_S = 0.1  # a paced connection sends at most one request per this many seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- events --------------------------------------------------------------------------------------


def event(run: str, n: int, users: int) -> dict[str, object]:
    """A realistic event with a unique message id."""
    rnd = random.Random(n)
    return {
        "external_id": f"user_{rnd.randrange(users)}",
        "event": NAMES[n % len(NAMES)],
        "message_id": f"{run}-{n}",
        "parameters": {
            "order_id": f"order_{n}",
            "amount": round(rnd.uniform(1, 500), 2),
            "currency": "USD",
            "quantity": rnd.randrange(1, 9),
            "plan": rnd.choice(["free", "pro", "team"]),
            "tags": ["a", "b"],
            "referrer": "/home",
        },
        "context": {"ip": "203.0.113.7", "library": {"name": "bench", "version": "1"}},
    }


def batch_bodies(run: str, requests: int, size: int, users: int) -> list[bytes]:
    return [
        orjson.dumps({"events": [event(run, r * size + i, users) for i in range(size)]})
        for r in range(requests)
    ]


def single_bodies(run: str, requests: int, users: int) -> list[bytes]:
    return [orjson.dumps(event(run, n, users)) for n in range(requests)]


# --- a server ------------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    key: str | None
    log: Path
    read_port: int | None = None  # ``serve --read-port``: the read process's port

    def cpu_seconds(self) -> float:
        """CPU time of every process of the server (its process group)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == self.proc.pid:  # pgid
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / TICKS

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start(
    command: list[str], workdir: Path, port: int, env: dict[str, str] | None = None
) -> Server:
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                found = re.search(r"key: (tl_\S+)", log.read_text())
                return Server(proc, port, found.group(1) if found else None, log)
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def trackline(url: str, workdir: Path, workers: int) -> Server:
    """``trackline serve`` with ``workers`` processes and a read process on a port of its own."""
    port, read_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "trackline",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--read-port",
        str(read_port),
        "--database-url",
        url,
    ]
    server = start(command, workdir, port)
    server.read_port = read_port
    return server


# --- databases -----------------------------------------------------------------------------------


def fresh(kind: str, workdir: Path, admin_url: str, label: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / (label + '.db')}"
    name = f"trackline_bench_{label}_{uuid.uuid4().hex[:6]}"
    admin = Database(admin_url)
    with admin.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return re.sub(r"/[^/]*$", f"/{name}", admin_url)


def drop(kind: str, url: str, admin_url: str) -> None:
    if kind == "postgresql":
        name = url.rsplit("/", 1)[1]
        admin = Database(admin_url)
        with admin.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def raw_rows(run: str, count: int, users: int, persons: list[str], ws: str) -> list[tuple]:
    """Event rows as the server stores them (ids, person ids, JSON text, ms times)."""
    now = int(time.time() * 1000)
    rows = []
    for n in range(count):
        e = event(run, n, users)
        stored = CanonicalEvent(
            event=str(e["event"]),
            external_id=str(e["external_id"]),
            device_id=None,
            parameters=e["parameters"],  # type: ignore[arg-type]
            timestamp=now - n,
            message_id=str(e["message_id"]),
            context=e["context"],  # type: ignore[arg-type]
        )
        rows.append(
            store.event_row(f"evt_{uuid.uuid4().hex}", ws, persons[n % len(persons)], stored, now)
        )
    return rows


def load_rows(db: Database, rows: list[tuple], chunk: int, move_every: int) -> None:
    """Insert ``rows`` straight into ``events`` in ``chunk``-row transactions: ``executemany``
    on SQLite, ``COPY`` on PostgreSQL (the fastest plain way each database offers).
    SQLite's trigger adds each row's person-timeline entry, and the entries are moved into
    the large timeline table whenever ``move_every`` rows have gone in since the last move,
    in slices as a server process moves them (``storage/timeline``)."""
    raw = db.write_engine.raw_connection()
    unmoved = 0
    try:
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            _insert(db.dialect, raw, part)
            unmoved += len(part)
            if unmoved >= move_every and timeline.in_tables(db.dialect):
                move_all(db, WriterSettings().timeline_move_slice)
                unmoved = 0
    finally:
        raw.close()


def move_all(db: Database, limit: int) -> None:
    """One move of the recent timeline entries, ``limit`` at a time, a transaction each (a
    server moves a slice after each commit; the ceiling moves them back to back)."""
    after = None
    while True:
        with db.write() as conn:
            moved = timeline.move(conn, after=after, limit=limit)
        if moved.last is None:
            return
        after = moved.last


def _insert(dialect: str, raw: Any, rows: list[tuple]) -> None:
    """One transaction of event rows on a DBAPI connection."""
    if dialect == "sqlite":
        sql = (
            f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
        )
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(sql, rows)
        raw.execute("COMMIT")
        return
    driver = raw.driver_connection
    with (
        driver.cursor() as cur,
        cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    driver.commit()


def insert_raw(url: str, rows: list[tuple], chunk: int = 10_000) -> float:
    """The raw ceiling: ``rows`` into a fresh, migrated database, with the timeline moves of
    a server at its default setting; rows/s."""
    db = Database(url)
    db.migrate()
    started = time.perf_counter()
    try:
        load_rows(db, rows, chunk, WriterSettings().timeline_move_events)
    finally:
        db.dispose()
    return len(rows) / (time.perf_counter() - started)


def wal_mark(kind: str, admin_url: str) -> int | None:
    """PostgreSQL: the server's WAL position in bytes (None on SQLite). Server-wide: during a
    phase only the benchmark writes."""
    if kind != "postgresql":
        return None
    admin = Database(admin_url)
    try:
        with admin.read() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
                ).scalar_one()
            )
    finally:
        admin.dispose()


def wal_since(mark: int | None, admin_url: str, events: int) -> dict[str, float]:
    """PostgreSQL: WAL bytes per event written since ``mark``: what the server's statements
    around the rows (identities, catalog, commits) add to what the rows themselves log."""
    if mark is None:
        return {}
    wal = wal_mark("postgresql", admin_url)
    assert wal is not None
    return {"wal_bytes_per_event": round((wal - mark) / max(events, 1))}


# --- phases --------------------------------------------------------------------------------------


def paced_connections(rate_per_s: float, least: int) -> int:
    """Connections for an open-loop load of ``rate_per_s`` requests/s: each sends at most one
    request per ``PACE_S``, so requests still leave on time when a response takes several times
    the mean gap between requests. With too few, every connection waits for its last response
    and the load falls behind the rate (earlier rounds offered 80 % of peak over 8 connections
    and got 56-70 % of peak)."""
    return max(least, math.ceil(rate_per_s * PACE_S))


def drive(
    server: Server, path: str, bodies: list[bytes], connections: int, rate: float | None = None
) -> tuple[loadgen.Result, float]:
    payloads = [
        loadgen.request_bytes("127.0.0.1", server.port, path, b, server.key) for b in bodies
    ]
    cpu = server.cpu_seconds()
    result = asyncio.run(
        loadgen.run("127.0.0.1", server.port, payloads, connections=connections, rate_per_s=rate)
    )
    return result, server.cpu_seconds() - cpu


def stored(result: loadgen.Result, events_per_request: int) -> int:
    return (result.requests - result.failures) * events_per_request


def summary(result: loadgen.Result, cpu: float, events_per_request: int) -> dict[str, float]:
    events = stored(result, events_per_request)
    return {
        "requests": result.requests,
        "failures": result.failures,
        "events_per_s": round(events / result.seconds),
        "p50_ms": round(result.percentile(50), 2),
        "p99_ms": round(result.percentile(99), 2),
        "cpu_us_per_event": round(cpu / max(events, 1) * 1e6, 1),
    }


def singles(server: Server, args: argparse.Namespace, label: str) -> dict[str, object]:
    """Single-event requests at each of ``args.single_connections`` (requests in flight), and
    the peak. A server that answers only once an event is durable is bound by that commit's
    latency at low concurrency (each connection waits one or two commit cycles per request)
    and by its CPU at high concurrency; a bare endpoint is bound by its CPU at every level.
    Their capacities compare at the peaks; every level is reported."""
    levels: dict[str, dict[str, float]] = {}
    for connections in args.single_connections:
        bodies = single_bodies(f"{label}{connections}-", args.singles, args.users)
        result, cpu = drive(server, "/api/v1/track", bodies, connections)
        levels[str(connections)] = summary(result, cpu, 1)
    peak = max(levels, key=lambda c: levels[c]["events_per_s"])
    return {"by_connections": levels, "peak": {"connections": int(peak), **levels[peak]}}


def settle(db: Database) -> None:
    """After a bulk load, bring the database to the state of one that grew to this size over
    time. On PostgreSQL, ``VACUUM ANALYZE`` the events table, as autovacuum would have done:
    without it every index-only scan (the timeline's ``total``) visits the heap for each row,
    because the visibility map of freshly loaded pages is empty. On both, write the load's
    pages back to the database file (``CHECKPOINT``, a truncating WAL checkpoint), which would
    otherwise happen while reads are timed: a gigabyte of them at once."""
    if db.dialect == "postgresql":
        with db.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE events")
            conn.exec_driver_sql("CHECKPOINT")
    else:
        raw = db.write_engine.raw_connection()  # outside a transaction, which BEGIN would open
        try:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    os.sync()


def reads(server: Server, url: str, stored: int, users: int, batch_rate: float) -> dict[str, Any]:
    """Load ``stored`` events straight into the database, then time the timeline and the
    recent-events page, one request at a time on a keep-alive connection of the same raw client
    as the load, while ingest goes on at ``batch_rate`` requests/s (open-loop; the rate reached
    while the reads were timed is reported next to them): first on the read process's port,
    then on the main port, where the same reads share their process with ingest."""
    headers = {"Authorization": f"Bearer {server.key}"}
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
        ws = api.get("/api/v1/events", params={"limit": 1}).json()["events"][0]["workspace_id"]
        persons = [
            api.get("/api/v1/people", params={"external_id": f"user_{u}"}).json()["people"][0]["id"]
            for u in range(min(users, 200))
        ]
    db = Database(url)
    rows = raw_rows("stored", stored, users, persons, ws)
    try:
        load_rows(db, rows, 50_000, 50_000)
        settle(db)
    finally:
        db.dispose()
    del rows

    load = loadgen.Result()

    async def background() -> None:
        bodies = batch_bodies("bg", int(batch_rate * 60), 100, users)
        payloads = [
            loadgen.request_bytes("127.0.0.1", server.port, "/api/v1/track/batch", b, server.key)
            for b in bodies
        ]
        await loadgen.run(
            "127.0.0.1",
            server.port,
            payloads,
            connections=paced_connections(batch_rate, 4),
            rate_per_s=batch_rate,
            result=load,
        )

    rnd = random.Random(1)
    timeline = [f"/api/v1/people/{rnd.choice(persons)}/events?limit=50" for _ in range(READS)]
    recent = ["/api/v1/events?limit=50"] * (READS // 2) + [
        f"/api/v1/events?user_id=user_{rnd.randrange(200)}&limit=50" for _ in range(READS // 2)
    ]
    ports = {"read_port": server.read_port, "main_port": server.port}

    async def measure(timer: ProcessPoolExecutor) -> tuple[dict[str, dict[str, float]], float]:
        """The timed reads on each port, and the ingest events/s meanwhile."""
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(background())
        await asyncio.sleep(1)
        started, loaded = time.perf_counter(), load.requests
        found: dict[str, dict[str, float]] = {}
        for label, port in ports.items():
            assert port is not None
            pages = {
                page: loadgen.Result(
                    latencies_ms=await loop.run_in_executor(
                        timer, time_reads, port, server.key, paths
                    )
                )
                for page, paths in (("timeline", timeline), ("recent", recent))
            }
            found[label] = {
                f"{page}_p{p}_ms": round(result.percentile(p), 2)
                for page, result in pages.items()
                for p in (50, 99)
            }
        ingest_rate = (load.requests - loaded) * 100 / (time.perf_counter() - started)
        task.cancel()
        return found, ingest_rate

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as timer:
        timer.submit(time_reads, server.port, server.key, []).result()  # started and imported
        found, ingest_rate = asyncio.run(measure(timer))
    return {
        "stored_events": stored,
        "reads_each": READS,
        "ingest_offered_events_per_s": round(batch_rate * 100),
        "ingest_events_per_s": round(ingest_rate),
        **found,
    }


def time_reads(port: int, key: str | None, paths: list[str]) -> list[float]:
    """GET ``paths`` one after another on one keep-alive connection; each one's latency (ms).
    Run in a process of its own: in the process of the load, a response waits for the load's
    event loop before its time is taken, which added up to 5 ms to a read's p99."""
    payloads = [loadgen.get_bytes("127.0.0.1", port, path, key) for path in paths]
    result = asyncio.run(loadgen.sequential("127.0.0.1", port, payloads))
    assert not result.failures, result.statuses
    return result.latencies_ms


def quiet() -> None:
    """Let the previous phase's writes reach the disk (the kernel's writeback of a gigabyte of
    SQLite files and WAL otherwise runs during the next measurement)."""
    os.sync()
    time.sleep(2)


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    quiet()
    workers = args.pg_workers if kind == "postgresql" else 1
    url = fresh(kind, workdir, args.postgres_url, "server")
    server = trackline(url, workdir, workers)
    out: dict[str, object] = {"database": kind, "server_processes": workers}
    try:
        drive(server, "/api/v1/track/batch", batch_bodies("warm", 30, 100, args.users), 8)
        mark = wal_mark(kind, args.postgres_url)
        result, cpu = drive(
            server,
            "/api/v1/track/batch",
            batch_bodies("b", args.batches, 100, args.users),
            args.connections,
        )
        out["batch_100"] = summary(result, cpu, 100)
        out["batch_100"].update(wal_since(mark, args.postgres_url, stored(result, 100)))
        out["single"] = singles(server, args, "s")
        peak_rps = out["batch_100"]["events_per_s"] / 100  # type: ignore[index]
        rate = 0.8 * peak_rps
        count = max(50, int(rate * 10))
        connections = paced_connections(rate, args.paced_connections)
        mark = wal_mark(kind, args.postgres_url)
        result, cpu = drive(
            server,
            "/api/v1/track/batch",
            batch_bodies("p80", count, 100, args.users),
            connections,
            rate,
        )
        out["batch_100_at_80pct"] = {
            "offered_events_per_s": round(rate * 100),
            "connections": connections,
            **summary(result, cpu, 100),
            **wal_since(mark, args.postgres_url, stored(result, 100)),
        }
        if args.read_events:
            out["reads"] = reads(server, url, args.read_events, args.users, 0.5 * peak_rps)
    finally:
        server.stop()
        drop(kind, url, args.postgres_url)
    ceiling_url = fresh(kind, workdir, args.postgres_url, "ceiling")
    quiet()
    try:
        persons = [str(uuid.uuid4()) for _ in range(args.users)]
        rows = raw_rows("c", args.batches * 100, args.users, persons, "ws_bench")
        mark = wal_mark(kind, args.postgres_url)
        out["raw_ceiling_rows_per_s"] = round(insert_raw(ceiling_url, rows))
        if mark is not None:
            out["raw_ceiling_wal"] = wal_since(mark, args.postgres_url, len(rows))
    finally:
        drop(kind, ceiling_url, args.postgres_url)
    out["ratio_batch_to_ceiling"] = round(
        out["batch_100"]["events_per_s"] / out["raw_ceiling_rows_per_s"],
        3,  # type: ignore[index]
    )
    return out


def bench_bare(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    port = free_port()
    server = start(
        [sys.executable, str(Path(__file__).parent / "bare_app.py"), str(port)], workdir, port
    )
    try:
        return singles(server, args, "bare")
    finally:
        server.stop()


def compare_singles(server: dict[str, object], bare: dict[str, object]) -> dict[str, object]:
    """Single events over the bare endpoint: peak to peak, and at each level."""
    ours, theirs = server["by_connections"], bare["by_connections"]
    return {
        "peak": round(server["peak"]["events_per_s"] / bare["peak"]["events_per_s"], 3),  # type: ignore[index]
        "by_connections": {
            c: round(ours[c]["events_per_s"] / theirs[c]["events_per_s"], 3)  # type: ignore[index]
            for c in ours  # type: ignore[union-attr]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TRACKLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=5000,
        help="100-event requests of the batch phase, whose rate is the peak that the 80 %% "
        "phase and the reads' load are paced from: enough for about 10 s, so that the peak is "
        "a rate the server keeps up rather than a burst",
    )
    parser.add_argument(
        "--singles", type=int, default=20_000, help="single-event requests per connection level"
    )
    parser.add_argument("--connections", type=int, default=32, help="connections for batches")
    parser.add_argument(
        "--single-connections",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[32, 128, 256],
        help="connections (requests in flight) for single events, one phase each",
    )
    parser.add_argument(
        "--paced-connections",
        type=int,
        default=8,
        help="fewest connections for the 80 %%-of-peak phase; more when the rate needs them "
        "(one request per connection per 100 ms at most), so that the phase offers its whole "
        "rate, open-loop",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument(
        "--read-events",
        type=int,
        default=1_000_000,
        help="events stored before timing reads (0: skip the read phase)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="trackline-bench-"))
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count()}}
    try:
        results["bare_fastapi_single"] = bench_bare(args, workdir)
        for kind in args.databases.split(","):
            results[kind] = bench_database(kind, args, workdir)
            results[kind]["ratio_single_to_bare"] = compare_singles(  # type: ignore[index]
                results[kind]["single"],  # type: ignore[index]
                results["bare_fastapi_single"],  # type: ignore[arg-type]
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    found = targets.verdicts(results, args.databases.split(","))
    results["targets"] = targets.as_json(found)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(targets.render(found))


if __name__ == "__main__":
    main()
