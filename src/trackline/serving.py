"""The server processes that ``trackline serve`` starts besides its own: the workers of
``--workers N`` and the read process of ``--read-port``.

**Workers.** With ``--workers N`` (N > 1) the ``serve`` process only supervises: it starts N
server processes, starts one again when it fails, and on SIGTERM or SIGINT stops them all, each
draining what it accepted. A worker that fails before it is ready to serve stops ``serve``
(exit code 3): it would fail the same way again.

On Linux each worker accepts on a socket of its own, bound to the same address with
``SO_REUSEPORT``, and the kernel spreads new connections over the sockets by their addresses.
On one shared socket (uvicorn's workers) whichever process wakes first accepts every connection
waiting, and a burst of new connections can all land in one process while the other idles
(docs/benchmark.md, round 13). A worker's socket listens only once the worker is ready, and
only the worker holds it, so it closes when the worker stops listening or ends: no connection
waits for a process that is starting, stopping or gone. Elsewhere the workers share one socket.

**The read process** answers only reads (GET), on a port of its own, so reads never wait
behind ingest. In a server process that ingests, a read shares one interpreter lock and the
event loop with the parsing of batches and with the writer, and waits for them at every step
(docs/benchmark.md, round 11). The read process has the same app and database but no writer,
so its reads wait for nothing but the database and the CPU. It is the same split as the
separate Track and App API hosts of the products Trackline replaces; a proxy can also send
the read paths there under one address.

The parent binds every socket before it starts a process (a taken port fails ``serve`` at
once) and stops its processes after its own server has stopped; a process ends itself if the
parent is gone."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from trackline.settings import Settings

log = logging.getLogger(__name__)

STOP_MARGIN_S = 5.0  # the parent waits this much beyond the graceful shutdown, then SIGKILL
WATCH_S = 1.0  # how often the parent checks its processes, and a process its parent
BACKOFF_S = 30.0  # the longest wait before a failed process is started again
STOPPED = frozenset({0, -signal.SIGTERM, -signal.SIGINT})  # exit codes of a stop, not a failure
STARTUP_FAILURE = 3  # serve's exit code when a worker fails before it is ready (as uvicorn's)

Bind = Callable[[], socket.socket]
Main = Callable[..., None]  # a server process's main: see ``_serve``


class ServerProcess:
    """One server process on a socket from ``bind``: ``start`` spawns it, a watcher thread
    starts it again when it fails, ``terminate`` and ``join`` (or ``stop``) end it.

    ``rebind``: each start binds a socket for the process alone (``SO_REUSEPORT``), and the
    parent closes its copy once the process has it. Otherwise the parent keeps the socket, and
    the port, for the next start. ``fatal_before_ready``: a start that fails before it is
    ready to serve is not retried but sets ``failed``."""

    def __init__(
        self,
        settings: Settings,
        options: dict[str, Any],
        bind: Bind,
        *,
        name: str,
        title: str,
        reads_only: bool = False,
        rebind: bool = False,
        fatal_before_ready: bool = False,
        main: Main | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.name = name  # for logs
        self.title = title  # the process's name
        self.reads_only = reads_only
        self._bind = bind
        self._rebind = rebind
        self._fatal_before_ready = fatal_before_ready
        self._main = main or _serve
        self.failed = threading.Event()
        self._ready = multiprocessing.get_context("spawn").Event()  # set by the process
        self._sock: socket.socket | None = None
        self._proc: BaseProcess | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._backoff: float | None = None  # the latest wait before a start again
        self._started = 0.0  # time.monotonic() of the latest start

    def start(self) -> None:
        with self._lock:
            self._proc = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name=self.name, daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self.terminate()
        self.join(_stop_deadline(self.options))

    def ended(self) -> bool:
        """Whether the process was stopped on its own (SIGTERM, SIGINT or exit code 0): it is
        not started again."""
        proc = self._proc
        return proc is not None and proc.exitcode in STOPPED

    def terminate(self) -> None:
        """Stop watching and send SIGTERM: the process drains and ends."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()

    def join(self, deadline: float) -> None:
        """Wait for the end until ``deadline`` (``time.monotonic()``), then SIGKILL."""
        with self._lock:
            proc, self._proc = self._proc, None
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if proc is None:
            return
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()

    def _spawn(self) -> BaseProcess:
        self._started = time.monotonic()
        self._ready.clear()
        sock = self._sock or self._bind()
        try:
            proc = multiprocessing.get_context("spawn").Process(
                target=self._main,
                args=(self.settings.model_dump(), self.options, sock, os.getpid()),
                kwargs={"reads_only": self.reads_only, "ready": self._ready},
                name=self.title,
            )
            proc.start()  # the child has inherited the socket when this returns
        finally:
            if self._rebind:
                sock.close()
            else:
                self._sock = sock
        return proc

    def _watch(self) -> None:
        """Start the process again when it fails while the server runs (see ``backoff``).
        An exit by SIGTERM or SIGINT is a stop, such as Ctrl+C that the whole process group
        got: it is not started again."""
        while not self._stopping.wait(WATCH_S):
            proc = self._proc
            if proc is None or proc.exitcode is None or proc.exitcode in STOPPED:
                continue
            if self._fatal_before_ready and not self._ready.is_set():
                log.error(
                    "the %s exited with code %s before it was ready", self.name, proc.exitcode
                )
                self.failed.set()
                return
            self._backoff = backoff(self._backoff, time.monotonic() - self._started)
            log.error(
                "the %s exited with code %s; starting it again in %.0f s",
                self.name,
                proc.exitcode,
                self._backoff,
            )
            if self._stopping.wait(self._backoff):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._proc = self._spawn()
                except Exception:  # e.g. out of file descriptors: try again next time
                    log.exception("could not start the %s", self.name)


