"""In-memory projection of KEYRAIL_CONFIG, rebuilt by replaying the stream and followed live.

Every service that needs configuration owns one `ConfigProjection` (the state itself and its
fold are in config_state.py). Writers (the admin API) publish with optimistic concurrency
through `ConfigPublisher` and then wait until their own projection has applied the new
sequence, so a 201 means "visible to this ingress". Requests carry that sequence to the router,
which waits for it too (read-your-writes across services).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

import msgspec
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from keyrail_common import subjects
from keyrail_common.config_events import (
    ConfigEnvelope,
    ConfigEvent,
    aggregate_of,
    decode_envelope,
    encode_envelope,
)
from keyrail_common.config_state import ConfigState, EventMeta

__all__ = [
    "ConcurrencyConflict",
    "ConfigMovedOn",
    "ConfigProjection",
    "ConfigPublisher",
    "ConfigState",
    "EventMeta",
    "Observer",
]

log = logging.getLogger("keyrail.projection")


class Observer(Protocol):
    """Sees every event as it is applied: `apply()` folds it into `state`, so the observer can look
    at the state before and after (the ingress's change history does)."""

    def __call__(
        self, state: ConfigState, meta: EventMeta, envelope: ConfigEnvelope, apply: Callable[[], None]
    ) -> None: ...


def _apply_only(
    state: ConfigState, meta: EventMeta, envelope: ConfigEnvelope, apply: Callable[[], None]
) -> None:
    apply()


def aggregate_key(subject: str) -> str:
    """`keyrail.config.integration.openai-prod` -> `integration.openai-prod`."""
    return subject.removeprefix(subjects.CONFIG_PREFIX)


class ConfigProjection:
    def __init__(self, js: JetStreamContext, observer: Observer = _apply_only) -> None:
        self._js = js
        self._observer = observer
        self.state = ConfigState()
        self.applied_seq = 0
        self._advanced = asyncio.Condition()
        self._subscription: object | None = None

    async def start(self, catch_up_timeout_s: float = 30.0) -> None:
        """Replay the whole stream, then keep following it; returns once caught up."""
        info = await self._js.stream_info(subjects.CONFIG_STREAM)
        target = info.state.last_seq
        self._subscription = await self._js.subscribe(
            subjects.CONFIG_SUBJECTS,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        await self.wait_for(target, catch_up_timeout_s)

    async def _on_message(self, msg: object) -> None:
        metadata = msg.metadata  # type: ignore[attr-defined]
        seq = metadata.sequence.stream
        key = aggregate_key(msg.subject)  # type: ignore[attr-defined]
        try:
            envelope = decode_envelope(msg.data)  # type: ignore[attr-defined]
        except msgspec.DecodeError:
            # An event from a newer version or a corrupt write must not stop the projection.
            log.error("skipping undecodable config event seq=%s", seq)
            self.state.record_version(EventMeta(seq=seq, aggregate_key=key))
        else:
            meta = EventMeta(seq=seq, aggregate_key=key, actor=envelope.actor, ts=envelope.ts)
            event = envelope.event
            self._observer(self.state, meta, envelope, lambda: self.state.apply(event, meta))
        async with self._advanced:
            self.applied_seq = metadata.sequence.stream
            self._advanced.notify_all()

    async def wait_for(self, seq: int, timeout_s: float = 5.0) -> bool:
        """True once the projection has applied `seq` (immediately when it already has)."""
        if self.applied_seq >= seq:
            return True
        async with self._advanced:
            try:
                await asyncio.wait_for(self._advanced.wait_for(lambda: self.applied_seq >= seq), timeout_s)
            except TimeoutError:
                return False
        return True


class ConcurrencyConflict(Exception):
    """The aggregate's subject moved on: someone else wrote it since the expected version."""


class ConfigMovedOn(ConcurrencyConflict):
    """A write decided on the whole configuration (`publish(..., decided_on_all=True)`) found that
    some other event was appended since this projection last applied one."""


class ConfigPublisher:
    def __init__(self, js: JetStreamContext, projection: ConfigProjection) -> None:
        self._js = js
        self._projection = projection

    async def publish(
        self,
        event: ConfigEvent,
        actor: str,
        expected_version: int | None = None,
        expect_new: bool = False,
        decided_on_all: bool = False,
    ) -> int:
        """Append one event to its aggregate's subject; returns its sequence (the new version).

        `expected_version`: the aggregate's version the command was decided on (the stream
        sequence of its last event; 0, as `expect_new`, for an aggregate that must not exist yet).
        JetStream refuses the append when the subject has moved on since, so two writers that
        decided on the same version cannot both succeed (ConcurrencyConflict for the second).

        `decided_on_all`: the decision read other aggregates too (the last-owner guard reads every
        user and token), so the append expects the whole stream to be where this projection has
        applied it; two such writes racing on different aggregates cannot both pass (ConfigMovedOn).
        """
        if expect_new:
            expected_version = 0
        aggregate, aggregate_id = aggregate_of(event)
        envelope = ConfigEnvelope(event=event, actor=actor, ts=time.time())
        headers = None
        if decided_on_all:
            state = self._projection.state
            if expected_version is not None and state.version(aggregate, aggregate_id) != expected_version:
                raise ConcurrencyConflict(
                    f"{aggregate} {aggregate_id} changed since version {expected_version}"
                )
            # One expected sequence over every config subject: JetStream checks the stream's last.
            headers = {
                "Nats-Expected-Last-Subject-Sequence": str(self._projection.applied_seq),
                "Nats-Expected-Last-Subject-Sequence-Subject": subjects.CONFIG_SUBJECTS,
            }
        elif expected_version is not None:
            headers = {"Nats-Expected-Last-Subject-Sequence": str(expected_version)}
        try:
            ack = await self._js.publish(
                subjects.config_subject(aggregate, aggregate_id), encode_envelope(envelope), headers=headers
            )
        except APIError as exc:
            if exc.err_code == 10071 and decided_on_all:
                raise ConfigMovedOn("the configuration moved on since this projection's last event") from exc
            if exc.err_code == 10071:  # wrong last sequence
                raise ConcurrencyConflict(
                    f"{aggregate} {aggregate_id} changed since version {expected_version}"
                ) from exc
            raise
        if not await self._projection.wait_for(ack.seq):
            # Stored (the write succeeded) but not yet visible here: say so rather than hide it.
            log.warning("config event %d is stored but this projection has not applied it yet", ack.seq)
        return ack.seq
