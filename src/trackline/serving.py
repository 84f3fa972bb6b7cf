"""The read process of ``trackline serve --read-port``: one more server process that answers
only reads (GET), on a port of its own, so reads never wait behind ingest.

In a server process that ingests, a read shares one interpreter lock and the event loop with
the parsing of batches and with the writer, and waits for them at every step
(docs/benchmark.md, round 11). The read process has the same app and database but no writer,
so its reads wait for nothing but the database and the CPU. It is the same split as the
separate Track and App API hosts of the products Trackline replaces; a proxy can also send
the read paths there under one address.

The parent binds the read socket before it starts the process (a taken port fails ``serve``
at once), starts the process again if it dies, and stops it after its own server has
stopped. The read process ends itself if the parent is gone."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from typing import Any

from trackline.settings import Settings

log = logging.getLogger(__name__)

STOP_MARGIN_S = 5.0  # the parent waits this much beyond the graceful shutdown, then SIGKILL
WATCH_S = 1.0  # how often the parent checks the read process, and the read process its parent
BACKOFF_S = 30.0  # the longest wait before a failed read process is started again
STOPPED = frozenset({0, -signal.SIGTERM, -signal.SIGINT})  # exit codes of a stop, not a failure


class ReadProcess:
    """The read process: ``start`` binds the port and spawns it, ``stop`` ends it."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        assert settings.read_port is not None
        self.settings = settings
        self.options = {**options, "host": settings.host, "port": settings.read_port}
        self._sock: socket.socket | None = None
        self._proc: BaseProcess | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._backoff = WATCH_S

    def start(self) -> None:
        import uvicorn

        self._sock = uvicorn.Config(app=None, **self.options).bind_socket()
        with self._lock:
            self._proc = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="trackline-reads", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the read process: SIGTERM, then SIGKILL if it outlasts its graceful shutdown
        (uvicorn's ``timeout_graceful_shutdown``) by ``STOP_MARGIN_S``."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        with self._lock:
            proc, self._proc = self._proc, None
        if self._sock is not None:
            self._sock.close()
        if proc is None:
            return
        if proc.is_alive():
            proc.terminate()
        proc.join(self.options["timeout_graceful_shutdown"] + STOP_MARGIN_S)
        if proc.is_alive():
            proc.kill()
            proc.join()

    def _spawn(self) -> BaseProcess:
        proc = multiprocessing.get_context("spawn").Process(
            target=_serve_reads,
            args=(self.settings.model_dump(), self.options, self._sock, os.getpid()),
            name="trackline-reads",
        )
        proc.start()
        return proc

    def _watch(self) -> None:
        """Start the read process again when it fails while the server runs, waiting twice
        as long after each failure (up to ``BACKOFF_S``). An exit by SIGTERM or SIGINT is a
        stop that the whole process group got, such as Ctrl+C: the server is stopping too."""
        while not self._stopping.wait(WATCH_S):
            proc = self._proc
            if proc is None or proc.exitcode is None or proc.exitcode in STOPPED:
                continue
            log.error(
                "the read process exited with code %s; starting it again in %.0f s",
                proc.exitcode,
                self._backoff,
            )
            if self._stopping.wait(self._backoff):
                return
            self._backoff = min(2 * self._backoff, BACKOFF_S)
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._proc = self._spawn()
                except Exception:  # e.g. out of file descriptors: try again next time
                    log.exception("could not start the read process")


def _serve_reads(
    values: dict[str, Any], options: dict[str, Any], sock: socket.socket, parent: int
) -> None:
    """The read process's main: the app without a writer, on the socket the parent bound."""
    import uvicorn

    from trackline.app import create_app
    from trackline.logs import configure_logging

    configure_logging()
    log.info("read process: answering reads only, on port %s", options["port"])
    # SIGTERM and SIGINT end the process with code 0: before uvicorn serves at once, and
    # while it serves after its graceful shutdown (uvicorn then restores these handlers and
    # sends the signal again).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    app = create_app(Settings(**values), migrate=False, reads_only=True)
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


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
