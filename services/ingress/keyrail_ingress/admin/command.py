"""The one preamble of every admin route: authenticate, authorise, load the aggregate, decode the
body, check the expected version; then the handler runs with a `Command`.

Routes are declared with `admin_route`, which names the route's rule of the RBAC table
(rbac.py) and records it in `ROUTES`, so no route can exist without a rule. The steps, in order:

1. the admin token: missing, unknown, revoked, expired or of a disabled user is a 401;
2. `may_ever`: a caller with no role the rule allows anywhere is a 403, before anything is
   looked up (they learn nothing about what exists);
3. the loader finds the aggregate in the projection (404) and says which projects it belongs to;
4. `authorize` on that target (403 naming the role that would do);
5. the body, strictly (400 naming the field; a refused field says what to do instead); for a
   route whose body sets a `project_scope` (`scoped_body`), `authorize` on that scope too (a
   creation has no target before it);
6. for a change of an existing aggregate, the version the client read (`If-Match` or `version`):
   missing is a 428, another than the current one a 409 (a put that creates, whose loader found
   nothing, needs none).

Nothing is written before all of this passed, so a refused request leaves no event and no Vault
write. The handler then publishes with the version it was decided on (`Command.publish`), and
JetStream refuses the append if another writer got there first: a 409, nothing applied.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from fastapi import APIRouter
from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common.config_events import ConfigEvent
from keyrail_common.config_state import ConfigState, UserRecord
from keyrail_common.projection import ConcurrencyConflict, ConfigMovedOn
from keyrail_ingress.auth import admin_user_for
from keyrail_ingress.context import IngressContext
from keyrail_ingress.rbac import (
    EVERY_PROJECT,
    RBAC,
    Rule,
    Scope,
    Target,
    authorize,
    denial,
    may_ever,
    scope_target,
    visible_projects,
)
from keyrail_ingress.responses import bad_body, error

PREFIX = "/admin/v1"
router = APIRouter(prefix=PREFIX)
# (method, path template) of every admin route -> its rule; tests compare it with the docs.
ROUTES: dict[tuple[str, str], Rule] = {}

A = TypeVar("A")
B = TypeVar("B")

# How long a request naming a version this ingress has not applied yet waits for it (another
# ingress may have just written it): the projection follows the stream within milliseconds.
_CATCH_UP_S = 1.0
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`$")


@dataclass(frozen=True)
class Loaded(Generic[A]):
    """The aggregate a route acts on, as the preamble found it."""

    record: A
    target: Target  # which projects it belongs to, for `authorize`
    aggregate: tuple[str, str] | None = None  # (aggregate, id) whose version a change must name


Loader = Callable[[ConfigState, Mapping[str, str]], "Loaded[Any] | Response"]


@dataclass(frozen=True)
class Command(Generic[A, B]):
    """An authorised request, ready for its handler."""

    request: Request
    ctx: IngressContext
    caller: UserRecord
    rule: Rule
    loaded: Loaded[A]
    body: B
    version: int  # the aggregate's version the command was decided on (0: none)

    @property
    def state(self) -> ConfigState:
        return self.ctx.projection.state

    @property
    def record(self) -> A:
        return self.loaded.record

    @property
    def org_id(self) -> str:
        return self.caller.org_id

    def visible(self) -> frozenset[str] | None:
        """The projects a `mine` list answers for the caller: None for every project."""
        return visible_projects(self.caller, self.rule)

    def sees(self, project_scope: str | list[str]) -> bool:
        """Whether a `mine` list shows the caller a record with this project_scope."""
        visible = self.visible()
        return visible is None or project_scope == "all" or bool(visible & set(project_scope))

    async def publish(self, event: ConfigEvent, new: bool = False, decided_on_all: bool = False) -> int:
        """Append `event` as the caller. `new`: it creates an aggregate that must not exist yet;
        otherwise it changes the loaded one, expecting the version the command was decided on.
        `decided_on_all`: the decision read the whole configuration (the last-owner guard), so
        any concurrent change anywhere refuses the append."""
        expected = 0 if new else self.version
        return await self.ctx.publisher.publish(
            event, actor=self.caller.user_id, expected_version=expected, decided_on_all=decided_on_all
        )


Handler = Callable[[Command[Any, Any]], Awaitable[Response]]


def given(value: A | UnsetType, current: A) -> A:
    """A change's field: the value sent, or the current one when the field was absent."""
    return current if isinstance(value, UnsetType) else value


