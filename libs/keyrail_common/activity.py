"""Publishing activity rows to JetStream off the request path.

Rows are buffered and published as one batch message per subject every few milliseconds, so a
request never waits on a JetStream acknowledgement and the stream stores far fewer messages.
Each batch has a unique Nats-Msg-Id: a retried publish is deduplicated by the server, and the
audit service's ReplacingMergeTree absorbs redeliveries.

While JetStream does not take batches, rows wait in memory, up to a limit per subject
(`KEYRAIL_ACTIVITY_BUFFER`). Past it the newest rows are dropped, never silently: each one
counts in `keyrail_activity_rows_dropped_total{kind}` (alert on it: deploy/prometheus/alerts.yaml)
and the log says so, at most once per interval. The newest rather than the oldest go because a
failing flush holds the head of the buffer (it deletes that many rows once the publish returns),
and because what is kept stays one gap-free stretch of time from the outage's start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import msgspec
from nats.js import JetStreamContext
from prometheus_client import Counter

from keyrail_common import subjects
from keyrail_common.messages import ActivityRow

log = logging.getLogger("keyrail.activity")

_FLUSH_INTERVAL_S = 0.02
_MAX_BATCH = 500
MAX_BUFFERED = 200_000  # rows per subject (the default of KEYRAIL_ACTIVITY_BUFFER)
_DROP_LOG_INTERVAL_S = 10.0

# In the default registry: every service that publishes rows (ingress, router, workers) exports it.
ROWS_DROPPED = Counter(
    "keyrail_activity_rows_dropped_total",
    "Activity rows dropped because the publisher's buffer was full (JetStream not taking batches)",
    ["kind"],
)
_DROPPED = {
    subjects.ACTIVITY_REQUEST: ROWS_DROPPED.labels("request"),  # a series from the start, at 0
    subjects.ACTIVITY_ATTEMPT: ROWS_DROPPED.labels("attempt"),
    subjects.ACTIVITY_ATTEMPT_WATCHED: ROWS_DROPPED.labels("attempt"),
}


class ActivityBatch(msgspec.Struct, gc=False):  # no cycles: see keyrail_common.messages
    rows: list[ActivityRow]
    v: int = 1


encode_batch = msgspec.msgpack.Encoder().encode
batch_decoder = msgspec.msgpack.Decoder(ActivityBatch)


class ActivityPublisher:
    def __init__(self, js: JetStreamContext, max_buffered: int = MAX_BUFFERED) -> None:
        self._js = js
        self._max_buffered = max_buffered
        self._buffers: dict[str, list[ActivityRow]] = {
            subjects.ACTIVITY_ATTEMPT: [],
            subjects.ACTIVITY_ATTEMPT_WATCHED: [],
            subjects.ACTIVITY_REQUEST: [],
        }
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._task = self._loop.create_task(self._run())
        self._batch_prefix = secrets.token_hex(6)
        self._batch_counter = 0
        self.dropped = 0
        self._outage_dropped = 0  # since the last batch JetStream took
        self._next_drop_log = float("-inf")

    def record(self, row: ActivityRow, watched: bool = False) -> None:
        """`watched`: the circuit breakers follow this attempt even if it succeeded (a failed one
        they always follow); only these reach the routers, not the healthy bulk."""
        if row.kind == "request":
            subject = subjects.ACTIVITY_REQUEST
        elif watched or row.status != "ok":
            subject = subjects.ACTIVITY_ATTEMPT_WATCHED
        else:
            subject = subjects.ACTIVITY_ATTEMPT
        buffer = self._buffers[subject]
        if len(buffer) >= self._max_buffered:
            self._drop(subject)
            return
        buffer.append(row)
        if len(buffer) >= _MAX_BATCH:
            self._wake.set()
        elif self._timer is None:
            # The first row since the last flush starts the clock: an idle service never wakes up,
            # a busy one flushes every interval (or at once when a batch is full).
            self._timer = self._loop.call_later(_FLUSH_INTERVAL_S, self._wake.set)

    def _drop(self, subject: str) -> None:
        self.dropped += 1
        self._outage_dropped += 1
        _DROPPED[subject].inc()
        now = time.monotonic()
        if now >= self._next_drop_log:  # the first drop at once, then one line per interval
            self._next_drop_log = now + _DROP_LOG_INTERVAL_S
            log.error(
                "activity buffer full (%d rows on %s): new rows are dropped, %d so far while "
                "JetStream takes no batches",
                self._max_buffered,
                subject,
                self._outage_dropped,
            )

    def _report_resumed(self) -> None:
        """A batch went out after drops: the outage's final count, so the log's total is complete."""
        log.warning(
            "activity publishing resumed; %d rows were dropped while the buffer was full",
            self._outage_dropped,
        )
        self._outage_dropped = 0
        self._next_drop_log = float("-inf")  # the next outage is reported at its first drop

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            await self.flush()
            if any(self._buffers.values()) and self._timer is None:  # a failed publish keeps rows
                self._timer = self._loop.call_later(_FLUSH_INTERVAL_S, self._wake.set)

    async def flush(self) -> None:
        for subject, buffer in self._buffers.items():
            while buffer:
                batch = buffer[:_MAX_BATCH]
                self._batch_counter += 1
                msg_id = f"{self._batch_prefix}-{self._batch_counter}"
                try:
                    await self._js.publish(
                        subject, encode_batch(ActivityBatch(rows=batch)), headers={"Nats-Msg-Id": msg_id}
                    )
                except Exception as exc:  # keep the rows; the next flush retries
                    self._batch_counter -= 1
                    log.warning(
                        "activity publish failed (%s); %d rows kept for retry",
                        type(exc).__name__,
                        len(buffer),
                    )
                    await asyncio.sleep(0.5)
                    return
                del buffer[: len(batch)]
                if self._outage_dropped:
                    self._report_resumed()

    async def close(self) -> None:
        self._task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        try:
            await self.flush()
        except Exception:
            log.exception("final activity flush failed")
