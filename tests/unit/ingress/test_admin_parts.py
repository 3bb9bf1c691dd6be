"""Parts of the admin API that need no stack: admin-token and gateway-key refusals, the If-Match
header, and the change history's before/after, filters and visibility."""

from __future__ import annotations

import time

import msgspec
import pytest
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common.config_events import (
    AdminTokenIssued,
    ApiKeyIssued,
    CatalogEntrySet,
    CatalogPrices,
    ConfigEnvelope,
    ConfigEvent,
    CredentialsRotated,
    CustomModelRegistered,
    CustomModelUpdated,
    IntegrationCreated,
    IntegrationUpdated,
    ProjectCreated,
    ProjectUpdated,
    UserCreatedV2,
    UserDisabled,
    aggregate_of,
)
from keyrail_common.config_state import ConfigState, EventMeta
from keyrail_common.registry import load_registry
from keyrail_common.security import hash_secret
from keyrail_ingress.admin.command import _expected_version
from keyrail_ingress.admin.history import ChangeHistory
from keyrail_ingress.admin.integration_checks import credential_fingerprint
from keyrail_ingress.auth import INVALID_ADMIN_TOKEN, admin_user_for, key_refusal


def request(token: str = "", **headers: str) -> Request:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    if token:
        raw.append((b"authorization", f"Bearer {token}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


class Replay:
    """A state and its change history, fed as the projection feeds them."""

    def __init__(self) -> None:
        self.state = ConfigState()
        self.history = ChangeHistory()
        self.seq = 0

    def __call__(self, event: ConfigEvent, actor: str = "user_owner", ts: float = 0.0) -> None:
        self.seq += 1
        aggregate, aggregate_id = aggregate_of(event)
        meta = EventMeta(self.seq, f"{aggregate}.{aggregate_id}", actor, ts or float(self.seq))
        envelope = ConfigEnvelope(event=event, actor=actor, ts=meta.ts)
        self.history(self.state, meta, envelope, lambda: self.state.apply(event, meta))


def token_event(token_id: str, user_id: str, expires_at: float | None = None) -> AdminTokenIssued:
    return AdminTokenIssued(
        token_id=token_id,
        user_id=user_id,
        name=token_id,
        token_hash=hash_secret(f"kra-{token_id}"),
        token_prefix="kra-abcd",
        expires_at=expires_at,
    )


def test_an_admin_token_is_refused_when_unknown_expired_or_of_a_disabled_user() -> None:
    replay = Replay()
    replay(UserCreatedV2(user_id="user_a", org_id="org_1", name="A"))
    replay(token_event("tok_live", "user_a"))
    replay(token_event("tok_old", "user_a", expires_at=time.time() - 5))

    caller = admin_user_for(replay.state, request("kra-tok_live"))
    assert not isinstance(caller, str) and caller[0].user_id == "user_a"
    assert admin_user_for(replay.state, request()) == INVALID_ADMIN_TOKEN
    assert admin_user_for(replay.state, request("kra-nope")) == INVALID_ADMIN_TOKEN
    expired = admin_user_for(replay.state, request("kra-tok_old"))
    assert isinstance(expired, str) and expired.startswith("This admin token expired at ")
    replay(UserDisabled(user_id="user_a"))
    assert admin_user_for(replay.state, request("kra-tok_live")) == INVALID_ADMIN_TOKEN


def test_a_gateway_key_of_an_archived_project_is_refused_saying_so() -> None:
    replay = Replay()
    replay(ProjectCreated(project_id="proj_a", org_id="org_1", name="A"))
    replay(
        ApiKeyIssued(
            key_id="key_1",
            org_id="org_1",
            project_id="proj_a",
            name="k",
            key_hash=hash_secret("kr-one"),
            key_prefix="kr-one",
        )
    )
    replay(ProjectUpdated(project_id="proj_a", name="A", archived=True))

    archived = key_refusal(replay.state, request("kr-one"))
    assert (archived.http_status, archived.code) == (403, "project_archived") and "proj_a" in archived.message
    unknown = key_refusal(replay.state, request("kr-two"))
    assert (unknown.http_status, unknown.code) == (401, "invalid_api_key")


@pytest.mark.parametrize(
    ("header", "version"), [('"12"', 12), ("12", 12), ('W/"12"', 12), (' "7" ', 7), (None, None)]
)
def test_if_match_carries_the_version(header: str | None, version: int | None) -> None:
    headers = {"if_match": header} if header is not None else {}
    assert _expected_version(request(**headers), None) == version


def test_a_malformed_if_match_or_one_that_disagrees_with_the_body_is_a_400() -> None:
    class Body(msgspec.Struct):
        version: int | None = None

    bad = _expected_version(request(if_match="soon"), None)
    assert isinstance(bad, Response) and bad.status_code == 400
    both = _expected_version(request(if_match='"3"'), Body(version=4))
    assert isinstance(both, Response) and b'"param":"version"' in bytes(both.body)
    assert _expected_version(request(if_match='"4"'), Body(version=4)) == 4
    assert _expected_version(request(), Body(version=9)) == 9


def integration(slug: str, scope: object = "all") -> IntegrationCreated:
    return msgspec.convert(
        {
            "integration_id": f"int_{slug}",
            "org_id": "org_1",
            "name": slug,
            "provider": "openai",
            "provider_slug": slug,
            "project_scope": scope,
            "enabled_models": "all",
            "credential_ref": f"integrations/org_1/{slug}",
            "credential_version": 1,
        },
        IntegrationCreated,
    )


def test_the_history_records_before_and_after_of_the_fields_that_changed() -> None:
    replay = Replay()
    replay(ProjectCreated(project_id="proj_a", org_id="org_1", name="A"))
    replay(integration("openai-a"))
    replay(
        IntegrationUpdated(
            provider_slug="openai-a",
            name="renamed",
            description="",
            project_scope=["proj_a"],
            custom_host="",
            api_format="openai",
            allow_http=False,
            credential_version=2,
        ),
        actor="user_ada",
    )
    replay(CredentialsRotated(provider_slug="openai-a", credential_version=3))

    rotated, updated, created = replay.history.query(None, "integration", "openai-a")[:3]
    assert created.type == "IntegrationCreated" and created.changes["name"].before is None
    assert updated.actor == "user_ada" and updated.seq == 3
    assert {f: (c.before, c.after) for f, c in updated.changes.items()} == {
        "name": ("openai-a", "renamed"),
        "project_scope": ("all", ["proj_a"]),
        "credential_version": (1, 2),
    }
    assert {f: (c.before, c.after) for f, c in rotated.changes.items()} == {"credential_version": (2, 3)}
    assert "credential_ref" not in created.changes and "version" not in created.changes


def test_the_history_filters_by_actor_and_time_and_shows_a_project_role_its_projects_only() -> None:
    replay = Replay()
    replay(ProjectCreated(project_id="proj_a", org_id="org_1", name="A"), ts=100.0)
    replay(ProjectCreated(project_id="proj_b", org_id="org_1", name="B"), ts=200.0, actor="user_b")
    replay(UserCreatedV2(user_id="user_x", org_id="org_1", name="X"), ts=300.0)
    replay(integration("openai-everywhere"), ts=400.0)
    replay(integration("openai-b", ["proj_b"]), ts=500.0)

    def ids(*args: object, **kwargs: object) -> list[str]:
        return [e.aggregate_id for e in replay.history.query(*args, **kwargs)]  # type: ignore[arg-type]

    assert ids(None) == ["openai-b", "openai-everywhere", "user_x", "proj_b", "proj_a"]
    assert ids(None, actor="user_b") == ["proj_b"]
    assert ids(None, since=300.0) == ["openai-b", "openai-everywhere", "user_x"]
    assert ids(None, limit=2) == ["openai-b", "openai-everywhere"]
    assert ids(frozenset({"proj_a"})) == ["openai-everywhere", "proj_a"]  # no user, no other project
    assert ids(frozenset({"proj_b"})) == ["openai-b", "openai-everywhere", "proj_b"]


def test_the_history_pages_older_changes_before_a_sequence_without_gaps_or_repeats() -> None:
    replay = Replay()
    for n in range(7):
        replay(ProjectCreated(project_id=f"proj_{n}", org_id="org_1", name=f"P{n}"), ts=100.0 + n)
    pages: list[list[str]] = []
    before = 0
    while True:
        page = replay.history.query(None, limit=3, before_seq=before)
        pages.append([e.aggregate_id for e in page])
        if len(page) < 3:
            break
        before = page[-1].seq
    assert pages == [["proj_6", "proj_5", "proj_4"], ["proj_3", "proj_2", "proj_1"], ["proj_0"]]
    # The cursor combines with the filters: older than proj_3, projects, two at most.
    proj_3 = replay.history.query(None, "project", "proj_3")[0].seq
    older = replay.history.query(None, "project", limit=2, before_seq=proj_3)
    assert [e.aggregate_id for e in older] == ["proj_2", "proj_1"]


def test_a_credential_fingerprint_shows_four_characters_of_a_long_key_only() -> None:
    registry = load_registry()
    openai_entry, vertex, azure = (registry.get(p) for p in ("openai", "vertex", "azure"))
    assert openai_entry is not None and vertex is not None and azure is not None
    key = "sk-proj-" + "x" * 40 + "3f9a"
    assert credential_fingerprint(openai_entry, {"api_key": key}) == "…3f9a"
    assert credential_fingerprint(openai_entry, {"api_key": "short-key"}) == ""  # would give half away
    account = {"type": "service_account", "private_key_id": "0123456789abcdef0123", "private_key": "-----"}
    assert (
        credential_fingerprint(vertex, {"service_account_json": account, "region": "us-central1"}) == "…0123"
    )
    creds = {"api_key": "a" * 28 + "7c2e", "resource_name": "contoso", "api_version": "v1", "deployments": {}}
    assert credential_fingerprint(azure, creds) == "…7c2e"


def test_the_history_shows_custom_models_and_catalog_entries_to_whom_may_read_them() -> None:
    replay = Replay()
    replay(ProjectCreated(project_id="proj_a", org_id="org_1", name="A"))
    replay(ProjectCreated(project_id="proj_b", org_id="org_1", name="B"))
    replay(integration("openai-b", ["proj_b"]))
    registered = CustomModelRegistered(
        provider_slug="openai-b",
        model_slug="ft-v3",
        base_model="openai/gpt-4o-mini",
        input_price_per_mtok=0.3,
    )
    replay(registered)
    replay(CustomModelUpdated(provider_slug="openai-b", model_slug="ft-v3", base_model="openai/gpt-4o-mini"))
    override = CatalogEntrySet(
        catalog_id="openai/gpt-4o-mini",
        provider="openai",
        model="gpt-4o-mini",
        schema="openai",
        context_window=128000,
        prices=CatalogPrices(input=0.2, output=0.6, cached_input=0.075),
    )
    replay(override)

    catalog, updated, created = replay.history.query(None)[:3]
    assert (created.type, created.aggregate, created.aggregate_id) == (
        "CustomModelRegistered",
        "custommodel",
        "openai-b/ft-v3",
    )
    assert created.changes["input_price_per_mtok"].after == 0.3
    assert {f: (c.before, c.after) for f, c in updated.changes.items()} == {
        "input_price_per_mtok": (0.3, None),
        "price_version": ("custom:openai-b/ft-v3@4", "custom:openai-b/ft-v3@5"),
    }
    assert catalog.changes["source"].before == "seed" and catalog.changes["source"].after == "override"
    assert catalog.changes["prices"].after["version"] == "catalog@6"
    # A custom model is read where its integration is; the catalog by everyone.
    seen_by_a = {e.aggregate for e in replay.history.query(frozenset({"proj_a"}))}
    assert "catalog" in seen_by_a and "custommodel" not in seen_by_a
    assert "custommodel" in {e.aggregate for e in replay.history.query(frozenset({"proj_b"}))}
