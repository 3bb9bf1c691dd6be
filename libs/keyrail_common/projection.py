"""In-memory projection of KEYRAIL_CONFIG, rebuilt by replaying the stream and followed live.

Every service that needs configuration owns one `ConfigProjection`. Writers (the admin API)
publish with optimistic concurrency through `ConfigPublisher` and then wait until their own
projection has applied the new sequence, so a 201 means "visible to this ingress". Requests
carry that sequence to the router, which waits for it too (read-your-writes across services).
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from keyrail_common import subjects
from keyrail_common.config_events import (
    ApiKeyIssued,
    ApiKeyRevoked,
    ConfigEnvelope,
    ConfigEvent,
    CredentialsRotated,
    IntegrationCreated,
    IntegrationModelsSet,
    OrgCreated,
    ProjectCreated,
    UserCreated,
    decode_envelope,
    encode_envelope,
)

log = logging.getLogger("keyrail.projection")


class ConfigState:
    """The current configuration, as plain dictionaries keyed for the hot path."""

    def __init__(self) -> None:
        self.org: OrgCreated | None = None
        self.users: dict[str, UserCreated] = {}
        self.users_by_token_hash: dict[str, UserCreated] = {}
        self.projects: dict[str, ProjectCreated] = {}
        self.api_keys: dict[str, ApiKeyIssued] = {}
        self.api_keys_by_hash: dict[str, ApiKeyIssued] = {}
        self.integrations: dict[str, IntegrationCreated] = {}  # by provider slug

    def apply(self, event: ConfigEvent) -> None:
        match event:
            case OrgCreated():
                self.org = event
            case UserCreated():
                self.users[event.user_id] = event
                self.users_by_token_hash[event.token_hash] = event
            case ProjectCreated():
                self.projects[event.project_id] = event
            case ApiKeyIssued():
                self.api_keys[event.key_id] = event
                self.api_keys_by_hash[event.key_hash] = event
            case ApiKeyRevoked():
                issued = self.api_keys.pop(event.key_id, None)
                if issued is not None:
                    self.api_keys_by_hash.pop(issued.key_hash, None)
            case IntegrationCreated():
                self.integrations[event.provider_slug] = event
            case CredentialsRotated():
                current = self.integrations.get(event.provider_slug)
                if current is not None:
                    self.integrations[event.provider_slug] = msgspec.structs.replace(
                        current, credential_version=event.credential_version
                    )
            case IntegrationModelsSet():
                current = self.integrations.get(event.provider_slug)
                if current is not None:
                    self.integrations[event.provider_slug] = msgspec.structs.replace(
                        current, enabled_models=event.enabled_models
                    )


class ConfigProjection:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
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
        try:
            envelope = decode_envelope(msg.data)  # type: ignore[attr-defined]
        except msgspec.DecodeError:
            # An event from a newer version or a corrupt write must not stop the projection.
            log.error("skipping undecodable config event seq=%s", metadata.sequence.stream)
        else:
            self.state.apply(envelope.event)
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
    """The subject already moved on: someone else wrote this aggregate first."""


class ConfigPublisher:
    def __init__(self, js: JetStreamContext, projection: ConfigProjection) -> None:
        self._js = js
        self._projection = projection

    async def publish(
        self, aggregate: str, aggregate_id: str, event: ConfigEvent, actor: str, expect_new: bool = False
    ) -> int:
        """Append one event; with `expect_new` the subject must not exist yet (create-once)."""
        envelope = ConfigEnvelope(event=event, actor=actor, ts=time.time())
        headers = {"Nats-Expected-Last-Subject-Sequence": "0"} if expect_new else None
        try:
            ack = await self._js.publish(
                subjects.config_subject(aggregate, aggregate_id), encode_envelope(envelope), headers=headers
            )
        except APIError as exc:
            if exc.err_code == 10071:  # wrong last sequence
                raise ConcurrencyConflict(f"{aggregate} {aggregate_id} already exists") from exc
            raise
        if not await self._projection.wait_for(ack.seq):
            # Stored (the write succeeded) but not yet visible here: say so rather than hide it.
            log.warning("config event %d is stored but this projection has not applied it yet", ack.seq)
        return ack.seq
