"""Who may do what on the admin API: the one RBAC table, resource x action x role.

Every admin route names exactly one `Rule` of `RULES`: `admin_route` (admin/command.py) takes
the rule's permission, so a route cannot be declared without one, and a test compares the routes
with this table. The preamble every handler goes through decides with `authorize` below, and the
API reference renders the same table (openapi_admin.py, `x-keyrail-rbac`). So the table is the
policy: a role changes here or nowhere.

Roles: `owner` holds for the whole organisation; `project_admin` and `developer` are held per
project (a user may be project_admin of one project and developer of another); `self` is the
user named in the path, for their own record and admin tokens. A project role counts where the
target belongs to that project: an API key or the project itself (scope `project`), an
integration whose project_scope names the project or is `all` (scope `integration`), or, for a
list or a query, the caller's own projects, whose rows alone are answered (scope `mine`). Scope
`org` is for owners alone.

Virtual models and gateway configs are scoped like integrations but managed by project admins:
reading one needs a role in a project of its project_scope (scope `in_scope`); creating,
replacing or deleting one needs the role in *every* project of its project_scope, before and
after the change (scope `whole_scope`), so a project admin never changes what another project
routes. A record scoped to `all` reaches every project, present and future: an owner's alone.

No rule lets anyone read a credential: no route returns one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    OWNER = "owner"
    PROJECT_ADMIN = "project_admin"
    DEVELOPER = "developer"
    SELF = "self"  # the user named in the path


PROJECT_ROLES = (Role.PROJECT_ADMIN, Role.DEVELOPER)


class Scope(enum.StrEnum):
    ORG = "org"  # the organisation as a whole: owners only
    PROJECT = "project"  # the project the target belongs to
    INTEGRATION = "integration"  # the projects in the integration's project_scope (`all`: every one)
    MINE = "mine"  # a list or query, answered for the caller's own projects only
    USER = "user"  # the user named in the path
    IN_SCOPE = "in_scope"  # a project in the record's project_scope (`all`: every one)
    WHOLE_SCOPE = "whole_scope"  # every project in the record's project_scope (`all`: owners only)


@dataclass(frozen=True)
class Rule:
    resource: str
    action: str
    roles: frozenset[Role]
    scope: Scope
    doing: str  # what the action is, for the 403: "revoking an API key"

    @property
    def permission(self) -> str:
        return f"{self.resource}.{self.action}"


def _rule(resource: str, action: str, roles: str, scope: Scope, doing: str) -> Rule:
    return Rule(resource, action, frozenset(Role(r) for r in roles.split()), scope, doing)


_ANY = "owner project_admin developer"
# fmt: off
RULES: tuple[Rule, ...] = (
    _rule("user", "create", "owner", Scope.ORG, "creating a user"),
    _rule("user", "list", "owner", Scope.ORG, "listing the users"),
    _rule("user", "read", "owner self", Scope.USER, "reading a user"),
    _rule("user", "update", "owner", Scope.ORG, "changing a user or their roles"),
    _rule("user", "delete", "owner", Scope.ORG, "disabling a user"),
    _rule("admin_token", "create", "owner self", Scope.USER, "issuing an admin token"),
    _rule("admin_token", "list", "owner self", Scope.USER, "listing a user's admin tokens"),
    _rule("admin_token", "revoke", "owner self", Scope.USER, "revoking an admin token"),
    _rule("project", "create", "owner", Scope.ORG, "creating a project"),
    _rule("project", "list", _ANY, Scope.MINE, "listing projects"),
    _rule("project", "read", _ANY, Scope.PROJECT, "reading a project"),
    _rule("project", "update", "owner", Scope.ORG, "renaming or archiving a project"),
    _rule("api_key", "create", "owner project_admin", Scope.PROJECT, "creating an API key"),
    _rule("api_key", "list", _ANY, Scope.PROJECT, "listing a project's API keys"),
    _rule("api_key", "revoke", "owner project_admin", Scope.PROJECT, "revoking an API key"),
    _rule("integration", "create", "owner", Scope.ORG, "creating an integration"),
    _rule("integration", "list", _ANY, Scope.MINE, "listing integrations"),
    _rule("integration", "read", _ANY, Scope.INTEGRATION, "reading an integration"),
    _rule("integration", "update", "owner", Scope.ORG, "changing an integration"),
    _rule("integration", "delete", "owner", Scope.ORG, "disabling an integration"),
    _rule("integration", "rotate_credentials", "owner", Scope.ORG, "replacing an integration's credentials"),
    _rule("integration", "set_models", "owner", Scope.ORG, "setting an integration's enabled models"),
    _rule("virtual_model", "create", "owner project_admin", Scope.WHOLE_SCOPE, "creating a virtual model"),
    _rule("virtual_model", "list", _ANY, Scope.MINE, "listing virtual models"),
    _rule("virtual_model", "read", _ANY, Scope.IN_SCOPE, "reading a virtual model"),
    _rule("virtual_model", "update", "owner project_admin", Scope.WHOLE_SCOPE, "replacing a virtual model"),
    _rule("virtual_model", "delete", "owner project_admin", Scope.WHOLE_SCOPE, "deleting a virtual model"),
    _rule("config", "create", "owner project_admin", Scope.WHOLE_SCOPE, "creating a gateway config"),
    _rule("config", "list", _ANY, Scope.MINE, "listing gateway configs"),
    _rule("config", "read", _ANY, Scope.IN_SCOPE, "reading a gateway config"),
    _rule("config", "update", "owner project_admin", Scope.WHOLE_SCOPE, "replacing a gateway config"),
    _rule("config", "delete", "owner project_admin", Scope.WHOLE_SCOPE, "deleting a gateway config"),
    _rule("custom_model", "create", "owner", Scope.ORG, "registering a custom model"),
    _rule("custom_model", "list", _ANY, Scope.INTEGRATION, "listing an integration's custom models"),
    _rule("custom_model", "read", _ANY, Scope.INTEGRATION, "reading a custom model"),
    _rule("custom_model", "update", "owner", Scope.ORG, "changing a custom model"),
    _rule("custom_model", "delete", "owner", Scope.ORG, "removing a custom model"),
    _rule("catalog", "list", _ANY, Scope.MINE, "reading the model catalog"),
    _rule("catalog", "set", "owner", Scope.ORG, "adding or overriding a catalog entry"),
    _rule("catalog", "delete", "owner", Scope.ORG, "removing a catalog entry"),
    _rule("activity", "read", _ANY, Scope.MINE, "reading the activity log"),
    _rule("costs", "read", _ANY, Scope.MINE, "reading the cost report"),
    _rule("sql", "query", "owner", Scope.ORG, "running SQL over the whole activity log"),
    _rule("events", "read", _ANY, Scope.MINE, "reading the change history"),
)
# fmt: on
RBAC: Mapping[str, Rule] = {rule.permission: rule for rule in RULES}


class Principal(Protocol):
    """The authenticated user, as far as the decision needs it (a UserRecord)."""

    @property
    def user_id(self) -> str: ...
    @property
    def owner(self) -> bool: ...
    @property
    def project_roles(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Target:
    """What a request acts on, as far as the decision needs it."""

    projects: frozenset[str] | None = frozenset()  # None: every project (a list, or scope `all`)
    user_id: str = ""  # the user named in the path
    label: str = ""  # for the 403: "project 'proj_…'"


EVERY_PROJECT = Target(projects=None)


def scope_target(scope: str | list[str], what: str) -> Target:
    """The target a record with this project_scope is (`what`: "virtual model 'classifier'")."""
    if isinstance(scope, list):
        return Target(projects=frozenset(scope), label=f"every project in {what}'s project_scope")
    return Target(
        projects=None, label=f"every project ({what} is scoped to all, which only an owner manages)"
    )


def may_ever(caller: Principal, rule: Rule) -> bool:
    """Whether some target of this rule could be allowed to the caller: checked before the target
    is even loaded, so a caller without any fitting role learns nothing about what exists."""
    if caller.owner and Role.OWNER in rule.roles:
        return True
    if Role.SELF in rule.roles:
        return True
    return any(role in rule.roles for role in caller.project_roles.values())


def authorize(caller: Principal, rule: Rule, target: Target) -> str | None:
    """None when allowed; otherwise the 403's message, naming the role that would do."""
    if caller.owner and Role.OWNER in rule.roles:
        return None
    if Role.SELF in rule.roles and target.user_id and target.user_id == caller.user_id:
        return None
    if rule.scope is Scope.WHOLE_SCOPE:
        if target.projects and all(caller.project_roles.get(p) in rule.roles for p in target.projects):
            return None
        return denial(caller, rule, target)
    for project, role in caller.project_roles.items():
        if role in rule.roles and (target.projects is None or project in target.projects):
            return None
    return denial(caller, rule, target)


