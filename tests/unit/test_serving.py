"""How long a failed server process waits before it is started again, and how a server
process takes the signals that stop it."""

from __future__ import annotations

import signal
import threading

import pytest
import uvicorn

from trackline.serving import BACKOFF_S, WATCH_S, _server, backoff


def test_the_first_failure_waits_the_least() -> None:
    assert backoff(None, ran_s=0.5) == WATCH_S


def test_a_process_that_keeps_failing_waits_twice_as_long_each_time_up_to_the_most() -> None:
    waits = [WATCH_S]
    for _ in range(7):
        waits.append(backoff(waits[-1], ran_s=3.0))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_S, BACKOFF_S, BACKOFF_S]


def test_a_process_that_ran_a_while_before_it_failed_waits_the_least_again() -> None:
    assert backoff(BACKOFF_S, ran_s=BACKOFF_S + 1) == WATCH_S
    assert backoff(4.0, ran_s=3600.0) == WATCH_S


@pytest.mark.parametrize(
    "first, second",
    [
        (signal.SIGTERM, signal.SIGINT),
        (signal.SIGINT, signal.SIGINT),
        (signal.SIGINT, signal.SIGTERM),
    ],
)
def test_a_server_process_asked_to_stop_twice_still_stops_gracefully(
    first: signal.Signals, second: signal.Signals
) -> None:
    server = _server(uvicorn.Config(app=None), threading.Event())

    server.handle_exit(first, None)
    server.handle_exit(second, None)  # plain uvicorn: a second SIGINT skips the shutdown

    assert server.should_exit
    assert not server.force_exit
