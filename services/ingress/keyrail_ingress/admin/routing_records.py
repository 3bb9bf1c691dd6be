"""`/admin/v1/virtual-models` and `/admin/v1/configs`: the routing records (SPEC §4a).

Both are replaced whole (`PUT` with the version read) and scoped like integrations; project
admins manage those whose whole project_scope they administer (rbac.py). Every check runs
before the one event is appended (admin/routing_checks.py), and the router routes by the record
as soon as the call returns (requests carry the config sequence the ingress has applied). A
config still used by another config or a virtual model cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    GatewayConfigBody,
    GatewayConfigChange,
    GatewayConfigList,
    NewGatewayConfig,
    NewVirtualModel,
    VirtualModelBody,
    VirtualModelChange,
    VirtualModelList,
)
from keyrail_ingress.rbac import scope_target
from keyrail_ingress.responses import error, json_response


def load_virtual_model(state: ConfigState, params: Mapping[str, str]) -> Loaded[VirtualModelSet] | Response:
    alias = params["alias"]
    vm = state.virtual_models.get(alias)
    if vm is None:
        return not_found(f"virtual model '{alias}'", "/virtual-models")
    return Loaded(vm, scope_target(vm.project_scope, f"virtual model '{alias}'"), ("virtualmodel", alias))


def load_config(state: ConfigState, params: Mapping[str, str]) -> Loaded[GatewayConfigSet] | Response:
    config_id = params["config_id"]
    config = state.configs.get(config_id)
    if config is None:
        return not_found(f"gateway config '{config_id}'", "/configs")
    target = scope_target(config.project_scope, f"gateway config '{config_id}'")
    return Loaded(config, target, ("gatewayconfig", config_id))


def _visible(c: Command[Any, Any], scope: str | list[str]) -> bool:
    visible = c.visible()
    return visible is None or scope == "all" or bool(visible & set(scope))


def _taken(what: str, name: str, field: str) -> Response:
    return error(
        409, f"{what} '{name}' already exists: replace it with PUT, or pick another.", "conflict", field
    )


async def _create(c: Command[None, Any], event: ConfigEvent, aggregate: tuple[str, str]) -> bool:
    """Append a creation; False when another writer created it first. A name used before (and
    deleted) has a version already: the append expects that one."""
    try:
        await c.ctx.publisher.publish(
            event, actor=c.caller.user_id, expected_version=c.state.version(*aggregate)
        )
    except ConcurrencyConflict:
        return False
    return True


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


@admin_route(
    "POST", "/virtual-models", "virtual_model.create", body=NewVirtualModel, scoped_body="virtual model"
)
async def create_virtual_model(c: Command[None, NewVirtualModel]) -> Response:
    alias = c.body.alias
    refused = check_alias(alias)
    if refused is not None:
        return refused
    if alias in c.state.virtual_models:
        return _taken("Virtual model", alias, "alias")
    event = _virtual_model(c, alias, c.body)
    if isinstance(event, Response):
        return event
    if not await _create(c, event, ("virtualmodel", alias)):
        return _taken("Virtual model", alias, "alias")
    return json_response(virtual_model_view(c.state, c.state.virtual_models[alias]), 201)


@admin_route("GET", "/virtual-models", "virtual_model.list")
async def list_virtual_models(c: Command[None, None]) -> Response:
    shown = [vm for _, vm in sorted(c.state.virtual_models.items()) if _visible(c, vm.project_scope)]
    return json_response(
        VirtualModelList(data=[virtual_model_view(c.state, vm) for vm in shown], next_cursor=None)
    )


@admin_route("GET", "/virtual-models/{alias}", "virtual_model.read", load=load_virtual_model)
async def get_virtual_model(c: Command[VirtualModelSet, None]) -> Response:
    return json_response(virtual_model_view(c.state, c.record))


@admin_route(
    "PUT",
    "/virtual-models/{alias}",
    "virtual_model.update",
    load=load_virtual_model,
    body=VirtualModelChange,
    versioned=True,
    scoped_body="virtual model",
)
async def replace_virtual_model(c: Command[VirtualModelSet, VirtualModelChange]) -> Response:
    event = _virtual_model(c, c.record.alias, c.body)
    if isinstance(event, Response):
        return event
    if event != c.record:
        await c.publish(event)
    return json_response(virtual_model_view(c.state, c.state.virtual_models[event.alias]))


@admin_route(
    "DELETE", "/virtual-models/{alias}", "virtual_model.delete", load=load_virtual_model, versioned=True
)
async def delete_virtual_model(c: Command[VirtualModelSet, None]) -> Response:
    """Requests naming the alias resolve it as any other model string from then on."""
    await c.publish(VirtualModelRemoved(alias=c.record.alias))
    return json_response(virtual_model_view(c.state, c.record))


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


@admin_route("POST", "/configs", "config.create", body=NewGatewayConfig, scoped_body="gateway config")
async def create_config(c: Command[None, NewGatewayConfig]) -> Response:
    config_id = c.body.id
    refused = check_config_id(config_id)
    if refused is not None:
        return refused
    if config_id in c.state.configs:
        return _taken("Gateway config", config_id, "id")
    event = _config(c, config_id, c.body)
    if isinstance(event, Response):
        return event
    if not await _create(c, event, ("gatewayconfig", config_id)):
        return _taken("Gateway config", config_id, "id")
    return json_response(config_view(c.state, c.state.configs[config_id]), 201)


@admin_route("GET", "/configs", "config.list")
async def list_configs(c: Command[None, None]) -> Response:
    shown = [cfg for _, cfg in sorted(c.state.configs.items()) if _visible(c, cfg.project_scope)]
    return json_response(
        GatewayConfigList(data=[config_view(c.state, cfg) for cfg in shown], next_cursor=None)
    )


@admin_route("GET", "/configs/{config_id}", "config.read", load=load_config)
async def get_config(c: Command[GatewayConfigSet, None]) -> Response:
    return json_response(config_view(c.state, c.record))


@admin_route(
    "PUT",
    "/configs/{config_id}",
    "config.update",
    load=load_config,
    body=GatewayConfigChange,
    versioned=True,
    scoped_body="gateway config",
)
async def replace_config(c: Command[GatewayConfigSet, GatewayConfigChange]) -> Response:
    event = _config(c, c.record.config_id, c.body)
    if isinstance(event, Response):
        return event
    if event != c.record:
        await c.publish(event)
    return json_response(config_view(c.state, c.state.configs[event.config_id]))


@admin_route("DELETE", "/configs/{config_id}", "config.delete", load=load_config, versioned=True)
async def delete_config(c: Command[GatewayConfigSet, None]) -> Response:
    refused = still_referenced(c.state, c.record.config_id)
    if refused is not None:
        return refused
    await c.publish(GatewayConfigRemoved(config_id=c.record.config_id))
    return json_response(config_view(c.state, c.record))
