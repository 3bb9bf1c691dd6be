"""The current configuration: what replaying KEYRAIL_CONFIG yields, indexed for the hot path.

`ConfigState.apply` is a pure fold over the events (no I/O), so every service that replays the
same stream holds the same state. Records are frozen Structs replaced on change, never mutated:
whoever holds an earlier record (a target resolved before a rotation, the change history's
"before") keeps seeing it as it was.

The lookups the data plane uses stay one dictionary access: `api_keys_by_hash` holds only keys
that may be used (not revoked, project not archived; the archived project's keys wait in
`dormant_keys_by_hash`) and `admin_tokens_by_hash` only tokens of enabled users that were not
revoked (expiry is checked when a token is presented). The catalog (the shipped seed plus the
owners' entries, catalog.py) and the custom models (custom_models.py) are folded here too, so
the router and the ingress route and price with the same ones.
"""

from __future__ import annotations

import msgspec

from keyrail_common.catalog import Catalog, seed_models
from keyrail_common.config_events import (
    AdminTokenIssued,
    AdminTokenRevoked,
    ApiKeyIssued,
    ApiKeyRevoked,
    CatalogEntryRemoved,
    CatalogEntrySet,
    ConfigEvent,
    CredentialsRotated,
    CustomModelRegistered,
    CustomModelRemoved,
    IntegrationCreated,
    IntegrationDisabled,
    IntegrationEnabled,
    IntegrationModelsSet,
    IntegrationUpdated,
    OrgCreated,
    ProjectCreated,
    ProjectRole,
    ProjectUpdated,
    UserCreated,
    UserCreatedV2,
    UserDisabled,
    UserEnabled,
    UserUpdated,
)
from keyrail_common.custom_models import CustomModels


class EventMeta(msgspec.Struct, frozen=True):
    """Where and when an event was stored; zero values when a test applies bare events."""

    seq: int = 0  # the stream sequence: the aggregate's version once applied
    aggregate_key: str = ""  # `<aggregate>.<id>`, from the subject
    actor: str = ""
    ts: float = 0.0


class UserRecord(msgspec.Struct, frozen=True):
    user_id: str
    org_id: str
    name: str
    email: str
    owner: bool
    project_roles: dict[str, ProjectRole]
    disabled: bool
    created_at: float
    created_by: str


class AdminTokenRecord(msgspec.Struct, frozen=True):
    token_id: str
    user_id: str
    name: str
    token_hash: str
    token_prefix: str
    expires_at: float | None
    created_at: float
    created_by: str
    revoked: bool = False


class ProjectRecord(msgspec.Struct, frozen=True):
    project_id: str
    org_id: str
    name: str
    archived: bool
    created_at: float
    created_by: str


class ApiKeyRecord(msgspec.Struct, frozen=True):
    key_id: str
    org_id: str
    project_id: str
    name: str
    key_hash: str
    key_prefix: str
    created_at: float
    created_by: str
    revoked: bool = False


NO_META = EventMeta()


def legacy_token_id(user_id: str) -> str:
    """The id under which a v1 UserCreated's token is known (v1 tokens had no id of their own)."""
    return f"tok_{user_id}"


