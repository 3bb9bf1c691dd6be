"""Control-plane events on the JetStream stream KEYRAIL_CONFIG.

Each event is a tagged msgspec Struct inside a versioned envelope that carries the actor and
the time. Events never hold secret material: API keys and admin tokens appear only as hashes,
provider credentials only as a Vault reference and version.

The stream is the system of record, so an event type is never changed incompatibly: a new shape
is a new event with a versioned tag (`UserCreated.v2`), and the projection keeps applying the old
one (stores written by earlier versions replay unchanged). New fields of an existing event get a
default, so older events still decode.

Each event belongs to one aggregate, whose subject is `keyrail.config.<aggregate>.<id>`
(`AGGREGATE_OF` below): the aggregate's version is the stream sequence of its last event, and a
write that names an expected version is refused by JetStream when the subject has moved on.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from keyrail_common.registry import Operation

ENVELOPE_VERSION = 1

ProjectRole = Literal["project_admin", "developer"]


class OrgCreated(msgspec.Struct, tag="OrgCreated"):
    org_id: str
    name: str


class UserCreated(msgspec.Struct, tag="UserCreated"):
    """v1: a user with one organisation-wide role and its admin token in the same event.

    Still written by the first start (bootstrap.py): creating the owner together with its token
    is then one create-once append, so a crash cannot leave an owner nobody can log in as. The
    projection applies it as a user plus the token `tok_<user_id>`.
    """

    user_id: str
    org_id: str
    name: str
    role: Literal["owner", "project_admin", "developer"]
    token_hash: str


class UserCreatedV2(msgspec.Struct, tag="UserCreated.v2"):
    """A user with its roles: `owner` organisation-wide and/or a role per project. Its admin
    tokens are their own aggregate (AdminTokenIssued)."""

    user_id: str
    org_id: str
    name: str
    email: str = ""
    owner: bool = False
    project_roles: dict[str, ProjectRole] = msgspec.field(default_factory=dict)


class UserUpdated(msgspec.Struct, tag="UserUpdated"):
    """The user's mutable fields, all of them: replaying it needs no earlier state."""

    user_id: str
    name: str
    email: str
    owner: bool
    project_roles: dict[str, ProjectRole]


class UserDisabled(msgspec.Struct, tag="UserDisabled"):
    """The user can no longer authenticate (every token of theirs stops working); kept for the
    change history, which names them as the actor of what they did."""

    user_id: str


class UserEnabled(msgspec.Struct, tag="UserEnabled"):
    """A disabled user may sign in again, with new tokens: the tokens they held when disabled
    stay revoked (whoever was cut off by the disabling stays cut off)."""

    user_id: str


class AdminTokenIssued(msgspec.Struct, tag="AdminTokenIssued"):
    token_id: str
    user_id: str
    name: str
    token_hash: str
    token_prefix: str
    expires_at: float | None = None  # Unix time; None: until revoked


class AdminTokenRevoked(msgspec.Struct, tag="AdminTokenRevoked"):
    token_id: str
    user_id: str


class ProjectCreated(msgspec.Struct, tag="ProjectCreated"):
    project_id: str
    org_id: str
    name: str


class ProjectUpdated(msgspec.Struct, tag="ProjectUpdated"):
    """Rename and/or archive (or restore): an archived project's API keys are refused."""

    project_id: str
    name: str
    archived: bool


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
    credential_fingerprint: str = ""  # "…" + the key's last four characters (not a secret)


class CredentialsRotated(msgspec.Struct, tag="CredentialsRotated"):
    provider_slug: str
    credential_version: int
    credential_fingerprint: str = ""


class IntegrationModelsSet(msgspec.Struct, tag="IntegrationModelsSet"):
    provider_slug: str
    enabled_models: Literal["all", "none"] | list[str]


class IntegrationUpdated(msgspec.Struct, tag="IntegrationUpdated"):
    """Every field of an integration that may change after creation (the provider and the slug
    never do). A change of the custom auth headers is a new Vault version, hence the version."""

    provider_slug: str
    name: str
    description: str
    project_scope: Literal["all"] | list[str]
    custom_host: str
    api_format: str
    allow_http: bool
    credential_version: int


class IntegrationDisabled(msgspec.Struct, tag="IntegrationDisabled"):
    """Deleted through the API: no longer routed; its slug stays taken, so its activity rows
    keep naming one integration."""

    provider_slug: str


class IntegrationEnabled(msgspec.Struct, tag="IntegrationEnabled"):
    """A disabled integration routed again, as it was (same credential version and settings)."""

    provider_slug: str


