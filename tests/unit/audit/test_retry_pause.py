"""The audit service's pause between attempts at an unreachable ClickHouse: it grows, so an
outage costs an attempt every few seconds instead of a busy loop, and starts small again after a
success, so the next outage is noticed as quickly as the first."""

from __future__ import annotations

from keyrail_audit.consumer import RetryPause


def test_the_pause_doubles_up_to_its_ceiling() -> None:
    pause = RetryPause(first_s=0.5, max_s=5.0)

    assert [pause.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_a_success_starts_the_pauses_over() -> None:
    pause = RetryPause(first_s=0.5, max_s=5.0)
    for _ in range(4):
        pause.next()

    pause.reset()

    assert pause.next() == 0.5
