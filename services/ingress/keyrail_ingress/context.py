"""Everything the ingress handlers share, built once by the composition root (app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.projection import ConfigProjection, ConfigPublisher
from keyrail_common.registry import ProviderRegistry
from keyrail_common.settings import Settings
from keyrail_common.vault import CredentialStore
from keyrail_ingress.admin.history import ChangeHistory
from keyrail_ingress.stream_inbox import StreamInboxes


@dataclass
class IngressContext:
    settings: Settings
    nc: NATS
    js: JetStreamContext
    projection: ConfigProjection
    publisher: ConfigPublisher
    activity: ActivityPublisher
    credentials: CredentialStore
    access_log: AccessLog
    stream_inboxes: StreamInboxes
    registry: ProviderRegistry
    history: ChangeHistory
