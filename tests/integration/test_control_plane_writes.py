"""Writes on the control plane: concurrent changes of one version, and bad input that leaves no
event and no Vault write behind."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import nats
import pytest

from keyrail_common.config_events import IntegrationModelsSet, UserUpdated
from keyrail_common.projection import ConfigProjection, ConfigPublisher
from tests.support.control_plane import (
    config_last_seq,
    created,
    integration,
    integration_body,
    member,
    project,
    vault_secret,
    vault_version,
)
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "openai-writes"
HEADER_VALUE = "hdr-writes-5b0d7c1e"


@pytest.fixture(scope="module")
def home(stack: KeyrailStack) -> str:
    """The project this module's integrations serve: scoped to it, they never take part in the
    routing of the other tests' `openai/<model>` requests (which try every in-scope integration)."""
    return project(stack, "writes")


@pytest.fixture(scope="module")
def slug(stack: KeyrailStack, upstream: MockUpstream, home: str) -> str:
    integration(stack, upstream, SLUG, [home], custom_auth_headers={"X-Team": HEADER_VALUE})
    return SLUG


async def _patch_together(
    stack: KeyrailStack, path: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    auth = {"Authorization": f"Bearer {OWNER_TOKEN}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=auth, timeout=30) as client:
        return list(await asyncio.gather(*(client.patch(path, json=body) for body in bodies)))


def test_two_changes_of_one_version_one_wins_the_other_is_409_and_nothing_is_lost(
    stack: KeyrailStack, slug: str
) -> None:
    path = f"/admin/v1/integrations/{slug}"
    for round_ in range(8):
        version = stack.admin("GET", path).json()["version"]
        bodies = [
            {"description": f"round {round_} by A", "version": version},
            {"description": f"round {round_} by B", "version": version},
        ]
        answers = asyncio.run(_patch_together(stack, path, bodies))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409], [a.text for a in answers]
        (won,) = [a for a in answers if a.status_code == 200]
        (lost,) = [a for a in answers if a.status_code == 409]
        assert (
            lost.json()["error"]["code"] == "version_conflict" and lost.json()["error"]["param"] == "version"
        )
        # The winner's change is the one stored, exactly once; the loser's nowhere.
        now = stack.admin("GET", path).json()
        assert now["description"] == won.json()["description"] and now["version"] == won.json()["version"]
        history = stack.admin("GET", f"/admin/v1/events?aggregate=integration/{slug}&limit=5").json()["data"]
        newest = history[0]
        assert newest["seq"] == now["version"] and newest["type"] == "IntegrationUpdated"
        assert newest["changes"]["description"]["after"] == now["description"]
        (loser_text,) = [b["description"] for b in bodies if b["description"] != now["description"]]
        assert loser_text not in str(history)


async def _append_twice(stack: KeyrailStack, slug: str, version: int) -> list[int | BaseException]:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        projection = ConfigProjection(js)
        await projection.start()
        publisher = ConfigPublisher(js, projection)
        event = IntegrationModelsSet(provider_slug=slug, enabled_models=["gpt-4o-mini"])
        appends = [publisher.publish(event, actor="test", expected_version=version) for _ in range(2)]
        return list(await asyncio.gather(*appends, return_exceptions=True))
    finally:
        await nc.close()


def test_jetstream_itself_refuses_the_second_append_of_one_version(stack: KeyrailStack, slug: str) -> None:
    """Below the API: two writers that both passed every check on the same version (the race the
    ingress's own early check cannot see) still cannot both append."""
    version = stack.admin("GET", f"/admin/v1/integrations/{slug}").json()["version"]
    before = config_last_seq(stack)
    results = asyncio.run(_append_twice(stack, slug, version))
    assert sorted(type(r).__name__ for r in results) == ["ConcurrencyConflict", "int"], results
    assert config_last_seq(stack) == before + 1


def test_a_change_without_a_version_is_428_and_with_an_old_one_409(stack: KeyrailStack, slug: str) -> None:
    path = f"/admin/v1/integrations/{slug}"
    before = config_last_seq(stack)
    missing = stack.admin("PATCH", path, {"description": "no version"})
    assert missing.status_code == 428 and missing.json()["error"]["param"] == "If-Match"
    stale = stack.admin("PATCH", path, {"description": "stale"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    assert config_last_seq(stack) == before


def _bad_inputs(
    stack: KeyrailStack, upstream: MockUpstream, slug: str
) -> list[tuple[str, str, Any, str, int]]:
    """(method, path, body, the field the 4xx names, status); the version is the current one."""
    path = f"/admin/v1/integrations/{slug}"
    version = stack.admin("GET", path).json()["version"]
    project_id = project(stack, "bad input")
    good = integration_body(upstream, "openai-never-made", "all")
    return [
        ("PATCH", path, {"allow_http": "yes", "version": version}, "allow_http", 400),
        ("PATCH", path, {"descripton": "typo", "version": version}, "descripton", 400),
        ("PATCH", path, {"provider": "groq", "version": version}, "provider", 400),
        ("PATCH", path, {"provider_slug": "other", "version": version}, "provider_slug", 400),
        ("PATCH", path, {"credentials": {"api_key": "sk-x"}, "version": version}, "credentials", 400),
        ("PATCH", path, {"project_scope": ["proj_missing"], "version": version}, "project_scope", 400),
        ("PATCH", path, {"name": "  ", "version": version}, "name", 400),
        # A rejected custom host stops the headers from reaching Vault as well.
        (
            "PATCH",
            path,
            {
                "custom_host": "http://169.254.169.254/x",
                "custom_auth_headers": {"X-Team": "new"},
                "version": version,
            },
            "custom_host",
            400,
        ),
        (
            "PATCH",
            path,
            {"custom_host": "http://example.com/v1", "allow_http": False, "version": version},
            "custom_host",
            400,
        ),
        ("PATCH", path, {"api_format": "gemini", "version": version}, "api_format", 400),
        ("PATCH", path, {"description": "stale", "version": version - 1}, "version", 409),
        ("PUT", f"{path}/credentials", {"credentials": {}, "version": version}, "credentials.api_key", 400),
        (
            "PUT",
            f"{path}/credentials",
            {"credentials": {"api_key": 7}, "version": version},
            "credentials.api_key",
            400,
        ),
        (
            "PUT",
            f"{path}/models",
            {"enabled_models": ["gpt-nope"], "version": version},
            "enabled_models",
            400,
        ),
        ("POST", "/admin/v1/integrations", {**good, "provider_slug": "Bad Slug!"}, "provider_slug", 400),
        ("POST", "/admin/v1/integrations", {**good, "provider_slug": slug}, "provider_slug", 409),
        ("POST", "/admin/v1/integrations", {**good, "enabled_models": "some"}, "enabled_models", 400),
        (
            "POST",
            "/admin/v1/users",
            {"name": "x", "project_roles": {"proj_missing": "developer"}},
            "project_roles",
            400,
        ),
        (
            "POST",
            "/admin/v1/users",
            {"name": "x", "project_roles": {project_id: "admin"}},
            "project_roles[...]",  # msgspec's path for a map's value
            400,
        ),
        ("POST", "/admin/v1/users", {"name": "x", "owner": "yes"}, "owner", 400),
        (
            "POST",
            "/admin/v1/users/user_owner/tokens",
            {"expires_at": "2001-01-01T00:00:00Z"},
            "expires_at",
            400,
        ),
        (
            "POST",
            "/admin/v1/users/user_owner/tokens",
            {"expires_at": "2099-01-01T00:00:00"},
            "expires_at",
            400,
        ),
        ("PATCH", f"/admin/v1/projects/{project_id}", {"archived": 1, "version": 0}, "archived", 400),
        ("POST", f"/admin/v1/projects/{project_id}/keys", {"name": ["x"]}, "name", 400),
    ]


def test_bad_input_is_a_4xx_naming_the_field_and_leaves_no_event_and_no_vault_write(
    stack: KeyrailStack, upstream: MockUpstream, slug: str
) -> None:
    cases = _bad_inputs(stack, upstream, slug)
    events, vault = config_last_seq(stack), vault_version(stack, slug)
    for method, path, body, field, status in cases:
        answer = stack.admin(method, path, body)
        assert answer.status_code == status, (method, path, body, answer.text)
        error = answer.json()["error"]
        assert error["param"] == field, (body, error)
        assert field.removesuffix("[...]") in error["message"] or status == 409, error
    assert config_last_seq(stack) == events, "a refused request appended an event"
    assert vault_version(stack, slug) == vault, "a refused request wrote to Vault"
    assert vault_version(stack, "openai-never-made") == 0
    refused = stack.admin("PATCH", f"/admin/v1/integrations/{slug}", {"provider": "groq"})
    assert "create a new integration" in refused.json()["error"]["message"]
    bad_if_match = stack.admin("PATCH", f"/admin/v1/integrations/{slug}", {}, headers={"If-Match": "soon"})
    assert bad_if_match.status_code == 400 and bad_if_match.json()["error"]["param"] == "If-Match"


def test_patch_changes_what_may_change_and_custom_headers_go_to_vault_only(
    stack: KeyrailStack, upstream: MockUpstream, slug: str, home: str
) -> None:
    path = f"/admin/v1/integrations/{slug}"
    before = stack.admin("GET", path).json()
    project_id = project(stack, "patched scope")
    patch = {
        "name": "Renamed",
        "description": "patched",
        "project_scope": [project_id],
        "custom_auth_headers": {"X-Team": "hdr-rotated-2f9e"},
        "version": before["version"],
    }
    after = stack.admin("PATCH", path, patch)
    assert after.status_code == 200, after.text
    shown = after.json()
    assert (shown["name"], shown["description"], shown["project_scope"]) == (
        "Renamed",
        "patched",
        [project_id],
    )
    assert shown["provider"] == before["provider"] and shown["custom_host"] == before["custom_host"]
    assert shown["credential_version"] == before["credential_version"] + 1
    stored = vault_secret(stack, slug, shown["credential_version"])
    assert stored == {"api_key": upstream.api_key, "custom_auth_headers": {"X-Team": "hdr-rotated-2f9e"}}
    assert "hdr-rotated-2f9e" not in after.text
    # Back to the provider's own host: api_format follows the provider.
    version = shown["version"]
    dropped = stack.admin("PATCH", path, {"custom_host": "", "allow_http": False, "version": version})
    assert dropped.status_code == 200, dropped.text
    assert (dropped.json()["custom_host"], dropped.json()["api_format"]) == (None, "openai")
    restored = stack.admin(
        "PATCH",
        path,
        {
            "custom_host": upstream.url,
            "allow_http": True,
            "project_scope": [home],
            "version": dropped.json()["version"],
        },
    )
    assert restored.status_code == 200, restored.text


def test_a_disabled_integration_is_refused_by_the_data_plane_and_keeps_its_slug(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    project_id = project(stack, "disabled integration")
    key = created(stack.admin("POST", f"/admin/v1/projects/{project_id}/keys", {}))["key"]
    integration(stack, upstream, "openai-to-disable", [project_id])
    path = "/admin/v1/integrations/openai-to-disable"
    chat = {"model": "openai-to-disable/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"Authorization": f"Bearer {key}"}
    assert (
        httpx.post(f"{stack.url}/v1/chat/completions", json=chat, headers=auth, timeout=30).status_code == 200
    )
    disabled = stack.change("DELETE", path, of=path)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    for headers, body in (
        (auth, chat),
        ({**auth, "x-keyrail-provider": "openai-to-disable"}, {**chat, "model": "gpt-4o-mini"}),
    ):
        refused = httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "integration_disabled"
    models = httpx.get(f"{stack.url}/v1/models", headers=auth, timeout=10).json()["data"]
    assert not [m for m in models if m["id"].startswith("openai-to-disable/")]
    again = stack.change("DELETE", path, of=path)  # no change, no new event
    assert again.status_code == 200 and again.json()["version"] == disabled.json()["version"]
    taken = stack.admin(
        "POST", "/admin/v1/integrations", integration_body(upstream, "openai-to-disable", "all")
    )
    assert taken.status_code == 409
    changed = stack.change("PATCH", path, {"name": "back?"}, of=path)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "integration_disabled"
    assert '{"disabled": false}' in changed.json()["error"]["message"]  # says how to come back

    # Re-enabled, alone in its PATCH: routed again, as it was.
    mixed = stack.change("PATCH", path, {"disabled": False, "name": "back"}, of=path)
    assert mixed.status_code == 400 and mixed.json()["error"]["param"] == "name"
    enabled = stack.change("PATCH", path, {"disabled": False}, of=path)
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert enabled.json()["credential_version"] == disabled.json()["credential_version"]
    served = httpx.post(f"{stack.url}/v1/chat/completions", json=chat, headers=auth, timeout=30)
    assert served.status_code == 200 and served.headers["x-keyrail-provider-slug"] == "openai-to-disable"
    history = stack.admin("GET", "/admin/v1/events?aggregate=integration/openai-to-disable&limit=1").json()
    assert history["data"][0]["type"] == "IntegrationEnabled"
    assert history["data"][0]["changes"]["disabled"] == {"before": True, "after": False}
    via_patch = stack.change("PATCH", path, {"disabled": True}, of=path)
    assert (
        via_patch.status_code == 400 and "DELETE /admin/v1/integrations/openai-to-disable" in via_patch.text
    )


def test_a_re_enabled_user_signs_in_with_new_tokens_only(stack: KeyrailStack) -> None:
    someone = member(stack, "comes back", {project(stack, "comeback"): "developer"})
    path = f"/admin/v1/users/{someone.user_id}"
    assert stack.change("DELETE", path, of=path).json()["disabled"] is True
    assert stack.admin("GET", "/admin/v1/projects", token=someone.token).status_code == 401
    enabled = stack.change("PATCH", path, {"disabled": False}, of=path)
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert (
        stack.admin("GET", "/admin/v1/projects", token=someone.token).status_code == 401
    )  # cut off for good
    (old,) = stack.admin("GET", f"{path}/tokens").json()["data"]
    assert old["revoked"] is True
    fresh = created(stack.admin("POST", f"{path}/tokens", {"name": "after"}))["token"]
    assert stack.admin("GET", "/admin/v1/projects", token=fresh).status_code == 200


async def _decide_on_all_twice(stack: KeyrailStack, user_ids: list[str]) -> list[int | BaseException]:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        projection = ConfigProjection(js)
        await projection.start()
        publisher = ConfigPublisher(js, projection)
        appends = []
        for user_id in user_ids:
            user = projection.state.users[user_id]
            event = UserUpdated(
                user_id=user_id, name="renamed", email="", owner=False, project_roles=user.project_roles
            )
            version = projection.state.version("user", user_id)
            appends.append(
                publisher.publish(event, actor="test", expected_version=version, decided_on_all=True)
            )
        return list(await asyncio.gather(*appends, return_exceptions=True))
    finally:
        await nc.close()


def test_last_owner_guard_two_owners_demoted_at_once_cannot_both_pass(stack: KeyrailStack) -> None:
    """The race the guard alone cannot see: two owners each demote the other at the same moment,
    each having checked that the other remains. The appends are on two different users, so only
    the whole-configuration expectation can refuse the second."""
    users = [
        created(stack.admin("POST", "/admin/v1/users", {"name": f"owner {n}", "owner": True}))["id"]
        for n in "AB"
    ]
    before = config_last_seq(stack)
    results = asyncio.run(_decide_on_all_twice(stack, users))
    assert sorted(type(r).__name__ for r in results) == ["ConfigMovedOn", "int"], results
    assert config_last_seq(stack) == before + 1


def test_an_owner_demotion_after_unrelated_changes_passes_once_the_ingress_has_applied_them(
    stack: KeyrailStack,
) -> None:
    """Expecting the whole configuration does not make owner changes fail spuriously: changes made
    before (here a project and a user elsewhere) are applied by the ingress, so the demotion's
    expected sequence is the stream's last, and it is stored exactly once."""
    user_id = created(stack.admin("POST", "/admin/v1/users", {"name": "owner C", "owner": True}))["id"]
    project(stack, "unrelated before demotion")
    path = f"/admin/v1/users/{user_id}"
    version = stack.admin("GET", path).json()["version"]
    before = config_last_seq(stack)
    demoted = stack.admin("PATCH", path, {"owner": False}, headers={"If-Match": str(version)})
    assert demoted.status_code == 200 and demoted.json()["owner"] is False
    assert config_last_seq(stack) == before + 1


def test_the_change_history_pages_with_next_cursor_and_refuses_a_cursor_it_never_gave(
    stack: KeyrailStack,
) -> None:
    names = [f"paged {n}" for n in range(5)]
    ids = [project(stack, name) for name in names]
    seen: list[str] = []
    seqs: list[int] = []
    cursor = ""
    for _ in range(10):
        query = "/admin/v1/events?aggregate=project&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = stack.admin("GET", query).json()
        seen += [e["aggregate_id"] for e in page["data"]]
        seqs += [e["seq"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    mine = [i for i in seen if i in ids]
    assert mine == ids[::-1]  # newest first, each once, across pages
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs))  # no repeat, no reorder
    for bad in ("42", "seq-x", "seq-0"):
        refused = stack.admin("GET", f"/admin/v1/events?cursor={bad}")
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "cursor"