class CatalogPrices(msgspec.Struct, frozen=True):
    """USD per 1M tokens; None: no known price (unpriced), 0 a real price of nothing."""

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    additional: dict[str, float] = msgspec.field(default_factory=dict)


class CatalogEntrySet(msgspec.Struct, tag="CatalogEntrySet"):
    """An owner's catalog entry, all of it: a new model, or the override of a shipped one."""

    catalog_id: str  # `<provider>/<model>`
    provider: str
    model: str
    schema: str
    context_window: int
    prices: CatalogPrices
    operation: Operation = Operation.CHAT
    source_date: str = ""


class CatalogEntryRemoved(msgspec.Struct, tag="CatalogEntryRemoved"):
    """The owner's entry is gone: an added model leaves the catalog, an overridden shipped one
    is back to its shipped values."""

    catalog_id: str


class CustomModelRegistered(msgspec.Struct, tag="CustomModelRegistered"):
    """A model an integration serves beyond the catalog, routed as `<slug>/<model_slug>`: the
    base model (a catalog id) selects the schema it speaks, never its price."""

    provider_slug: str
    model_slug: str
    base_model: str
    custom_host: str = ""  # its own base URL; empty: the integration's
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    additional_token_pricing: dict[str, float] = msgspec.field(default_factory=dict)

    @property
    def custom_model_id(self) -> str:
        return f"{self.provider_slug}/{self.model_slug}"


class CustomModelUpdated(CustomModelRegistered, tag="CustomModelUpdated"):
    """Every mutable field of the custom model (all of them but the two slugs): replaying it
    needs no earlier state."""


class CustomModelRemoved(msgspec.Struct, tag="CustomModelRemoved"):
    provider_slug: str
    model_slug: str

    @property
    def custom_model_id(self) -> str:
        return f"{self.provider_slug}/{self.model_slug}"


ConfigEvent = (
    OrgCreated
    | UserCreated
    | UserCreatedV2
    | UserUpdated
    | UserDisabled
    | UserEnabled
    | AdminTokenIssued
    | AdminTokenRevoked
    | ProjectCreated
    | ProjectUpdated
    | ApiKeyIssued
    | ApiKeyRevoked
    | IntegrationCreated
    | CredentialsRotated
    | IntegrationModelsSet
    | IntegrationUpdated
    | IntegrationDisabled
    | IntegrationEnabled
    | CatalogEntrySet
    | CatalogEntryRemoved
    | CustomModelRegistered
    | CustomModelUpdated
    | CustomModelRemoved
)

# The aggregate each event type is appended to, and the field (or property) that holds the
# aggregate's id: the event goes to subject `keyrail.config.<aggregate>.<id>`. Catalog and custom
# model ids hold `/` and may hold `.` (model names do); the admin API admits only characters a
# subject token takes, and no empty token.
AGGREGATES: dict[type, tuple[str, str]] = {
    OrgCreated: ("org", "org_id"),
    UserCreated: ("user", "user_id"),
    UserCreatedV2: ("user", "user_id"),
    UserUpdated: ("user", "user_id"),
    UserDisabled: ("user", "user_id"),
    UserEnabled: ("user", "user_id"),
    AdminTokenIssued: ("admintoken", "token_id"),
    AdminTokenRevoked: ("admintoken", "token_id"),
    ProjectCreated: ("project", "project_id"),
    ProjectUpdated: ("project", "project_id"),
    ApiKeyIssued: ("apikey", "key_id"),
    ApiKeyRevoked: ("apikey", "key_id"),
    IntegrationCreated: ("integration", "provider_slug"),
    CredentialsRotated: ("integration", "provider_slug"),
    IntegrationModelsSet: ("integration", "provider_slug"),
    IntegrationUpdated: ("integration", "provider_slug"),
    IntegrationDisabled: ("integration", "provider_slug"),
    IntegrationEnabled: ("integration", "provider_slug"),
    CatalogEntrySet: ("catalog", "catalog_id"),
    CatalogEntryRemoved: ("catalog", "catalog_id"),
    CustomModelRegistered: ("custommodel", "custom_model_id"),
    CustomModelUpdated: ("custommodel", "custom_model_id"),
    CustomModelRemoved: ("custommodel", "custom_model_id"),
}


def aggregate_of(event: ConfigEvent) -> tuple[str, str]:
    """(aggregate, id) of the event: where it is appended, and whose version it advances."""
    aggregate, id_field = AGGREGATES[type(event)]
    return aggregate, str(getattr(event, id_field))


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
