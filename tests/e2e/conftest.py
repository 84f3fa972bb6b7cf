"""Real ``trackline serve`` processes on loopback, and the ``trackline`` command as a subprocess.

``serve`` starts servers (each in its own process group, so ``--workers N`` children die with
it), parses the admin key printed on the first start, stops them with SIGTERM or SIGKILL and
starts them again on the same database. Every server is killed in teardown."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

STARTUP_S = 30.0
STOP_S = 30.0
KEY_LINE = re.compile(r"^\s*key: (tl_\S+)\s*$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any ``TRACKLINE_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(extra or {})
    return env


def admin_keys(stdout: str) -> list[str]:
    """Every ``key: tl_...`` line a server printed."""
    return KEY_LINE.findall(stdout)


@dataclass
class Server:
    """One ``trackline serve`` on ``database_url``; ``start`` again after ``stop``."""

    database_url: str
    workdir: Path
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0
    admin_key: str | None = None  # from the first start that printed one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def _log(self, stream: str) -> Path:
        return self.workdir / f"serve-{self.starts}.{stream}"

    def start(self) -> str:
        """Start and wait until ``/health`` answers 200; return what it printed on stdout."""
        assert self.proc is None, "the server is running already"
        self.starts += 1
        self.port = free_port()
        command = [sys.executable, "-m", "trackline", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--database-url", self.database_url]
        with self._log("out").open("wb") as out, self._log("err").open("wb") as err:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=clean_env(self.env),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self._wait_healthy()
        self._wait_workers()
        stdout = self.stdout()
        keys = admin_keys(stdout)
        if keys and self.admin_key is None:
            self.admin_key = keys[0]
        return stdout

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            try:  # the poll interval, and a check that the process is still alive
                code = self.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"trackline serve exited with {code}:\n{self.stderr()}")
        raise AssertionError(f"trackline serve not healthy in {STARTUP_S} s:\n{self.stderr()}")

    def _wait_workers(self) -> None:
        """Wait until every worker has started (one answering ``/health`` is not all)."""
        deadline = time.monotonic() + STARTUP_S
        while self.stderr().count("Application startup complete") < self.workers:
            if time.monotonic() > deadline:
                raise AssertionError(f"not every worker started in {STARTUP_S} s:\n{self.stderr()}")
            time.sleep(0.05)

    def stdout(self) -> str:
        """What the latest start printed on stdout so far."""
        return self._log("out").read_text(errors="replace")

    def stderr(self) -> str:
        """What the latest start logged on stderr so far."""
        return self._log("err").read_text(errors="replace")

    def headers(self) -> dict[str, str]:
        assert self.admin_key is not None, "no admin key was printed"
        return {"Authorization": f"Bearer {self.admin_key}"}

    def client(self) -> httpx.Client:
        """An HTTP client for this server with the admin key."""
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=30)

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig``: SIGKILL to the whole process group, anything else to the server."""
        if sig == signal.SIGKILL:
            os.killpg(self.pid, signal.SIGKILL)
        else:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = STOP_S) -> int:
        """Wait for the process to end; its exit code (negative: the signal that ended it)."""
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_S) -> int:
        self.send(sig)
        return self.wait(timeout)

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> str:
        self.stop(sig)
        return self.start()

    def close(self) -> None:
        """Kill whatever is left of the process group (teardown)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # it ended on its own
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_S)
            self.proc = None


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerFactory]:
    """``serve(database_url, workers=1, env=None, start=True) -> Server``."""
    servers: list[Server] = []

    def make(
        database_url: str,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> Server:
        workdir = tmp_path / f"server-{len(servers)}"
        workdir.mkdir()
        server = Server(database_url, workdir, workers=workers, env=env or {})
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def server(serve: ServerFactory, database_url: str) -> Server:
    """A started server on the test's (empty, migrated) database; it printed the admin key."""
    return serve(database_url)


CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """``cli(*args, env=None) -> CompletedProcess``: ``python -m trackline *args`` in a tmp dir."""
    workdir = tmp_path / "cli"
    workdir.mkdir()

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trackline", *args],
            cwd=workdir,
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run
