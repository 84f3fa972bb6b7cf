"""How long a failed server process waits before it is started again."""

from __future__ import annotations

from trackline.serving import BACKOFF_S, WATCH_S, backoff


def test_a_process_that_keeps_failing_waits_longer_each_time() -> None:
    assert backoff(8.0, ran_s=3.0) == 8.0
    assert backoff(BACKOFF_S, ran_s=BACKOFF_S) == BACKOFF_S


def test_a_process_that_ran_a_while_before_it_failed_waits_the_least_again() -> None:
    assert backoff(BACKOFF_S, ran_s=BACKOFF_S + 1) == WATCH_S
    assert backoff(4.0, ran_s=3600.0) == WATCH_S
