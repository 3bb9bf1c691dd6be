"""`keyrail users|projects|keys|integrations|custom-models|catalog|virtual-models|configs|events`:
the admin API from the command line.

Each command is one or two admin API calls (admin_client.py) and prints a table, or with
`--json` the API's own JSON. The admin token comes from KEYRAIL_ADMIN_TOKEN only and credentials
or custom auth headers from a file or stdin (`-`) only: a secret on the command line would be in
`ps` and the shell history. A secret the API shows once (a new key or token) is printed once.

A change names the version it was decided on: `--version N` (the one you read), or by default
the version the command reads just before, so a change made between that read and the write is
still refused (409) rather than overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from keyrail_cli.admin_client import USAGE_ERROR, AdminClient, CommandError, base_url, check_token

Columns = tuple[str, ...]
USER = ("id", "name", "email", "owner", "project_roles", "disabled", "version")
TOKEN = ("id", "name", "prefix", "created_at", "expires_at", "revoked", "version")
PROJECT = ("id", "name", "archived", "version")
KEY = ("id", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked", "version")
INTEGRATION = (
    "provider_slug",
    "provider",
    "name",
    "project_scope",
    "enabled_models",
    "custom_host",
    "credential_version",
    "disabled",
    "version",
)
CIRCUIT = ("model", "state", "failures", "last_failure_class", "opened_at", "next_probe_at")
EVENT = ("seq", "ts", "actor", "aggregate", "aggregate_id", "type", "changes")
VIRTUAL_MODEL = ("alias", "project_scope", "target", "version")
CONFIG = ("id", "strategy", "project_scope", "targets", "fallback_on", "version")


class Output:
    """What a command prints: the API's JSON, as a table of `columns` (a list when `data` has
    one), and a note for stderr."""

    def __init__(self, payload: Any, columns: Columns, note: str = "") -> None:
        self.payload, self.columns, self.note = payload, columns, note


Run = Callable[[AdminClient, argparse.Namespace], Output]


# --- printing -------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if set(value) == {"before", "after"}:
            return f"{cell(value['before'])} -> {cell(value['after'])}"
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value) or "-"
    return " ".join(str(value).split()) or "-"


def table(rows: Sequence[dict[str, Any]], columns: Columns) -> str:
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def render(output: Output, as_json: bool) -> str:
    if as_json:
        return json.dumps(output.payload, indent=2, ensure_ascii=False)
    payload = output.payload
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        return table(payload["data"], output.columns)
    width = max(len(c) for c in output.columns)
    return "\n".join(f"{c.ljust(width)}  {cell(payload.get(c))}" for c in output.columns if c in payload)


# --- inputs -------------------------------------------------------------------------------------


def read_json_object(source: str, what: str) -> dict[str, Any]:
    """A JSON object from a file, or from stdin for `-`."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {what} from {source}: {exc.strerror}", USAGE_ERROR) from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{what} in {source} is not JSON: {exc}", USAGE_ERROR) from exc
    if not isinstance(value, dict):
        raise CommandError(f"{what} in {source} must be a JSON object", USAGE_ERROR)
    return value


def _roles(pairs: list[str]) -> dict[str, str]:
    roles = {}
    for pair in pairs:
        project, sep, role = pair.partition("=")
        if not sep:
            raise CommandError(f"--role takes PROJECT_ID=ROLE (got {pair!r})", USAGE_ERROR)
        roles[project] = role
    return roles


def _list_or(value: str, words: tuple[str, ...]) -> str | list[str]:
    return value if value in words else [v.strip() for v in value.split(",") if v.strip()]


def _given(args: argparse.Namespace, *fields: str) -> dict[str, Any]:
    """The body of a change: the options given (each named as the API's field)."""
    return {field: getattr(args, field) for field in fields if getattr(args, field) is not None}