def forbidden(message: str) -> Response:
    return error(403, message, "forbidden")


def not_found(what: str, listing: str) -> Response:
    return error(404, f"No {what}. List them with GET {PREFIX}{listing}.", "not_found")


def stale(aggregate: str, current: int, sent: int | None = None) -> Response:
    sent_text = f"you sent {sent}, " if sent is not None else ""
    return error(
        409,
        f"This {aggregate} changed since you read it ({sent_text}its version is {current}): read it "
        "again, then retry with the new version. Nothing was applied.",
        "version_conflict",
        "version",
    )


def version_required(aggregate: str) -> Response:
    return error(
        428,
        f'A change needs the version you read: send If-Match: "<version>" (or "version" in the '
        f"body) with the {aggregate}'s current version, as GET shows it.",
        "version_required",
        "If-Match",
    )


def admin_route(
    method: str,
    path: str,
    permission: str,
    *,
    load: Loader | None = None,
    body: type | None = None,
    versioned: bool = False,
    scoped_body: str = "",
) -> Callable[[Handler], Handler]:
    """Register `handler` for `method path` under the rule `permission`, behind the preamble.
    `versioned`: the route changes the loaded aggregate and needs the version the client read.
    `scoped_body`: what the body's `project_scope` scopes ("gateway config"): the caller must be
    allowed on it too."""
    rule = RBAC[permission]
    if versioned and load is None:
        raise ValueError(f"{method} {path}: a versioned route needs the aggregate it changes")

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            command = await _prepare(request, rule, load, body, versioned, scoped_body)
            if isinstance(command, Response):
                return command
            try:
                return await handler(command)
            except ConfigMovedOn:
                return error(
                    409,
                    "The organisation's configuration changed while this was decided (this change "
                    "depends on every owner and token): read it again and retry. Nothing was applied.",
                    "version_conflict",
                )
            except ConcurrencyConflict:
                # Another writer appended to the aggregate between our check and our append.
                aggregate = command.loaded.aggregate
                current = command.state.version(*aggregate) if aggregate else 0
                return stale(aggregate[0] if aggregate else "resource", current, command.version)

        router.add_api_route(path, endpoint, methods=[method], name=handler.__name__)
        # `{model:path}` (a model name may hold `/`) is documented as `{model}`.
        ROUTES[(method, PREFIX + path.replace(":path}", "}"))] = rule
        return handler

    return register


async def _prepare(
    request: Request, rule: Rule, load: Loader | None, kind: type | None, versioned: bool, scoped_body: str
) -> Command[Any, Any] | Response:
    ctx: IngressContext = request.app.state.ctx
    state = ctx.projection.state
    authenticated = admin_user_for(state, request)
    if isinstance(authenticated, str):
        return error(401, authenticated, "invalid_token")
    caller, _token = authenticated
    if not may_ever(caller, rule):
        return forbidden(denial(caller, rule))
    loaded = load(state, request.path_params) if load is not None else _untargeted(rule)
    if isinstance(loaded, Response):
        return loaded
    refusal = None if scoped_body and load is None else authorize(caller, rule, loaded.target)
    if refusal is not None:
        return forbidden(refusal)
    body: Any = None
    if kind is not None:
        body = await decode(request, kind)
        if isinstance(body, Response):
            return body
    if scoped_body:
        refusal = authorize(caller, rule, scope_target(body.project_scope, f"the {scoped_body}"))
        if refusal is not None:
            return forbidden(refusal)
    version = 0
    if versioned and loaded.record is None:
        # A put that creates (a loader found nothing to change): it expects the aggregate as it is,
        # so two racing creations cannot both succeed.
        assert loaded.aggregate is not None
        version = state.version(*loaded.aggregate)
    elif versioned:
        assert loaded.aggregate is not None
        checked = await _check_version(ctx, request, body, loaded.aggregate)
        if isinstance(checked, Response):
            return checked
        version = checked
    return Command(request, ctx, caller, rule, loaded, body, version)