def visible_projects(caller: Principal, rule: Rule) -> frozenset[str] | None:
    """The projects whose rows a `mine` list or query answers: None for every project."""
    if caller.owner and Role.OWNER in rule.roles:
        return None
    return frozenset(p for p, role in caller.project_roles.items() if role in rule.roles)


def needed(rule: Rule, target: Target = EVERY_PROJECT) -> str:
    """The roles that would allow the rule on the target, in words: "owner, or project_admin of
    project 'proj_…'"."""
    options = []
    if Role.OWNER in rule.roles:
        options.append("owner")
    project_roles = [r.value for r in PROJECT_ROLES if r in rule.roles]
    if project_roles:
        where = target.label or ("any project" if rule.scope is Scope.MINE else "the target's project")
        options.append(f"{' or '.join(project_roles)} of {where}")
    if Role.SELF in rule.roles:
        options.append("the user themself")
    return ", or ".join(options)


def held(caller: Principal) -> str:
    roles = ["owner"] if caller.owner else []
    roles += [f"{role} of {project}" for project, role in sorted(caller.project_roles.items())]
    return ", ".join(roles) or "no role"


def denial(caller: Principal, rule: Rule, target: Target = EVERY_PROJECT) -> str:
    doing = rule.doing[:1].upper() + rule.doing[1:]
    return f"{doing} needs the role {needed(rule, target)}; you hold {held(caller)}."


# --- the table in the API reference --------------------------------------------------------------

_WHERE = {
    Scope.PROJECT: "of the project",
    Scope.INTEGRATION: "of a project in the integration's project_scope",
    Scope.MINE: "of any project (answered for their own projects only)",
    Scope.IN_SCOPE: "of a project in the record's project_scope",
    Scope.WHOLE_SCOPE: "of every project in the record's project_scope, before and after the change "
    "(a record scoped to `all`: owner only)",
}


def access(rule: Rule) -> str:
    """Who may call a route, for its description in the API reference."""
    options = ["owner"] if Role.OWNER in rule.roles else []
    project_roles = [r.value for r in PROJECT_ROLES if r in rule.roles]
    if project_roles:
        options.append(f"{' or '.join(project_roles)} {_WHERE[rule.scope]}")
    if Role.SELF in rule.roles:
        options.append("the user themself")
    return ", or ".join(options)


def document_table() -> list[dict[str, object]]:
    """The table as the OpenAPI document carries it (`x-keyrail-rbac`), one row per rule."""
    return [
        {
            "permission": rule.permission,
            "action": rule.doing,
            **{role.value: role in rule.roles for role in Role},
            "scope": rule.scope.value,
        }
        for rule in RULES
    ]
