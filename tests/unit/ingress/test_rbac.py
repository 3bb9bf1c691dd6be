"""The RBAC table (rbac.py): its shape, the decision, and that every admin route and its docs use it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from keyrail_ingress import rbac
from keyrail_ingress.admin.routes import ROUTES
from keyrail_ingress.app import build_api
from keyrail_ingress.openapi import OPERATIONS, build_document
from keyrail_ingress.rbac import RBAC, RULES, Role, Scope, Target, authorize, may_ever, visible_projects
from tests.support.api_docs import served_routes


@dataclass(frozen=True)
class Caller:
    user_id: str = "user_x"
    owner: bool = False
    project_roles: dict[str, str] = field(default_factory=dict)


OWNER = Caller(owner=True)
ADMIN_A = Caller(project_roles={"proj_a": "project_admin"})
DEV_A_ADMIN_B = Caller(project_roles={"proj_a": "developer", "proj_b": "project_admin"})
NOBODY = Caller()
IN_A = Target(projects=frozenset({"proj_a"}), label="project 'proj_a'")
IN_B = Target(projects=frozenset({"proj_b"}), label="project 'proj_b'")


def test_the_table_is_consistent_with_its_scopes() -> None:
    assert len(RBAC) == len(RULES)  # one rule per permission
    for rule in RULES:
        project_roles = {Role.PROJECT_ADMIN, Role.DEVELOPER} & rule.roles
        if rule.scope is Scope.ORG:
            assert rule.roles == {Role.OWNER}, rule.permission
        elif rule.scope is Scope.USER:
            assert Role.SELF in rule.roles and not project_roles, rule.permission
        else:
            assert project_roles and Role.SELF not in rule.roles, rule.permission
        assert Role.OWNER in rule.roles, f"{rule.permission}: owners may do everything but read secrets"


def test_owners_manage_users_projects_and_integrations_alone() -> None:
    owner_only = {r.permission for r in RULES if r.roles == {Role.OWNER}}
    assert {"user.create", "user.update", "user.delete", "project.create", "project.update"} <= owner_only
    assert {p for p in owner_only if p.startswith("integration.")} == {
        "integration.create",
        "integration.update",
        "integration.delete",
        "integration.rotate_credentials",
        "integration.set_models",
    }
    for permission in ("api_key.create", "api_key.revoke"):
        assert RBAC[permission].roles == {Role.OWNER, Role.PROJECT_ADMIN}
    for permission in ("project.read", "api_key.list", "integration.read", "activity.read", "events.read"):
        assert Role.DEVELOPER in RBAC[permission].roles


def test_owners_alone_change_custom_models_and_the_catalog_which_project_roles_read() -> None:
    owner_only = {r.permission for r in RULES if r.roles == {Role.OWNER}}
    assert {"custom_model.create", "custom_model.update", "custom_model.delete"} <= owner_only
    assert {"catalog.set", "catalog.delete"} <= owner_only
    for permission in ("custom_model.list", "custom_model.read"):
        # Developers of a project in the integration's scope, like the integration itself.
        assert RBAC[permission].roles == {Role.OWNER, Role.PROJECT_ADMIN, Role.DEVELOPER}
        assert RBAC[permission].scope is Scope.INTEGRATION
    assert authorize(DEV_A_ADMIN_B, RBAC["custom_model.read"], IN_A) is None
    refusal = authorize(DEV_A_ADMIN_B, RBAC["custom_model.create"], Target())
    assert refusal is not None and "Registering a custom model needs the role owner" in refusal
    assert authorize(ADMIN_A, RBAC["catalog.list"], Target(projects=None)) is None


def test_a_project_role_counts_in_its_own_project_only() -> None:
    create_key = RBAC["api_key.create"]

    assert authorize(OWNER, create_key, IN_A) is None
    assert authorize(ADMIN_A, create_key, IN_A) is None
    assert authorize(DEV_A_ADMIN_B, create_key, IN_B) is None
    refusal = authorize(DEV_A_ADMIN_B, create_key, IN_A)
    assert refusal == (
        "Creating an API key needs the role owner, or project_admin of project 'proj_a'; "
        "you hold developer of proj_a, project_admin of proj_b."
    )
    assert authorize(ADMIN_A, create_key, IN_B) is not None


def test_an_integration_in_scope_all_is_readable_by_any_project_role() -> None:
    read = RBAC["integration.read"]
    everywhere = Target(projects=None)

    assert authorize(ADMIN_A, read, everywhere) is None
    assert authorize(ADMIN_A, read, IN_B) is not None
    assert authorize(NOBODY, read, everywhere) is not None


def test_self_covers_the_users_own_record_and_tokens_only() -> None:
    issue = RBAC["admin_token.create"]

    assert authorize(ADMIN_A, issue, Target(user_id="user_x")) is None
    assert authorize(ADMIN_A, issue, Target(user_id="user_other")) == (
        "Issuing an admin token needs the role owner, or the user themself; you hold project_admin of proj_a."
    )
    assert may_ever(NOBODY, issue)  # decided once the user is known


def test_may_ever_refuses_before_anything_is_looked_up() -> None:
    assert not may_ever(ADMIN_A, RBAC["integration.update"])
    assert may_ever(ADMIN_A, RBAC["integration.read"])
    assert not may_ever(NOBODY, RBAC["project.list"])
    assert may_ever(OWNER, RBAC["sql.query"])


def test_lists_answer_for_the_callers_projects_with_a_role_the_rule_allows() -> None:
    assert visible_projects(OWNER, RBAC["project.list"]) is None
    assert visible_projects(DEV_A_ADMIN_B, RBAC["project.list"]) == {"proj_a", "proj_b"}


@pytest.mark.parametrize(
    ("permission", "text"),
    [
        ("sql.query", "owner"),
        ("api_key.create", "owner, or project_admin of the project"),
        ("admin_token.revoke", "owner, or the user themself"),
        (
            "activity.read",
            "owner, or project_admin or developer of any project (answered for their own projects only)",
        ),
        (
            "integration.read",
            "owner, or project_admin or developer of a project in the integration's project_scope",
        ),
    ],
)
def test_access_text_in_the_docs(permission: str, text: str) -> None:
    assert rbac.access(RBAC[permission]) == text


def test_every_admin_route_has_a_rule_and_every_rule_a_route() -> None:
    served, _ = served_routes(build_api(), {})
    assert {(method, path) for method, path in served if path.startswith("/admin/")} == set(ROUTES)
    assert {rule.permission for rule in ROUTES.values()} == set(RBAC)


def test_the_docs_name_each_routes_rule_and_render_the_table() -> None:
    documented = {(op.method, op.path): op.permission for op in OPERATIONS if op.path.startswith("/admin/")}
    assert documented == {route: rule.permission for route, rule in ROUTES.items()}
    document = build_document()
    assert document["x-keyrail-rbac"] == rbac.document_table()
    for (method, path), rule in ROUTES.items():
        op = document["paths"][path][method.lower()]
        assert op["x-keyrail-permission"] == rule.permission
        assert f"**Access:** {rbac.access(rule)} (`{rule.permission}`)." in op["description"]
        forbidden = op["responses"]["403"]["content"]["application/json"]["example"]["error"]["message"]
        assert forbidden.startswith(rule.doing[:1].upper() + rule.doing[1:] + " needs the role ")
    html = build_api().state.api_docs.html.decode()
    assert "id='access-control'" in html
    for rule in RULES:
        assert f"<code>{rule.permission}</code>" in html
