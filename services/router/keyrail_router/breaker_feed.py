"""The breakers' I/O: the attempt rows they fold, the probe claims they share, what they export.

Each router replica follows `keyrail.activity.attempt.watched` with its own ordered consumer,
starting a window plus a cool-down in the past, so a restarted replica rebuilds the same breakers
the others hold (the state is derived from the stream, not kept per process). That subject holds
every failed attempt and the successes of targets a breaker already has a record of: the healthy
bulk, which would change nothing, never reaches the routers (reading it cost each replica about a
fifth of its CPU). A probe is claimed with a
create-only write to the JetStream key-value bucket KEYRAIL_BREAKER_PROBES: the one replica whose
write succeeds sends it, the others keep skipping the target.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time

import msgspec
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from keyrail_common import subjects
from keyrail_common.messages import CircuitReport, CircuitReports
from keyrail_router.breaker import AttemptOutcome, Breaker, BreakerBoard, OutcomeBatch
from keyrail_router.metrics import BREAKER_OPENED

log = logging.getLogger("keyrail.router")

_MAX_REMEMBERED_CLAIMS = 10_000
_outcomes_decoder = msgspec.msgpack.Decoder(OutcomeBatch)
_REPLICA = f"{socket.gethostname()}:{os.getpid()}"


class BreakerFeed:
    def __init__(self, js: JetStreamContext, board: BreakerBoard) -> None:
        self._js = js
        self.board = board
        self._kv: KeyValue | None = None
        self._lost_claims: set[str] = set()  # claims another replica holds: no second write

    async def start(self) -> None:
        settings = self.board.settings
        try:
            self._kv = await self._js.key_value(subjects.BREAKER_PROBES_BUCKET)
        except BucketNotFoundError:
            # Claims are only needed for one cool-down; the bucket forgets them after an hour.
            config = KeyValueConfig(
                bucket=subjects.BREAKER_PROBES_BUCKET, history=1, ttl=3600.0, storage=StorageType.FILE
            )
            self._kv = await self._js.create_key_value(config)
        since = time.time() - settings.window_s - settings.cooldown_s
        await self._js.subscribe(
            subjects.ACTIVITY_ATTEMPT_WATCHED,
            cb=self._on_batch,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.datetime.fromtimestamp(since, datetime.UTC),
            ),
        )

    async def _on_batch(self, msg: object) -> None:
        try:
            batch = _outcomes_decoder.decode(msg.data)  # type: ignore[attr-defined]
        except msgspec.DecodeError:
            return  # the audit service counts undecodable batches; a breaker just skips them
        for row in batch.rows:
            self._observe(row)

    def _observe(self, row: AttemptOutcome) -> None:
        was = self.board.get(row.provider_slug, row.model)
        changed = self.board.observe(row)
        if changed is None:
            return
        if changed.open and (was is None or not was.open or was.opened_at != changed.opened_at):
            BREAKER_OPENED.labels(changed.slug, changed.model).inc()
            log.warning(
                "circuit opened for %s/%s after %d failures (last: %s)",
                changed.slug,
                changed.model,
                changed.failures,
                changed.last_failure_class,
            )

    async def claim_probe(self, key: str) -> bool:
        """True for the one replica that may send this probe."""
        if key in self._lost_claims or self._kv is None:
            return False
        try:
            await self._kv.create(key, b"1")
        except KeyWrongLastSequenceError:
            if len(self._lost_claims) >= _MAX_REMEMBERED_CLAIMS:
                self._lost_claims.clear()
            self._lost_claims.add(key)
            return False
        except Exception:  # the bucket unreachable: keep skipping rather than flood the target
            log.warning("probe claim %s failed", key, exc_info=True)
            return False
        return True

    def report(self, slug: str) -> CircuitReports:
        now = time.time()
        circuits = [circuit_report(b, now) for b in self.board.of_slug(slug)]
        return CircuitReports(slug, circuits, replica=_REPLICA)


def circuit_report(breaker: Breaker, now: float) -> CircuitReport:
    return CircuitReport(
        model=breaker.model,
        state=breaker.state(now).value,
        failures=breaker.failures,
        last_failure_class=breaker.last_failure_class,
        last_failure_message=breaker.last_failure_message,
        last_failure_at=breaker.last_failure_at,
        opened_at=breaker.opened_at,
        next_probe_at=breaker.next_probe_at,
    )