def _version(args: argparse.Namespace, client: AdminClient, path: str, row_id: str = "") -> int:
    """`--version`, or the version read just now (of the row `row_id` when `path` is a list)."""
    if args.version is not None:
        return int(args.version)
    read = client.call("GET", path)
    if row_id:
        rows = [r for r in read["data"] if r["id"] == row_id]
        if not rows:
            raise CommandError(f"no {row_id} in {path}")
        read = rows[0]
    return int(read["version"])


# --- the commands -------------------------------------------------------------------------------

USERS, PROJECTS, INTEGRATIONS = "/admin/v1/users", "/admin/v1/projects", "/admin/v1/integrations"
VIRTUAL_MODELS, CONFIGS = "/admin/v1/virtual-models", "/admin/v1/configs"


def _users_update(c: AdminClient, a: argparse.Namespace) -> Output:
    body = _given(a, "name", "email", "owner")
    if a.role or a.no_roles:
        body["project_roles"] = _roles(a.role)
    return Output(c.call("PATCH", f"{USERS}/{a.user}", body, _version(a, c, f"{USERS}/{a.user}")), USER)


def _issue_token(c: AdminClient, a: argparse.Namespace) -> Output:
    body = {"name": a.name, **({"expires_at": a.expires_at} if a.expires_at else {})}
    created = c.call("POST", f"{USERS}/{a.user}/tokens", body)
    return Output(created, (*TOKEN[:5], "token"), "the token is shown only now: store it")


def _revoke_token(c: AdminClient, a: argparse.Namespace) -> Output:
    version = _version(a, c, f"{USERS}/{a.user}/tokens", a.token_id)
    return Output(c.call("DELETE", f"{USERS}/{a.user}/tokens/{a.token_id}", version=version), TOKEN)


def _project_change(body: dict[str, Any]) -> Run:
    def run(c: AdminClient, a: argparse.Namespace) -> Output:
        change = {**body, **({"name": a.new_name} if getattr(a, "new_name", None) else {})}
        path = f"{PROJECTS}/{a.project}"
        return Output(c.call("PATCH", path, change, _version(a, c, path)), PROJECT)

    return run


def _create_key(c: AdminClient, a: argparse.Namespace) -> Output:
    created = c.call("POST", f"{PROJECTS}/{a.project}/keys", {"name": a.name})
    return Output(
        created, ("id", "name", "project_id", "prefix", "key"), "the key is shown only now: store it"
    )


def _revoke_key(c: AdminClient, a: argparse.Namespace) -> Output:
    version = _version(a, c, f"{PROJECTS}/{a.project}/keys", a.key)
    return Output(c.call("DELETE", f"{PROJECTS}/{a.project}/keys/{a.key}", version=version), KEY)


def _create_integration(c: AdminClient, a: argparse.Namespace) -> Output:
    body: dict[str, Any] = {
        "name": a.name,
        "provider": a.provider,
        "provider_slug": a.slug,
        "credentials": read_json_object(a.credentials_file, "the credentials"),
        "project_scope": _list_or(a.scope, ("all",)),
        "enabled_models": _list_or(a.models, ("all", "none")),
        **_given(a, "custom_host", "api_format", "description"),
    }
    if a.allow_http:
        body["allow_http"] = True
    if a.headers_file:
        body["custom_auth_headers"] = read_json_object(a.headers_file, "the custom auth headers")
    return Output(c.call("POST", INTEGRATIONS, body), INTEGRATION)


def _update_integration(c: AdminClient, a: argparse.Namespace) -> Output:
    body = _given(a, "name", "description", "custom_host", "api_format", "allow_http")
    if a.scope is not None:
        body["project_scope"] = _list_or(a.scope, ("all",))
    if a.headers_file:
        body["custom_auth_headers"] = read_json_object(a.headers_file, "the custom auth headers")
    elif a.no_headers:
        body["custom_auth_headers"] = None
    path = f"{INTEGRATIONS}/{a.slug}"
    return Output(c.call("PATCH", path, body, _version(a, c, path)), INTEGRATION)


