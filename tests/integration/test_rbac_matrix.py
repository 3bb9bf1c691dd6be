"""Every admin route x every kind of caller, on the running stack, against the RBAC table.

The expected status of each cell is computed from the route's rule in rbac.RULES (the table the
ingress enforces), with a rule of thumb written here independently of rbac.authorize: an owner
may do what the table gives owners; a project role may do what the table gives that role, on a
target of its own project or on a list answered for its own projects; nobody else gets in. Every
target below belongs to project P (the integration is scoped to P), none to project Q.

The routes come from the running code (admin.routes.ROUTES), so a new route fails this test
until it has a request below; the success status is the one the API docs promise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from keyrail_ingress.admin.routes import ROUTES
from keyrail_ingress.openapi import build_document
from keyrail_ingress.rbac import Role, Rule, Scope
from tests.support.control_plane import api_key, integration, member, project
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

CALLERS = (
    "owner",
    "project_admin_of_P",
    "project_admin_of_Q",
    "developer_of_P",
    "the_target_user_themself",  # a developer of P, and the user the user routes name
    "gateway_key",
    "revoked_admin_token",
    "no_token",
)
UNAUTHENTICATED = {"gateway_key", "revoked_admin_token", "no_token"}
ROLE_OF = {
    "project_admin_of_P": (Role.PROJECT_ADMIN, "P"),
    "project_admin_of_Q": (Role.PROJECT_ADMIN, "Q"),
    "developer_of_P": (Role.DEVELOPER, "P"),
    "the_target_user_themself": (Role.DEVELOPER, "P"),
}


def expected_status(rule: Rule, caller: str, success: int) -> int:
    if caller in UNAUTHENTICATED:
        return 401
    if caller == "owner":
        return success if Role.OWNER in rule.roles else 403
    if caller == "the_target_user_themself" and Role.SELF in rule.roles:
        return success  # every user-scoped request below names the target user
    role, project_name = ROLE_OF[caller]
    if role not in rule.roles:
        return 403
    return success if rule.scope is Scope.MINE or project_name == "P" else 403


@dataclass
class World:
    stack: KeyrailStack
    upstream: MockUpstream
    p: str
    q: str
    slug: str
    target_user: str
    tokens: dict[str, str]  # caller -> the bearer it sends ("" for none)
    fresh: Iterator[int] = field(default_factory=itertools.count)

    def owner(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.stack.admin(method, path, body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    def version(self, path: str) -> dict[str, str]:
        return {"If-Match": str(self.owner("GET", path)["version"])}

    def new_slug(self) -> str:
        return f"openai-matrix-{next(self.fresh)}"


@pytest.fixture(scope="module")
def world(stack: KeyrailStack, upstream: MockUpstream) -> World:
    p, q = project(stack, "matrix P"), project(stack, "matrix Q")
    revoked = member(stack, "revoked owner", owner=True)
    (token,) = stack.admin("GET", f"/admin/v1/users/{revoked.user_id}/tokens").json()["data"]
    revocation = stack.admin(
        "DELETE",
        f"/admin/v1/users/{revoked.user_id}/tokens/{token['id']}",
        headers={"If-Match": str(token["version"])},
    )
    assert revocation.status_code == 200, revocation.text
    integration(stack, upstream, "openai-matrix", [p])
    target = member(stack, "target", {p: "developer"})
    tokens = {
        "owner": OWNER_TOKEN,
        "project_admin_of_P": member(stack, "admin of P", {p: "project_admin"}).token,
        "project_admin_of_Q": member(stack, "admin of Q", {q: "project_admin"}).token,
        "developer_of_P": member(stack, "developer of P", {p: "developer"}).token,
        "the_target_user_themself": target.token,
        "gateway_key": api_key(stack, p)["key"],
        "revoked_admin_token": revoked.token,
        "no_token": "",
    }
    return World(stack, upstream, p, q, "openai-matrix", target.user_id, tokens)


@dataclass(frozen=True)
class Call:
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _fresh_user(w: World) -> str:
    return str(w.owner("POST", "/admin/v1/users", {"name": "fresh"})["id"])


def _fresh_token(w: World) -> Call:
    token = w.owner("POST", f"/admin/v1/users/{w.target_user}/tokens", {"name": "fresh"})
    listed = w.owner("GET", f"/admin/v1/users/{w.target_user}/tokens")["data"]
    (row,) = [t for t in listed if t["id"] == token["id"]]
    return Call(
        f"/admin/v1/users/{w.target_user}/tokens/{token['id']}", headers={"If-Match": str(row["version"])}
    )


def _fresh_key(w: World) -> Call:
    key = w.owner("POST", f"/admin/v1/projects/{w.p}/keys", {"name": "fresh"})
    (row,) = [k for k in w.owner("GET", f"/admin/v1/projects/{w.p}/keys")["data"] if k["id"] == key["id"]]
    return Call(f"/admin/v1/projects/{w.p}/keys/{key['id']}", headers={"If-Match": str(row["version"])})


def _fresh_integration(w: World) -> Call:
    slug = w.new_slug()
    integration(w.stack, w.upstream, slug, [w.p])
    path = f"/admin/v1/integrations/{slug}"
    return Call(path, headers=w.version(path))


def _user_change(w: World) -> Call:
    path = f"/admin/v1/users/{_fresh_user(w)}"
    return Call(path, {"email": "changed@example.com"}, w.version(path))


def _user_delete(w: World) -> Call:
    path = f"/admin/v1/users/{_fresh_user(w)}"
    return Call(path, headers=w.version(path))


def _integration(w: World) -> str:
    return f"/admin/v1/integrations/{w.slug}"


def _new_virtual_model(w: World) -> dict[str, Any]:
    target = {"provider_slug": w.slug, "model": "gpt-4o-mini"}
    return {"alias": f"matrix-vm-{next(w.fresh)}", "project_scope": [w.p], "target": target}


def _new_config(w: World) -> dict[str, Any]:
    targets = [{"provider_slug": w.slug, "model": "gpt-4o-mini"}]
    return {
        "id": f"matrix-config-{next(w.fresh)}",
        "project_scope": [w.p],
        "strategy": "fallback",
        "targets": targets,
    }


def _fresh_virtual_model(w: World, change: bool = False) -> Call:
    body = _new_virtual_model(w)
    alias = body.pop("alias")
    w.owner("POST", "/admin/v1/virtual-models", {"alias": alias, **body})
    path = f"/admin/v1/virtual-models/{alias}"
    return Call(path, body if change else None, w.version(path))


def _fresh_config(w: World, change: bool = False) -> Call:
    body = _new_config(w)
    config_id = body.pop("id")
    w.owner("POST", "/admin/v1/configs", {"id": config_id, **body})
    path = f"/admin/v1/configs/{config_id}"
    return Call(path, body if change else None, w.version(path))


def _fresh_custom_model(w: World) -> Call:
    model_slug = f"ft-matrix-{next(w.fresh)}"
    w.owner(
        "POST",
        f"{_integration(w)}/custom-models",
        {"model_slug": model_slug, "base_model": "openai/gpt-4o-mini"},
    )
    path = f"{_integration(w)}/custom-models/{model_slug}"
    return Call(path, headers=w.version(path))


def _custom_model_change(w: World) -> Call:
    fresh = _fresh_custom_model(w)
    return Call(fresh.path, {"input_price_per_mtok": 0.5}, fresh.headers)


def _fresh_catalog_entry(w: World) -> Call:
    """An owner-added entry nothing names: one a DELETE may remove."""
    path = f"/admin/v1/catalog/openai/gpt-matrix-{next(w.fresh)}"
    entry = w.owner("PUT", path, {"schema": "openai", "context_window": 1000, "prices": {"input": 1}})
    return Call(path, headers={"If-Match": str(entry["version"])})


# One request per route, fresh targets where a success changes something for good. Each is built
# as the owner just before the call, so every cell sees the same situation.
REQUESTS: dict[tuple[str, str], Callable[[World], Call]] = {
    ("POST", "/admin/v1/users"): lambda w: Call("/admin/v1/users", {"name": "made in the matrix"}),
    ("GET", "/admin/v1/users"): lambda w: Call("/admin/v1/users"),
    ("GET", "/admin/v1/users/{user_id}"): lambda w: Call(f"/admin/v1/users/{w.target_user}"),
    ("PATCH", "/admin/v1/users/{user_id}"): _user_change,
    ("DELETE", "/admin/v1/users/{user_id}"): _user_delete,
    ("POST", "/admin/v1/users/{user_id}/tokens"): lambda w: Call(
        f"/admin/v1/users/{w.target_user}/tokens", {"name": "matrix"}
    ),
    ("GET", "/admin/v1/users/{user_id}/tokens"): lambda w: Call(f"/admin/v1/users/{w.target_user}/tokens"),
    ("DELETE", "/admin/v1/users/{user_id}/tokens/{token_id}"): _fresh_token,
    ("POST", "/admin/v1/projects"): lambda w: Call("/admin/v1/projects", {"name": "made in the matrix"}),
    ("GET", "/admin/v1/projects"): lambda w: Call("/admin/v1/projects"),
    ("GET", "/admin/v1/projects/{project_id}"): lambda w: Call(f"/admin/v1/projects/{w.p}"),
    # The same name again: a change allowed or refused like any other, that leaves P as it was.
    ("PATCH", "/admin/v1/projects/{project_id}"): lambda w: Call(
        f"/admin/v1/projects/{w.p}", {"name": "matrix P"}, w.version(f"/admin/v1/projects/{w.p}")
    ),
    ("POST", "/admin/v1/projects/{project_id}/keys"): lambda w: Call(
        f"/admin/v1/projects/{w.p}/keys", {"name": "matrix"}
    ),
    ("GET", "/admin/v1/projects/{project_id}/keys"): lambda w: Call(f"/admin/v1/projects/{w.p}/keys"),
    ("DELETE", "/admin/v1/projects/{project_id}/keys/{key_id}"): _fresh_key,
    ("POST", "/admin/v1/integrations"): lambda w: Call(
        "/admin/v1/integrations",
        {"name": "m", "provider": "groq", "provider_slug": w.new_slug(), "credentials": {"api_key": "k"}},
    ),
    ("GET", "/admin/v1/integrations"): lambda w: Call("/admin/v1/integrations"),
    ("GET", "/admin/v1/integrations/{slug}"): lambda w: Call(_integration(w)),
    ("GET", "/admin/v1/integrations/{slug}/health"): lambda w: Call(f"{_integration(w)}/health"),
    ("PATCH", "/admin/v1/integrations/{slug}"): lambda w: Call(
        _integration(w), {"description": "changed in the matrix"}, w.version(_integration(w))
    ),
    ("DELETE", "/admin/v1/integrations/{slug}"): _fresh_integration,
    ("PUT", "/admin/v1/integrations/{slug}/credentials"): lambda w: Call(
        f"{_integration(w)}/credentials",
        {"credentials": {"api_key": w.upstream.api_key}},
        w.version(_integration(w)),
    ),
    ("PUT", "/admin/v1/integrations/{slug}/models"): lambda w: Call(
        f"{_integration(w)}/models", {"enabled_models": ["gpt-4o-mini"]}, w.version(_integration(w))
    ),
    ("POST", "/admin/v1/virtual-models"): lambda w: Call("/admin/v1/virtual-models", _new_virtual_model(w)),
    ("GET", "/admin/v1/virtual-models"): lambda w: Call("/admin/v1/virtual-models"),
    ("GET", "/admin/v1/virtual-models/{alias}"): lambda w: Call(_fresh_virtual_model(w).path),
    ("PUT", "/admin/v1/virtual-models/{alias}"): lambda w: _fresh_virtual_model(w, change=True),
    ("DELETE", "/admin/v1/virtual-models/{alias}"): _fresh_virtual_model,
    ("POST", "/admin/v1/configs"): lambda w: Call("/admin/v1/configs", _new_config(w)),
    ("GET", "/admin/v1/configs"): lambda w: Call("/admin/v1/configs"),
    ("GET", "/admin/v1/configs/{config_id}"): lambda w: Call(_fresh_config(w).path),
    ("PUT", "/admin/v1/configs/{config_id}"): lambda w: _fresh_config(w, change=True),
    ("DELETE", "/admin/v1/configs/{config_id}"): _fresh_config,
    ("POST", "/admin/v1/integrations/{slug}/custom-models"): lambda w: Call(
        f"{_integration(w)}/custom-models",
        {"model_slug": f"ft-new-{next(w.fresh)}", "base_model": "openai/gpt-4o-mini"},
    ),
    ("GET", "/admin/v1/integrations/{slug}/custom-models"): lambda w: Call(
        f"{_integration(w)}/custom-models"
    ),
    ("GET", "/admin/v1/integrations/{slug}/custom-models/{model_slug}"): lambda w: Call(
        _fresh_custom_model(w).path
    ),
    ("PATCH", "/admin/v1/integrations/{slug}/custom-models/{model_slug}"): _custom_model_change,
    ("DELETE", "/admin/v1/integrations/{slug}/custom-models/{model_slug}"): _fresh_custom_model,
    ("GET", "/admin/v1/catalog"): lambda w: Call("/admin/v1/catalog?provider=openai"),
    ("PUT", "/admin/v1/catalog/{provider}/{model}"): lambda w: Call(
        f"/admin/v1/catalog/openai/gpt-matrix-{next(w.fresh)}",
        {"schema": "openai", "context_window": 1000, "prices": {"input": 1}},
    ),
    ("DELETE", "/admin/v1/catalog/{provider}/{model}"): _fresh_catalog_entry,
    ("GET", "/admin/v1/activity"): lambda w: Call("/admin/v1/activity?limit=1"),
    ("GET", "/admin/v1/costs"): lambda w: Call("/admin/v1/costs?group_by=slug"),
    ("POST", "/admin/v1/sql"): lambda w: Call("/admin/v1/sql", {"sql": "SELECT 1"}),
    ("GET", "/admin/v1/events"): lambda w: Call("/admin/v1/events?limit=1"),
}


def _success_status(method: str, path: str) -> int:
    responses = build_document()["paths"][path][method.lower()]["responses"]
    (status,) = [int(s) for s in responses if s.startswith("2")]
    return status


def test_every_admin_route_has_a_request_in_the_matrix() -> None:
    assert set(REQUESTS) == set(ROUTES)


def test_every_route_answers_every_caller_as_the_rbac_table_says(world: World) -> None:
    mismatches = []
    cells = 0
    for (method, template), rule in sorted(ROUTES.items()):
        success = _success_status(method, template)
        for caller in CALLERS:
            call = REQUESTS[(method, template)](world)
            headers = dict(call.headers)
            if world.tokens[caller]:
                headers["Authorization"] = f"Bearer {world.tokens[caller]}"
            response = httpx.request(
                method, f"{world.stack.url}{call.path}", json=call.body, headers=headers, timeout=30
            )
            cells += 1
            want = expected_status(rule, caller, success)
            if response.status_code != want:
                mismatches.append(
                    f"{method} {template} as {caller}: {response.status_code}, want {want}: "
                    + response.text[:200]
                )
            elif want == 403:
                message = response.json()["error"]["message"]
                assert " needs the role " in message and "owner" in message, message
    assert cells == len(ROUTES) * len(CALLERS)
    assert not mismatches, "\n".join(mismatches)


def test_lists_show_a_project_role_its_own_projects_only(world: World) -> None:
    def ids(caller: str, path: str, key: str = "id") -> set[str]:
        response = world.stack.admin("GET", path, token=world.tokens[caller])
        assert response.status_code == 200, response.text
        return {row[key] for row in response.json()["data"]}

    assert ids("project_admin_of_Q", "/admin/v1/projects") == {world.q}
    assert ids("developer_of_P", "/admin/v1/projects") == {world.p}
    # A user who holds no role anywhere still reaches their own record and tokens, nothing else.
    loner = member(world.stack, "no role")
    assert world.stack.admin("GET", f"/admin/v1/users/{loner.user_id}", token=loner.token).status_code == 200
    own = world.stack.admin("POST", f"/admin/v1/users/{loner.user_id}/tokens", {}, token=loner.token)
    assert own.status_code == 201, own.text
    nothing = world.stack.admin("GET", "/admin/v1/projects", token=loner.token)
    assert nothing.status_code == 403 and "you hold no role" in nothing.json()["error"]["message"]
    assert {world.p, world.q} <= ids("owner", "/admin/v1/projects")
    assert world.slug in ids("developer_of_P", "/admin/v1/integrations", "provider_slug")
    assert world.slug not in ids("project_admin_of_Q", "/admin/v1/integrations", "provider_slug")
    q_history = world.stack.admin("GET", "/admin/v1/events", token=world.tokens["project_admin_of_Q"])
    aggregates = {(e["aggregate"], e["aggregate_id"]) for e in q_history.json()["data"]}
    assert ("project", world.q) in aggregates and ("project", world.p) not in aggregates
    assert not {a for a, _ in aggregates} & {"user", "admintoken", "org"}  # owners only
    # Asking for another project's activity by name is refused, naming the role it would need.
    refused = world.stack.admin(
        "GET", f"/admin/v1/activity?project_id={world.p}", token=world.tokens["project_admin_of_Q"]
    )
    assert refused.status_code == 403 and f"project '{world.p}'" in refused.json()["error"]["message"]


def test_a_project_admin_manages_only_routing_records_whose_whole_scope_they_administer(world: World) -> None:
    admin_of_p = world.tokens["project_admin_of_P"]
    for scope in ("all", [world.p, world.q]):
        body = {**_new_config(world), "project_scope": scope}
        refused = world.stack.admin("POST", "/admin/v1/configs", body, token=admin_of_p)
        assert refused.status_code == 403, refused.text
        assert "owner" in refused.json()["error"]["message"]
    # An owner's config scoped to all: every project's members read it, no project admin changes it.
    shared = world.owner("POST", "/admin/v1/configs", {**_new_config(world), "project_scope": "all"})
    path = f"/admin/v1/configs/{shared['id']}"
    assert world.stack.admin("GET", path, token=world.tokens["developer_of_P"]).status_code == 200
    change = {"project_scope": [world.p], "strategy": "fallback", "targets": shared["targets"]}
    taken = world.stack.admin(
        "PUT", path, change, token=admin_of_p, headers={"If-Match": str(shared["version"])}
    )
    assert taken.status_code == 403, taken.text
    # Their own project's config may not be widened past what they administer either.
    own = world.owner("POST", "/admin/v1/configs", _new_config(world))
    widened = world.stack.admin(
        "PUT",
        f"/admin/v1/configs/{own['id']}",
        {**change, "project_scope": "all"},
        token=admin_of_p,
        headers={"If-Match": str(own["version"])},
    )
    assert widened.status_code == 403, widened.text
