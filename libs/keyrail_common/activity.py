"""Publishing activity rows to JetStream off the request path.

Rows are buffered and published as one batch message per subject every few milliseconds, so a
request never waits on a JetStream acknowledgement and the stream stores far fewer messages.
Each batch has a unique Nats-Msg-Id: a retried publish is deduplicated by the server, and the
audit service's ReplacingMergeTree absorbs redeliveries.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import msgspec
from nats.js import JetStreamContext

from keyrail_common import subjects
from keyrail_common.messages import ActivityRow

log = logging.getLogger("keyrail.activity")

_FLUSH_INTERVAL_S = 0.02
_MAX_BATCH = 500
_MAX_BUFFERED = 200_000


class ActivityBatch(msgspec.Struct):
    rows: list[ActivityRow]
    v: int = 1


encode_batch = msgspec.msgpack.Encoder().encode
batch_decoder = msgspec.msgpack.Decoder(ActivityBatch)


class ActivityPublisher:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._buffers: dict[str, list[ActivityRow]] = {
            subjects.ACTIVITY_ATTEMPT: [],
            subjects.ACTIVITY_REQUEST: [],
        }
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._task = self._loop.create_task(self._run())
        self._batch_prefix = secrets.token_hex(6)
        self._batch_counter = 0
        self.dropped = 0

    def record(self, row: ActivityRow) -> None:
        subject = subjects.ACTIVITY_REQUEST if row.kind == "request" else subjects.ACTIVITY_ATTEMPT
        buffer = self._buffers[subject]
        if len(buffer) >= _MAX_BUFFERED:
            self.dropped += 1
            return
        buffer.append(row)
        if len(buffer) >= _MAX_BATCH:
            self._wake.set()
        elif self._timer is None:
            # The first row since the last flush starts the clock: an idle service never wakes up,
            # a busy one flushes every interval (or at once when a batch is full).
            self._timer = self._loop.call_later(_FLUSH_INTERVAL_S, self._wake.set)

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

    async def close(self) -> None:
        self._task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        try:
            await self.flush()
        except Exception:
            log.exception("final activity flush failed")
