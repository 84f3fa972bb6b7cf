"""How long a failed server process waits before it is started again."""

from __future__ import annotations

from trackline.serving import BACKOFF_S, WATCH_S, backoff


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
