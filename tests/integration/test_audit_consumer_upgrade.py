"""A deployment upgraded from an older version: JetStream already has the audit durable, created
with a 60 s ack wait, and keeps a durable's config until it is updated. The audit service brings it
to its own 6 s on start, in place: the durable keeps its position (what the old version acked is
not written again) and the messages it held are written too."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from keyrail_audit.consumer import ACK_WAIT_S
from keyrail_common import subjects
from keyrail_common.activity import ActivityBatch, encode_batch
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.messages import ActivityRow, QueryResult, SqlQuery, encode

pytestmark = pytest.mark.integration

OLD_ACK_WAIT_S = 60.0
_result = msgspec.msgpack.Decoder(QueryResult)


def _message(i: int) -> bytes:
    row = ActivityRow(request_id=f"req_{i:02d}", kind="request", attempt=1, ts_ms=int(time.time() * 1000))
    return encode_batch(ActivityBatch(rows=[row]))


async def test_an_old_durables_ack_wait_is_updated_in_place_on_start(
    nats_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, _ = nats_server
    nc = await connect(url, "upgrade-test")
    js = nc.jetstream()
    await ensure_streams(js)
    # What the older version left behind: its durable, 3 messages written and acked, 2 held
    # unacknowledged when it stopped, 5 not delivered yet.
    old = ConsumerConfig(
        durable_name=subjects.AUDIT_DURABLE,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=OLD_ACK_WAIT_S,
        filter_subject=subjects.ACTIVITY_SUBJECTS,
    )
    await js.add_consumer(subjects.ACTIVITY_STREAM, old)
    for i in range(10):
        await js.publish(subjects.ACTIVITY_REQUEST, _message(i))
    previous = await js.pull_subscribe_bind(subjects.AUDIT_DURABLE, stream=subjects.ACTIVITY_STREAM)
    for message in await previous.fetch(3, timeout=5):
        await message.ack_sync()
    assert len(await previous.fetch(2, timeout=5)) == 2  # held, never acked
    await previous.unsubscribe()
    before = await js.consumer_info(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
    assert before.config.ack_wait == OLD_ACK_WAIT_S

    env = {
        **os.environ,
        "KEYRAIL_DATA_DIR": str(tmp_path),
        "KEYRAIL_NATS_URL": url,
        "KEYRAIL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "KEYRAIL_METRICS_PORT": "0",
    }
    audit = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "keyrail_cli.main",
        "audit",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        started = time.monotonic()
        while (
            await js.consumer_info(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
        ).config.ack_wait != ACK_WAIT_S:
            assert time.monotonic() - started < 30, "the durable kept its old ack wait"
            await asyncio.sleep(0.2)
        after = await js.consumer_info(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
        assert after.config.ack_wait == ACK_WAIT_S == 6.0
        assert after.delivered.stream_seq >= before.delivered.stream_seq  # updated, not recreated

        # The 5 never delivered and the 2 held: written; the 3 the old version acked: not again.
        query = encode(SqlQuery(sql="SELECT request_id FROM keyrail.activity ORDER BY request_id"))
        expected = [[f"req_{i:02d}"] for i in range(3, 10)]
        rows: list[list[object]] = []
        while rows != expected:
            assert time.monotonic() - started < 60, rows
            await asyncio.sleep(0.5)
            try:
                rows = _result.decode((await nc.request(subjects.AUDIT_SQL, query, timeout=5)).data).rows
            except Exception:  # the audit service not answering yet
                rows = []
    finally:
        audit.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(audit.wait(), 30) == 0
        await close_bus(nc)