def backoff(last_s: float | None, ran_s: float) -> float:
    """How long to wait before starting again a process that failed after running ``ran_s``
    seconds, when the wait before its latest start was ``last_s`` (None: there was none):
    ``WATCH_S`` at first and after a start that ran longer than ``BACKOFF_S``, otherwise twice
    ``last_s``, up to ``BACKOFF_S``."""
    if last_s is None or ran_s > BACKOFF_S:
        return WATCH_S
    return min(2 * last_s, BACKOFF_S)


def read_process(settings: Settings, options: dict[str, Any]) -> ServerProcess:
    """The read process of ``--read-port``; ``start`` binds its port."""
    assert settings.read_port is not None
    options = {**options, "host": settings.host, "port": settings.read_port}
    return ServerProcess(
        settings,
        options,
        _binder(options),
        name="read process",
        title="trackline-reads",
        reads_only=True,
    )


def run_workers(settings: Settings, options: dict[str, Any], main: Main | None = None) -> None:
    """Serve with ``settings.workers`` processes until SIGTERM or SIGINT, then stop them all;
    each drains what it accepted. Ends with ``STARTUP_FAILURE`` when a worker fails before it
    is ready, and returns when every worker was stopped on its own. ``main``: each worker's
    main function (``_serve``; tests give stand-ins)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for name in ("SIGHUP", "SIGTTIN", "SIGTTOU"):  # uvicorn's reload and resize: not here
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _unsupported)
    bind, rebind = _worker_sockets(options)
    workers = [
        ServerProcess(
            settings,
            options,
            bind,
            name=f"worker {n}",
            title=f"trackline-worker-{n}",
            rebind=rebind,
            fatal_before_ready=True,
            main=main,
        )
        for n in range(1, settings.workers + 1)
    ]
    log.info("serving with %d worker processes [%d]", len(workers), os.getpid())
    failed = False
    try:
        for worker in workers:
            worker.start()
        while not stop.wait(WATCH_S):
            failed = any(worker.failed.is_set() for worker in workers)
            if failed or all(worker.ended() for worker in workers):
                break
    finally:
        deadline = _stop_deadline(options)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(deadline)
    if failed and not stop.is_set():
        log.error("a worker could not start: stopping")
        raise SystemExit(STARTUP_FAILURE)


def _stop_deadline(options: dict[str, Any]) -> float:
    """When a process sent SIGTERM now is killed: its graceful shutdown (uvicorn's
    ``timeout_graceful_shutdown``) and ``STOP_MARGIN_S``."""
    return time.monotonic() + options["timeout_graceful_shutdown"] + STOP_MARGIN_S


def _unsupported(sig: int, _: object) -> None:
    log.warning("%s is not handled: restart serve to change its workers", signal.Signals(sig).name)


def _worker_sockets(options: dict[str, Any]) -> tuple[Bind, bool]:
    """How the workers get their sockets, and whether each has its own. A first bind without
    ``SO_REUSEPORT`` checks that the address is free: with that option alone, a second
    ``serve`` on the same port would quietly share the first one's connections."""
    first = _binder(options)()
    if not (sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")):
        return (lambda: first), False
    host, port = options["host"], first.getsockname()[1]  # the port taken for --port 0
    first.close()
    return (lambda: _reuse_port_socket(host, port)), True


def _binder(options: dict[str, Any]) -> Bind:
    """Bind with uvicorn: it logs the address, and a taken port ends ``serve`` with the error."""

    def bind() -> socket.socket:
        import uvicorn

        return uvicorn.Config(app=None, **options).bind_socket()

    return bind


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound with ``SO_REUSEPORT``; it joins the others once its worker listens."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve(
    values: dict[str, Any],
    options: dict[str, Any],
    sock: socket.socket,
    parent: int,
    *,
    reads_only: bool,
    ready: Any,
) -> None:
    """A server process's main: the app on the socket the parent bound (without a writer in
    the read process); ``ready`` (a ``multiprocessing`` event) is set once it serves."""
    import uvicorn

    from trackline.app import create_app
    from trackline.logs import configure_logging

    configure_logging()
    if reads_only:
        log.info("read process: answering reads only, on port %s", options["port"])
    # SIGTERM and SIGINT end the process with code 0: at once before uvicorn serves and after
    # (it puts these handlers back), and while it serves after its graceful shutdown.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    app = create_app(Settings(**values), migrate=False, reads_only=reads_only)
    _server(uvicorn.Config(app, **options), ready).run(sockets=[sock])


def _server(config: Any, ready: Any) -> Any:
    """uvicorn's server for a process that ``serve`` started: it sets ``ready`` once it
    serves, and it stops once however many times it is asked.

    uvicorn takes a SIGINT that comes after another stop signal as a second Ctrl-C and ends
    without its graceful shutdown, so without the app's (the writer's last commit, the
    connections closed). A worker gets exactly that when Ctrl-C reaches the whole process
    group and ``serve`` sends it SIGTERM: the two signals come in either order, or even one
    handler inside the other. Here every stop signal only asks for the graceful shutdown,
    and ``serve`` kills a process that does not end in time. The process then ends with
    exit code 0 (uvicorn would raise the signal again once it has served)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready.set()

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.should_exit = True  # one statement: a handler run inside another is alike

    return Server(config)


def _exit_cleanly(*_: object) -> None:
    sys.exit(0)


def _end_with(parent: int) -> None:
    """Stop this process (gracefully) once ``parent`` is gone, e.g. killed with SIGKILL; the
    signal is sent again every ``WATCH_S`` until the process has ended."""
    while os.getppid() == parent:
        threading.Event().wait(WATCH_S)
    while True:
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(WATCH_S)