def _rotate(c: AdminClient, a: argparse.Namespace) -> Output:
    body: dict[str, Any] = {"credentials": read_json_object(a.credentials_file, "the credentials")}
    if a.headers_file:
        body["custom_auth_headers"] = read_json_object(a.headers_file, "the custom auth headers")
    path = f"{INTEGRATIONS}/{a.slug}"
    return Output(
        c.call("PUT", f"{path}/credentials", body, _version(a, c, path)), ("set", "version", "updated_at")
    )


def _routing_record(collection: str, id_field: str, columns: Columns) -> tuple[Run, Run]:
    """Create and replace for a record whose whole body comes from a file (or stdin). A replace
    drops the body's own id when it is the one named, so the file of a create serves again."""

    def create(c: AdminClient, a: argparse.Namespace) -> Output:
        return Output(c.call("POST", collection, read_json_object(a.file, "the body")), columns)

    def replace(c: AdminClient, a: argparse.Namespace) -> Output:
        body = read_json_object(a.file, "the body")
        if body.get(id_field) == a.name:
            del body[id_field]
        path = f"{collection}/{a.name}"
        return Output(c.call("PUT", path, body, _version(a, c, path)), columns)

    return create, replace


def _events(c: AdminClient, a: argparse.Namespace) -> Output:
    query = urlencode({k: getattr(a, k) for k in ("aggregate", "actor", "since", "limit") if getattr(a, k)})
    return Output(c.call("GET", f"/admin/v1/events?{query}"), EVENT)


def _get(path: Callable[[argparse.Namespace], str], columns: Columns) -> Run:
    return lambda c, a: Output(c.call("GET", path(a)), columns)


def _post(path: str, body: Callable[[argparse.Namespace], dict[str, Any]], columns: Columns) -> Run:
    return lambda c, a: Output(c.call("POST", path, body(a)), columns)


def _versioned(method: str, path: Callable[[argparse.Namespace], str], columns: Columns) -> Run:
    return lambda c, a: Output(c.call(method, path(a), version=_version(a, c, path(a))), columns)


# --- argparse -------------------------------------------------------------------------------------

COMMAND_HELP = {
    "users": "users, their roles and their admin tokens (admin API)",
    "projects": "projects: list, create, rename, archive, restore (admin API)",
    "keys": "a project's gateway API keys: list, create, revoke (admin API)",
    "integrations": "integrations: list, create, change, disable, rotate credentials, set models, "
    "circuit health (admin API)",
    "custom-models": "an integration's custom models: list, add, update, remove (admin API)",
    "catalog": "the model catalog: list (the default action), set or remove an owner's entry (admin API)",
    "virtual-models": "virtual models (aliases): list, show, create, replace, delete (admin API)",
    "configs": "gateway configs (routing policies): list, show, create, replace, delete (admin API)",
    "events": "the change history: who changed what and when (admin API)",
}
ADMIN_COMMANDS = tuple(COMMAND_HELP)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="ingress URL (default http://127.0.0.1:$KEYRAIL_PORT)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")


