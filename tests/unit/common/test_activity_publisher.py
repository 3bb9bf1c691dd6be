"""A full activity buffer drops the newest rows, never silently: each counted in the Prometheus
counter every publishing service exports, the outage logged once (then once per interval), and
the rows kept (the oldest) published once JetStream takes batches again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY, generate_latest

from keyrail_common import activity, subjects
from keyrail_common.activity import ActivityPublisher, batch_decoder
from keyrail_common.messages import ActivityRow

LIMIT = 3


class StalledJetStream:
    """Takes no batch until `resume()`: every publish waits, as while JetStream is unreachable."""

    def __init__(self) -> None:
        self.published: list[tuple[str, list[str]]] = []
        self._open = asyncio.Event()

    def resume(self) -> None:
        self._open.set()

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await self._open.wait()
        self.published.append((subject, [row.request_id for row in batch_decoder.decode(payload).rows]))


def _row(n: int, kind: str = "request") -> ActivityRow:
    return ActivityRow(request_id=f"req_{n:04d}", kind=kind, attempt=0 if kind == "request" else 1, ts_ms=n)


def _dropped(kind: str) -> float:
    value = REGISTRY.get_sample_value("keyrail_activity_rows_dropped_total", {"kind": kind})
    assert value is not None, "the counter's series exists before the first drop"
    return value


def _drop_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "keyrail.activity"]


async def _until(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_full_buffer_counts_every_dropped_row_logs_once_and_keeps_the_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="keyrail.activity")
    js = StalledJetStream()
    publisher = ActivityPublisher(cast(JetStreamContext, js), max_buffered=LIMIT)
    requests_before, attempts_before = _dropped("request"), _dropped("attempt")
    for n in range(LIMIT + 500):
        publisher.record(_row(n))
    publisher.record(_row(9000, kind="attempt"))  # the attempt buffer has room of its own

    assert publisher.dropped == 500
    assert _dropped("request") - requests_before == 500
    assert _dropped("attempt") == attempts_before
    (line,) = _drop_lines(caplog)  # one line for 500 drops, not one per row
    assert line.levelno == logging.ERROR
    assert f"activity buffer full ({LIMIT} rows on {subjects.ACTIVITY_REQUEST})" in line.getMessage()
    assert "1 so far" in line.getMessage()

    js.resume()
    await _until(lambda: len(js.published) == 2)
    assert dict(js.published) == {
        subjects.ACTIVITY_REQUEST: ["req_0000", "req_0001", "req_0002"],  # the oldest, in order
        subjects.ACTIVITY_ATTEMPT: ["req_9000"],
    }
    resumed = _drop_lines(caplog)[1]
    assert resumed.levelno == logging.WARNING
    assert resumed.getMessage() == (
        "activity publishing resumed; 500 rows were dropped while the buffer was full"
    )
    await publisher.close()


async def test_a_long_outage_is_reported_once_per_interval_with_its_running_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="keyrail.activity")
    clock = [1000.0]
    monkeypatch.setattr(activity.time, "monotonic", lambda: clock[0])
    publisher = ActivityPublisher(cast(JetStreamContext, StalledJetStream()), max_buffered=LIMIT)
    attempts_before = _dropped("attempt")
    for n in range(LIMIT + 10):
        publisher.record(_row(n, kind="attempt"))
    clock[0] += activity._DROP_LOG_INTERVAL_S - 0.1
    publisher.record(_row(100, kind="attempt"))  # still inside the interval: counted, not logged
    clock[0] += 0.1
    publisher.record(_row(101, kind="attempt"))

    assert _dropped("attempt") - attempts_before == 12
    assert [r.getMessage().split(": ", 1)[1] for r in _drop_lines(caplog)] == [
        "new rows are dropped, 1 so far while JetStream takes no batches",
        "new rows are dropped, 12 so far while JetStream takes no batches",
    ]
    publisher._task.cancel()  # the stalled publish never returns; nothing left to flush


def test_the_dropped_rows_counter_is_in_the_exposition_every_service_serves() -> None:
    text = generate_latest().decode()
    assert 'keyrail_activity_rows_dropped_total{kind="request"}' in text
    assert 'keyrail_activity_rows_dropped_total{kind="attempt"}' in text


class RecordingJetStream:
    def __init__(self) -> None:
        self.published: dict[str, list[str]] = {}

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        rows = batch_decoder.decode(payload).rows
        self.published.setdefault(subject, []).extend(row.request_id for row in rows)


async def test_only_failures_and_watched_successes_go_where_the_circuit_breakers_read() -> None:
    js = RecordingJetStream()
    publisher = ActivityPublisher(cast(JetStreamContext, js))
    publisher.record(_row(1))  # a request row
    publisher.record(_row(2, kind="attempt"))  # a healthy success: the bulk, no breaker needs it
    failed = _row(3, kind="attempt")
    failed.status = "error"
    publisher.record(failed)  # every failure
    publisher.record(_row(4, kind="attempt"), watched=True)  # a success of a target a breaker knows
    await publisher.flush()
    await publisher.close()
    assert js.published == {
        subjects.ACTIVITY_REQUEST: ["req_0001"],
        subjects.ACTIVITY_ATTEMPT: ["req_0002"],
        subjects.ACTIVITY_ATTEMPT_WATCHED: ["req_0003", "req_0004"],
    }
