"""`/admin/v1/virtual-models` and `/admin/v1/configs`: the routing records (SPEC §4a).

Both are replaced whole (`PUT` with the version read) and scoped like integrations; project
admins manage those whose whole project_scope they administer (rbac.py). Every check runs
before the one event is appended (admin/routing_checks.py), and the router routes by the record
as soon as the call returns (requests carry the config sequence the ingress has applied). A
config still used by another config or a virtual model cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from starlette.responses import Response

from keyrail_common.config_events import (
    Condition,
    ConfigEvent,
    GatewayConfigRemoved,
    GatewayConfigSet,
    RouteTarget,
    VirtualModelRemoved,
    VirtualModelSet,
)
from keyrail_common.config_state import ConfigState
from keyrail_common.projection import ConcurrencyConflict
from keyrail_ingress.admin.command import Command, Loaded, admin_route, not_found
from keyrail_ingress.admin.integration_checks import check_scope
from keyrail_ingress.admin.routing_checks import (
    check_alias,
    check_alias_target,
    check_config,
    check_config_id,
    still_referenced,
)
from keyrail_ingress.admin.views import config_view, virtual_model_view
from keyrail_ingress.admin_types import (
    GatewayConfig,
    GatewayConfigBody,
    GatewayConfigChange,
    GatewayConfigList,
    NewGatewayConfig,
    NewVirtualModel,
    VirtualModel,
    VirtualModelBody,
    VirtualModelChange,
    VirtualModelList,
)
from keyrail_ingress.rbac import scope_target
from keyrail_ingress.responses import error, json_response

R = TypeVar("R", VirtualModelSet, GatewayConfigSet)  # the record, as its set-event
V = TypeVar("V")  # its admin view


@dataclass(frozen=True)
class _Kind(Generic[R, V]):
    """What differs between the two routing records; everything else is the same code."""

    label: str  # "virtual model", as messages name it
    aggregate: str  # the event stream's aggregate name
    key: str  # the path parameter and the body field naming one record
    listing: str  # the list route, for not-found hints
    records: Callable[[ConfigState], Mapping[str, R]]
    view: Callable[[ConfigState, R], V]
    check_name: Callable[[str], Response | None]
    build: Callable[[Command[Any, Any], str, Any], R | Response]  # the set-event from a body

    def load(self, state: ConfigState, params: Mapping[str, str]) -> Loaded[R] | Response:
        name = params[self.key]
        record = self.records(state).get(name)
        what = f"{self.label} '{name}'"
        if record is None:
            return not_found(what, self.listing)
        return Loaded(record, scope_target(record.project_scope, what), (self.aggregate, name))

    def taken(self, name: str, field: str) -> Response:
        return error(
            409,
            f"{self.label.capitalize()} '{name}' already exists: replace it with PUT, or pick another.",
            "conflict",
            field,
        )

    async def create(self, c: Command[None, Any], name: str, field: str) -> Response:
        """A name used before (and deleted) has a version already: the append expects that one;
        another writer creating it first makes it taken."""
        refused = self.check_name(name)
        if refused is not None:
            return refused
        if name in self.records(c.state):
            return self.taken(name, field)
        event = self.build(c, name, c.body)
        if isinstance(event, Response):
            return event
        try:
            await c.ctx.publisher.publish(
                event, actor=c.caller.user_id, expected_version=c.state.version(self.aggregate, name)
            )
        except ConcurrencyConflict:
            return self.taken(name, field)
        return json_response(self.view(c.state, self.records(c.state)[name]), 201)

    def shown(self, c: Command[Any, Any]) -> list[V]:
        return [
            self.view(c.state, record)
            for _, record in sorted(self.records(c.state).items())
            if c.sees(record.project_scope)
        ]

    async def replace(self, c: Command[R, Any], name: str) -> Response:
        event = self.build(c, name, c.body)
        if isinstance(event, Response):
            return event
        if event != c.record:
            await c.publish(event)
        return json_response(self.view(c.state, self.records(c.state)[name]))

    async def remove(self, c: Command[R, None], event: ConfigEvent) -> Response:
        await c.publish(event)
        return json_response(self.view(c.state, c.record))


# -- virtual models ----------------------------------------------------------------------------


def _virtual_model(c: Command[Any, Any], alias: str, body: VirtualModelBody) -> VirtualModelSet | Response:
    refused = check_scope(c.state, body.project_scope) or check_alias_target(
        c.state, c.state.catalog, body.target
    )
    if refused is not None:
        return refused
    target = RouteTarget(
        provider_slug=body.target.provider_slug, model=body.target.model, config=body.target.config
    )
    return VirtualModelSet(alias=alias, org_id=c.org_id, project_scope=body.project_scope, target=target)


VIRTUAL_MODELS: _Kind[VirtualModelSet, VirtualModel] = _Kind(
    label="virtual model",
    aggregate="virtualmodel",
    key="alias",
    listing="/virtual-models",
    records=lambda state: state.virtual_models,
    view=virtual_model_view,
    check_name=check_alias,
    build=_virtual_model,
)


@admin_route(
    "POST", "/virtual-models", "virtual_model.create", body=NewVirtualModel, scoped_body="virtual model"
)
async def create_virtual_model(c: Command[None, NewVirtualModel]) -> Response:
    return await VIRTUAL_MODELS.create(c, c.body.alias, "alias")


@admin_route("GET", "/virtual-models", "virtual_model.list")
async def list_virtual_models(c: Command[None, None]) -> Response:
    return json_response(VirtualModelList(data=VIRTUAL_MODELS.shown(c), next_cursor=None))


@admin_route("GET", "/virtual-models/{alias}", "virtual_model.read", load=VIRTUAL_MODELS.load)
async def get_virtual_model(c: Command[VirtualModelSet, None]) -> Response:
    return json_response(virtual_model_view(c.state, c.record))


@admin_route(
    "PUT",
    "/virtual-models/{alias}",
    "virtual_model.update",
    load=VIRTUAL_MODELS.load,
    body=VirtualModelChange,
    versioned=True,
    scoped_body="virtual model",
)
async def replace_virtual_model(c: Command[VirtualModelSet, VirtualModelChange]) -> Response:
    return await VIRTUAL_MODELS.replace(c, c.record.alias)


@admin_route(
    "DELETE", "/virtual-models/{alias}", "virtual_model.delete", load=VIRTUAL_MODELS.load, versioned=True
)
async def delete_virtual_model(c: Command[VirtualModelSet, None]) -> Response:
    """Requests naming the alias resolve it as any other model string from then on."""
    return await VIRTUAL_MODELS.remove(c, VirtualModelRemoved(alias=c.record.alias))


# -- gateway configs ---------------------------------------------------------------------------


def _config(c: Command[Any, Any], config_id: str, body: GatewayConfigBody) -> GatewayConfigSet | Response:
    refused = check_scope(c.state, body.project_scope) or check_config(
        c.state, c.state.catalog, config_id, body
    )
    if refused is not None:
        return refused
    return GatewayConfigSet(
        config_id=config_id,
        org_id=c.org_id,
        project_scope=body.project_scope,
        strategy=body.strategy,
        targets=msgspec.convert(msgspec.to_builtins(body.targets), list[RouteTarget]),
        fallback_on=body.fallback_on,
        conditions=msgspec.convert(msgspec.to_builtins(body.conditions), list[Condition]),
        default_target=body.default_target,
    )


CONFIGS: _Kind[GatewayConfigSet, GatewayConfig] = _Kind(
    label="gateway config",
    aggregate="gatewayconfig",
    key="config_id",
    listing="/configs",
    records=lambda state: state.configs,
    view=config_view,
    check_name=check_config_id,
    build=_config,
)


@admin_route("POST", "/configs", "config.create", body=NewGatewayConfig, scoped_body="gateway config")
async def create_config(c: Command[None, NewGatewayConfig]) -> Response:
    return await CONFIGS.create(c, c.body.id, "id")


@admin_route("GET", "/configs", "config.list")
async def list_configs(c: Command[None, None]) -> Response:
    return json_response(GatewayConfigList(data=CONFIGS.shown(c), next_cursor=None))


@admin_route("GET", "/configs/{config_id}", "config.read", load=CONFIGS.load)
async def get_config(c: Command[GatewayConfigSet, None]) -> Response:
    return json_response(config_view(c.state, c.record))


@admin_route(
    "PUT",
    "/configs/{config_id}",
    "config.update",
    load=CONFIGS.load,
    body=GatewayConfigChange,
    versioned=True,
    scoped_body="gateway config",
)
async def replace_config(c: Command[GatewayConfigSet, GatewayConfigChange]) -> Response:
    return await CONFIGS.replace(c, c.record.config_id)


@admin_route("DELETE", "/configs/{config_id}", "config.delete", load=CONFIGS.load, versioned=True)
async def delete_config(c: Command[GatewayConfigSet, None]) -> Response:
    refused = still_referenced(c.state, c.record.config_id)
    if refused is not None:
        return refused
    return await CONFIGS.remove(c, GatewayConfigRemoved(config_id=c.record.config_id))