class ConfigState:
    """The current configuration, as plain dictionaries keyed for the hot path."""

    def __init__(self) -> None:
        self.org: OrgCreated | None = None
        self.users: dict[str, UserRecord] = {}
        self.admin_tokens: dict[str, AdminTokenRecord] = {}  # revoked ones too (listed as such)
        self.admin_tokens_by_hash: dict[str, AdminTokenRecord] = {}  # usable ones only
        self.projects: dict[str, ProjectRecord] = {}
        self.api_keys: dict[str, ApiKeyRecord] = {}  # revoked ones too (listed as such)
        self.api_keys_by_hash: dict[str, ApiKeyRecord] = {}  # usable ones only
        # Keys refused only because their project is archived: the data plane says so (off the
        # hot path: looked at only once a key was not found above).
        self.dormant_keys_by_hash: dict[str, ApiKeyRecord] = {}
        self.integrations: dict[str, IntegrationCreated] = {}  # routable ones, by provider slug
        self.disabled_integrations: dict[str, IntegrationCreated] = {}  # by provider slug
        # The shipped catalog with the owners' entries applied, and the integrations' custom models.
        self.catalog = Catalog(seed_models())
        self.custom_models = CustomModels()
        # `<aggregate>.<id>` -> the stream sequence of its last event: the aggregate's version.
        self.versions: dict[str, int] = {}

    # -- reads -----------------------------------------------------------------------------------

    def version(self, aggregate: str, aggregate_id: str) -> int:
        """0 for an aggregate with no event yet (what JetStream expects for a new subject)."""
        return self.versions.get(f"{aggregate}.{aggregate_id}", 0)

    def integration(self, slug: str) -> IntegrationCreated | None:
        """Routable or disabled: the admin API and the change history see both."""
        return self.integrations.get(slug) or self.disabled_integrations.get(slug)

    def owners(self) -> list[UserRecord]:
        return [u for u in self.users.values() if u.owner and not u.disabled]

    # -- the fold --------------------------------------------------------------------------------

    def record_version(self, meta: EventMeta) -> None:
        """Also called for an event this version cannot decode: the aggregate moved on all the same,
        and a write expecting the older version must still be refused."""
        if meta.aggregate_key:
            self.versions[meta.aggregate_key] = meta.seq

    def apply(self, event: ConfigEvent, meta: EventMeta = NO_META) -> None:
        self.record_version(meta)
        match event:
            case OrgCreated():
                self.org = event
            case UserCreated() | UserCreatedV2() | UserUpdated() | UserDisabled() | UserEnabled():
                self._apply_user(event, meta)
            case AdminTokenIssued() | AdminTokenRevoked():
                self._apply_token(event, meta)
            case ProjectCreated() | ProjectUpdated():
                self._apply_project(event, meta)
            case ApiKeyIssued() | ApiKeyRevoked():
                self._apply_key(event, meta)
            case CatalogEntrySet() | CatalogEntryRemoved():
                self.catalog.apply(event, meta.seq)
            case CustomModelRegistered() | CustomModelRemoved():  # CustomModelUpdated too
                self.custom_models.apply(event, meta.seq, meta.ts, meta.actor)
            case _:
                self._apply_integration(event)

    def _apply_user(
        self, event: UserCreated | UserCreatedV2 | UserUpdated | UserDisabled | UserEnabled, meta: EventMeta
    ) -> None:
        match event:
            case UserCreated():
                # v1 knew no project roles: a v1 project_admin or developer holds no project.
                self.users[event.user_id] = UserRecord(
                    user_id=event.user_id,
                    org_id=event.org_id,
                    name=event.name,
                    email="",
                    owner=event.role == "owner",
                    project_roles={},
                    disabled=False,
                    created_at=meta.ts,
                    created_by=meta.actor,
                )
                self._add_token(
                    AdminTokenIssued(
                        token_id=legacy_token_id(event.user_id),
                        user_id=event.user_id,
                        name="initial",
                        token_hash=event.token_hash,
                        token_prefix="",
                    ),
                    meta,
                )
            case UserCreatedV2():
                self.users[event.user_id] = UserRecord(
                    user_id=event.user_id,
                    org_id=event.org_id,
                    name=event.name,
                    email=event.email,
                    owner=event.owner,
                    project_roles=dict(event.project_roles),
                    disabled=False,
                    created_at=meta.ts,
                    created_by=meta.actor,
                )
            case UserUpdated():
                current = self.users.get(event.user_id)
                if current is not None:
                    self.users[event.user_id] = msgspec.structs.replace(
                        current,
                        name=event.name,
                        email=event.email,
                        owner=event.owner,
                        project_roles=dict(event.project_roles),
                    )
            case UserDisabled():
                current = self.users.get(event.user_id)
                if current is not None:
                    self.users[event.user_id] = msgspec.structs.replace(current, disabled=True)
                    # Their tokens die with the disabling, for good: re-enabled, they get new ones.
                    for token in list(self.admin_tokens.values()):
                        if token.user_id == event.user_id:
                            self.admin_tokens[token.token_id] = msgspec.structs.replace(token, revoked=True)
                            self.admin_tokens_by_hash.pop(token.token_hash, None)
            case UserEnabled():
                current = self.users.get(event.user_id)
                if current is not None:
                    self.users[event.user_id] = msgspec.structs.replace(current, disabled=False)

    def _apply_token(self, event: AdminTokenIssued | AdminTokenRevoked, meta: EventMeta) -> None:
        match event:
            case AdminTokenIssued():
                self._add_token(event, meta)
            case AdminTokenRevoked():
                current = self.admin_tokens.get(event.token_id)
                if current is not None:
                    self.admin_tokens[event.token_id] = msgspec.structs.replace(current, revoked=True)
                    self.admin_tokens_by_hash.pop(current.token_hash, None)

    def _add_token(self, event: AdminTokenIssued, meta: EventMeta) -> None:
        token = AdminTokenRecord(
            token_id=event.token_id,
            user_id=event.user_id,
            name=event.name,
            token_hash=event.token_hash,
            token_prefix=event.token_prefix,
            expires_at=event.expires_at,
            created_at=meta.ts,
            created_by=meta.actor,
        )
        self.admin_tokens[token.token_id] = token
        user = self.users.get(event.user_id)
        if user is not None and not user.disabled:
            self.admin_tokens_by_hash[token.token_hash] = token

    def _apply_project(self, event: ProjectCreated | ProjectUpdated, meta: EventMeta) -> None:
        match event:
            case ProjectCreated():
                self.projects[event.project_id] = ProjectRecord(
                    project_id=event.project_id,
                    org_id=event.org_id,
                    name=event.name,
                    archived=False,
                    created_at=meta.ts,
                    created_by=meta.actor,
                )
            case ProjectUpdated():
                current = self.projects.get(event.project_id)
                if current is not None:
                    self.projects[event.project_id] = msgspec.structs.replace(
                        current, name=event.name, archived=event.archived
                    )
                    self._index_keys_of(event.project_id)

    def _usable(self, key: ApiKeyRecord) -> bool:
        project = self.projects.get(key.project_id)
        return not key.revoked and (project is None or not project.archived)

    def _index_key(self, key: ApiKeyRecord) -> None:
        """Put the key where the data plane will find it: usable, dormant (project archived) or
        nowhere (revoked)."""
        self.api_keys_by_hash.pop(key.key_hash, None)
        self.dormant_keys_by_hash.pop(key.key_hash, None)
        if self._usable(key):
            self.api_keys_by_hash[key.key_hash] = key
        elif not key.revoked:
            self.dormant_keys_by_hash[key.key_hash] = key

    def _index_keys_of(self, project_id: str) -> None:
        """After an archive or a restore: the project's keys leave or rejoin the hot-path lookup."""
        for key in self.api_keys.values():
            if key.project_id == project_id:
                self._index_key(key)

    def _apply_key(self, event: ApiKeyIssued | ApiKeyRevoked, meta: EventMeta) -> None:
        match event:
            case ApiKeyIssued():
                key = ApiKeyRecord(
                    key_id=event.key_id,
                    org_id=event.org_id,
                    project_id=event.project_id,
                    name=event.name,
                    key_hash=event.key_hash,
                    key_prefix=event.key_prefix,
                    created_at=meta.ts,
                    created_by=meta.actor,
                )
                self.api_keys[key.key_id] = key
                self._index_key(key)
            case ApiKeyRevoked():
                current = self.api_keys.get(event.key_id)
                if current is not None:
                    revoked = msgspec.structs.replace(current, revoked=True)
                    self.api_keys[event.key_id] = revoked
                    self._index_key(revoked)

    def _apply_integration(self, event: ConfigEvent) -> None:
        match event:
            case IntegrationCreated():
                self.integrations[event.provider_slug] = event
            case CredentialsRotated():
                self._replace_integration(
                    event.provider_slug,
                    credential_version=event.credential_version,
                    credential_fingerprint=event.credential_fingerprint,
                )
            case IntegrationModelsSet():
                self._replace_integration(event.provider_slug, enabled_models=event.enabled_models)
            case IntegrationUpdated():
                self._replace_integration(
                    event.provider_slug,
                    name=event.name,
                    description=event.description,
                    project_scope=event.project_scope,
                    custom_host=event.custom_host,
                    api_format=event.api_format,
                    allow_http=event.allow_http,
                    credential_version=event.credential_version,
                )
            case IntegrationDisabled():
                current = self.integrations.pop(event.provider_slug, None)
                if current is not None:
                    self.disabled_integrations[event.provider_slug] = current
            case IntegrationEnabled():
                current = self.disabled_integrations.pop(event.provider_slug, None)
                if current is not None:
                    self.integrations[event.provider_slug] = current

    def _replace_integration(self, slug: str, **changes: object) -> None:
        for table in (self.integrations, self.disabled_integrations):
            current = table.get(slug)
            if current is not None:
                table[slug] = msgspec.structs.replace(current, **changes)
