"""Control-plane events on the JetStream stream KEYRAIL_CONFIG.

Each event is a tagged msgspec Struct inside a versioned envelope that carries the actor and
the time. Events never hold secret material: API keys and admin tokens appear only as hashes,
provider credentials only as a Vault reference and version.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ENVELOPE_VERSION = 1


class OrgCreated(msgspec.Struct, tag="OrgCreated"):
    org_id: str
    name: str


class UserCreated(msgspec.Struct, tag="UserCreated"):
    user_id: str
    org_id: str
    name: str
    role: Literal["owner", "project_admin", "developer"]
    token_hash: str


class ProjectCreated(msgspec.Struct, tag="ProjectCreated"):
    project_id: str
    org_id: str
    name: str


class ApiKeyIssued(msgspec.Struct, tag="ApiKeyIssued"):
    key_id: str
    org_id: str
    project_id: str
    name: str
    key_hash: str
    key_prefix: str


class ApiKeyRevoked(msgspec.Struct, tag="ApiKeyRevoked"):
    key_id: str


class IntegrationCreated(msgspec.Struct, tag="IntegrationCreated"):
    integration_id: str
    org_id: str
    name: str
    provider: str
    provider_slug: str
    project_scope: Literal["all"] | list[str]
    enabled_models: Literal["all", "none"] | list[str]
    credential_ref: str
    credential_version: int
    api_format: str = "openai"
    custom_host: str = ""
    allow_http: bool = False
    description: str = ""


class CredentialsRotated(msgspec.Struct, tag="CredentialsRotated"):
    provider_slug: str
    credential_version: int


class IntegrationModelsSet(msgspec.Struct, tag="IntegrationModelsSet"):
    provider_slug: str
    enabled_models: Literal["all", "none"] | list[str]


ConfigEvent = (
    OrgCreated
    | UserCreated
    | ProjectCreated
    | ApiKeyIssued
    | ApiKeyRevoked
    | IntegrationCreated
    | CredentialsRotated
    | IntegrationModelsSet
)


class ConfigEnvelope(msgspec.Struct):
    event: ConfigEvent
    actor: str
    ts: float
    v: int = ENVELOPE_VERSION


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ConfigEnvelope)


def encode_envelope(envelope: ConfigEnvelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(data: bytes) -> ConfigEnvelope:
    return _decoder.decode(data)