class _Actions:
    """The actions of one command (`keyrail users list`, `keyrail users create`, …)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._subs = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(
        self, name: str, help: str, run: Run, *args: str, version: bool = False
    ) -> argparse.ArgumentParser:
        """An action with its positional `args`; `version`: it changes something (--version)."""
        parser = self._subs.add_parser(name, help=help, description=help)
        for arg in args:
            parser.add_argument(arg)
        add_common_options(parser)
        if version:
            parser.add_argument(
                "--version",
                type=int,
                default=None,
                help="the version you read (default: the one read just before the change)",
            )
        parser.set_defaults(run=run)
        return parser


def _user_body(a: argparse.Namespace) -> dict[str, Any]:
    return {"name": a.name, "email": a.email or "", "owner": a.owner, "project_roles": _roles(a.role)}


def _set_models(c: AdminClient, a: argparse.Namespace) -> Output:
    body = {"enabled_models": _list_or(a.models, ("all", "none"))}
    path = f"{INTEGRATIONS}/{a.slug}"
    return Output(c.call("PUT", f"{path}/models", body, _version(a, c, path)), INTEGRATION)


def _one_user(a: argparse.Namespace) -> str:
    return f"{USERS}/{a.user}"


def _one_integration(a: argparse.Namespace) -> str:
    return f"{INTEGRATIONS}/{a.slug}"


def _add_users(users: _Actions) -> None:
    one = _one_user
    users.add("list", "list the users", _get(lambda a: USERS, USER))
    users.add("show", "show a user", _get(one, USER), "user")
    create = users.add("create", "create a user", _post(USERS, _user_body, USER), "name")
    create.add_argument("--email")
    create.add_argument("--owner", action="store_true", help="owner of the whole organisation")
    create.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="PROJECT_ID=ROLE",
        help="project_admin or developer of a project; repeat it for more projects",
    )
    update = users.add(
        "update", "change a user; --role replaces every project role", _users_update, "user", version=True
    )
    update.add_argument("--name")
    update.add_argument("--email")
    update.add_argument("--owner", action=argparse.BooleanOptionalAction, default=None)
    update.add_argument("--role", action="append", default=[], metavar="PROJECT_ID=ROLE")
    update.add_argument("--no-roles", action="store_true", help="remove every project role")
    users.add(
        "disable",
        "disable a user (their tokens stop working)",
        _versioned("DELETE", one, USER),
        "user",
        version=True,
    )
    users.add(
        "tokens", "list a user's admin tokens", _get(lambda a: f"{USERS}/{a.user}/tokens", TOKEN), "user"
    )
    issue = users.add("issue-token", "issue an admin token (printed once)", _issue_token, "user")
    issue.add_argument("--name", default="default")
    issue.add_argument("--expires-at", help="ISO 8601 with a time zone, e.g. 2027-06-01T00:00:00Z")
    users.add("revoke-token", "revoke an admin token", _revoke_token, "user", "token_id", version=True)


def _add_projects(projects: _Actions, keys: _Actions) -> None:
    projects.add("list", "list projects", _get(lambda a: PROJECTS, PROJECT))
    projects.add("show", "show a project", _get(lambda a: f"{PROJECTS}/{a.project}", PROJECT), "project")
    projects.add("create", "create a project", _post(PROJECTS, lambda a: {"name": a.name}, PROJECT), "name")
    projects.add("rename", "rename a project", _project_change({}), "project", "new_name", version=True)
    archive = _project_change({"archived": True})
    projects.add("archive", "archive a project: its keys are refused", archive, "project", version=True)
    restore = _project_change({"archived": False})
    projects.add("restore", "restore an archived project", restore, "project", version=True)
    keys.add("list", "list a project's keys", _get(lambda a: f"{PROJECTS}/{a.project}/keys", KEY), "project")
    keys.add("create", "create a key (printed once)", _create_key, "project").add_argument(
        "--name", default="default"
    )
    keys.add("revoke", "revoke a key", _revoke_key, "project", "key", version=True)


def _add_integrations(integrations: _Actions) -> None:
    one = _one_integration
    json_file = "a JSON object in a file; - reads stdin"
    integrations.add("list", "list integrations", _get(lambda a: INTEGRATIONS, INTEGRATION))
    integrations.add("show", "show an integration", _get(one, INTEGRATION), "slug")
    new = integrations.add("create", "create an integration", _create_integration)
    new.add_argument("--name", required=True)
    new.add_argument("--provider", required=True)
    new.add_argument("--slug", required=True, help="the provider slug, ^[a-z0-9][a-z0-9-]{1,62}$")
    new.add_argument(
        "--credentials-file", required=True, metavar="FILE", help=f"the credentials: {json_file}"
    )
    new.add_argument("--headers-file", metavar="FILE", help=f"custom auth headers: {json_file}")
    new.add_argument("--scope", default="all", help="all, or comma-separated project ids")
    new.add_argument("--models", default="all", help="all, none, or comma-separated catalog models")
    new.add_argument("--custom-host")
    new.add_argument("--api-format")
    new.add_argument("--allow-http", action="store_true")
    new.add_argument("--description")
    change = integrations.add("update", "change an integration", _update_integration, "slug", version=True)
    change.add_argument("--name")
    change.add_argument("--description")
    change.add_argument("--scope", help="all, or comma-separated project ids")
    change.add_argument("--custom-host", help="empty: the provider's own host")
    change.add_argument("--api-format")
    change.add_argument("--allow-http", action=argparse.BooleanOptionalAction, default=None)
    change.add_argument("--headers-file", metavar="FILE", help=f"new custom auth headers: {json_file}")
    change.add_argument("--no-headers", action="store_true", help="remove the custom auth headers")
    disable = _versioned("DELETE", one, INTEGRATION)
    integrations.add("disable", "disable (delete) an integration", disable, "slug", version=True)
    rotate = integrations.add("rotate", "replace an integration's credentials", _rotate, "slug", version=True)
    rotate.add_argument(
        "--credentials-file", required=True, metavar="FILE", help=f"the credentials: {json_file}"
    )
    rotate.add_argument("--headers-file", metavar="FILE", help=f"custom auth headers: {json_file}")
    health = _get(lambda a: f"{one(a)}/health", CIRCUIT)
    integrations.add("health", "the circuit breakers of its models", health, "slug")
    models = integrations.add("models", "set the enabled models", _set_models, "slug", version=True)
    models.add_argument("models", help="all, none, or comma-separated catalog models")


def _add_routing(actions: _Actions, collection: str, id_field: str, what: str, columns: Columns) -> None:
    """`list`, `show`, `create`, `replace`, `delete` of virtual models or gateway configs."""

    def one(a: argparse.Namespace) -> str:
        return f"{collection}/{a.name}"

    body_file = f"the {what} as JSON (SPEC shapes) in a file; - reads stdin"
    create, replace = _routing_record(collection, id_field, columns)
    actions.add("list", f"list {what}s", _get(lambda a: collection, columns))
    actions.add("show", f"show a {what}", _get(one, columns), "name")
    actions.add("create", f"create a {what}", create).add_argument("--file", required=True, help=body_file)
    actions.add("replace", f"replace a {what} whole", replace, "name", version=True).add_argument(
        "--file", required=True, help=body_file
    )
    actions.add("delete", f"delete a {what}", _versioned("DELETE", one, columns), "name", version=True)


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register the commands with `command(name, help)` (main.py's factory, which adds the epilog);
    `custom-models` and `catalog` are model_commands.py's."""
    _add_users(_Actions(command("users", COMMAND_HELP["users"])))
    _add_projects(
        _Actions(command("projects", COMMAND_HELP["projects"])),
        _Actions(command("keys", COMMAND_HELP["keys"])),
    )
    _add_integrations(_Actions(command("integrations", COMMAND_HELP["integrations"])))
    virtual_models = _Actions(command("virtual-models", COMMAND_HELP["virtual-models"]))
    _add_routing(virtual_models, VIRTUAL_MODELS, "alias", "virtual model", VIRTUAL_MODEL)
    configs = _Actions(command("configs", COMMAND_HELP["configs"]))
    _add_routing(configs, CONFIGS, "id", "gateway config", CONFIG)
    events = command("events", COMMAND_HELP["events"])
    add_common_options(events)
    events.add_argument("--aggregate", help="e.g. integration or integration/openai-prod")
    events.add_argument("--actor", help="a user id")
    events.add_argument("--since", help="ISO 8601 or Unix seconds")
    events.add_argument("--limit", type=int, default=None)
    events.set_defaults(run=_events)


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; every failure is one line on stderr."""
    try:
        token = check_token(os.environ.get("KEYRAIL_ADMIN_TOKEN", ""))
        output = args.run(AdminClient(base_url(args.url), token), args)
    except CommandError as exc:
        print(f"keyrail {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(render(output, args.json))
    if output.note and not args.json:
        print(output.note, file=sys.stderr)
    return 0