def _untargeted(rule: Rule) -> Loaded[None]:
    """A route on no aggregate: a list or query (every project, filtered later) or a creation."""
    return Loaded(None, EVERY_PROJECT if rule.scope is Scope.MINE else Target())


async def decode(request: Request, kind: type[B]) -> B | Response:
    try:
        decoded: B = msgspec.json.decode(await request.body(), type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        refused: Mapping[str, str] = getattr(kind, "REFUSED_FIELDS", {})
        unknown = _UNKNOWN_FIELD.match(str(exc))
        if unknown and unknown.group(1) in refused:
            return error(400, refused[unknown.group(1)], "immutable_field", unknown.group(1))
        return bad_body(exc)
    return decoded


def _expected_version(request: Request, body: Any) -> int | Response | None:
    header = request.headers.get("if-match")
    from_header = None
    if header is not None:
        match = _IF_MATCH.match(header)
        if match is None:
            return error(
                400,
                f'If-Match must be a version number, e.g. If-Match: "42" (got {header!r}).',
                "invalid_header",
                "If-Match",
            )
        from_header = int(match.group(1))
    from_body = getattr(body, "version", None)
    if from_header is not None and from_body is not None and from_header != from_body:
        return error(
            400,
            f"If-Match ({from_header}) and version ({from_body}) disagree; send one of them.",
            "invalid_value",
            "version",
        )
    return from_header if from_header is not None else from_body


async def _check_version(
    ctx: IngressContext, request: Request, body: Any, aggregate: tuple[str, str]
) -> int | Response:
    expected = _expected_version(request, body)
    if isinstance(expected, Response):
        return expected
    if expected is None:
        return error(
            428,
            f'A change needs the version you read: send If-Match: "<version>" (or "version" in the '
            f"body) with the {aggregate[0]}'s current version, as GET shows it.",
            "version_required",
            "If-Match",
        )
    state = ctx.projection.state
    current = state.version(*aggregate)
    if expected > current:
        # Perhaps written through another ingress a moment ago: let this projection catch up.
        await ctx.projection.wait_for(expected, _CATCH_UP_S)
        current = state.version(*aggregate)
    if expected != current:
        return stale(aggregate[0], current, expected)
    return current


def reenabling(patch: Any, disabled: bool, what: str, path: str) -> bool | Response:
    """What a PATCH says about the record's `disabled` state: True to re-enable it (`"disabled":
    false` on a disabled record, alone), False to change it as usual, or the refusal."""
    wants = patch.disabled
    if wants is True:
        return error(400, f"Disable the {what} with DELETE {PREFIX}{path}.", "invalid_value", "disabled")
    if not disabled:
        return False  # `"disabled": false` on an enabled record: nothing to do
    if wants is False:
        others = [f for f in patch.__struct_fields__ if f not in ("disabled", "version")]
        sent = [f for f in others if not isinstance(getattr(patch, f), UnsetType)]
        if sent:
            return error(
                400,
                f'Re-enable the {what} first (PATCH with only "disabled": false), then change '
                f"{', '.join(sent)}.",
                "invalid_value",
                sent[0],
            )
        return True
    return error(
        409,
        f"The {what} is disabled; it cannot change. Re-enable it first: PATCH {PREFIX}{path} with "
        '{"disabled": false}.',
        f"{what}_disabled",
    )
