"""The checks a virtual model or a gateway config passes: every bad input is a 400 naming the
field (as a path into the body), cycles are found at any depth, and a config still in use cannot
be deleted."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from starlette.responses import Response

from keyrail_common.catalog import Catalog
from keyrail_common.config_events import (
    CustomModelRegistered,
    GatewayConfigSet,
    IntegrationDisabled,
    RouteTarget,
    VirtualModelSet,
)
from keyrail_ingress.admin.routing_checks import (
    check_alias,
    check_alias_target,
    check_config,
    check_config_id,
    find_cycle,
    still_referenced,
)
from keyrail_ingress.admin_types import AliasTarget, NewGatewayConfig
from tests.unit.router.test_resolve import ORG, integration, state_with

CATALOG = Catalog.load_default()


def gateway(config_id: str, *nested: str) -> GatewayConfigSet:
    return GatewayConfigSet(
        config_id=config_id,
        org_id=ORG,
        project_scope="all",
        strategy="fallback",
        targets=[RouteTarget(config=n) for n in nested]
        or [RouteTarget(provider_slug="oa", model="gpt-4o-mini")],
    )


STATE = state_with(
    integration("oa", enabled=["gpt-4o-mini", "gpt-5-mini"]),
    integration("gone"),
    IntegrationDisabled(provider_slug="gone"),
    gateway("leaf"),
    gateway("middle", "leaf"),
    gateway("top", "middle"),
    VirtualModelSet(alias="classifier", org_id=ORG, project_scope="all", target=RouteTarget(config="top")),
)


def refusal(response: Response | None) -> tuple[int, str, str]:
    assert response is not None, "expected a refusal"
    body = json.loads(bytes(response.body))["error"]
    return response.status_code, body["param"], body["message"]


def config_body(**fields: Any) -> NewGatewayConfig:
    raw = {"id": "new", "strategy": "fallback", "targets": [{"provider_slug": "oa", "model": "gpt-4o-mini"}]}
    raw.update(fields)
    return msgspec.convert(raw, NewGatewayConfig)


def check(config_id: str = "new", **fields: Any) -> Response | None:
    return check_config(STATE, CATALOG, config_id, config_body(**fields))


def test_a_valid_config_passes() -> None:
    assert check() is None
    assert check(targets=[{"config": "top"}, {"provider_slug": "oa", "model": "gpt-5-mini:flex"}]) is None


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"targets": []}, "targets", "at least one"),
        (
            {"targets": [{"provider_slug": "nope", "model": "gpt-4o-mini"}]},
            "targets[0].provider_slug",
            "does not exist",
        ),
        (
            {"targets": [{"provider_slug": "gone", "model": "gpt-4o-mini"}]},
            "targets[0].provider_slug",
            "disabled",
        ),
        ({"targets": [{"model": "gpt-4o-mini"}]}, "targets[0].provider_slug", "required"),
        ({"targets": [{"provider_slug": "oa"}]}, "targets[0].model", "required"),
        ({"targets": [{"provider_slug": "oa", "model": "gpt-4o"}]}, "targets[0].model", "does not serve"),
        (
            {"targets": [{"provider_slug": "oa", "model": "claude-sonnet-4-6"}]},
            "targets[0].model",
            "does not serve",
        ),
        ({"targets": [{"provider_slug": "oa", "model": "gpt-4o-mini:flex"}]}, "targets[0].model", "flex"),
        ({"targets": [{"config": "missing"}]}, "targets[0].config", "No gateway config 'missing'"),
        ({"targets": [{"config": "leaf", "timeout_ms": 5}]}, "targets[0].timeout_ms", "only a weight"),
        (
            {"targets": [{"config": "leaf", "override_params": {"a": 1}}]},
            "targets[0].override_params",
            "only a weight",
        ),
        (
            {
                "targets": [
                    {"provider_slug": "oa", "model": "gpt-4o-mini"},
                    {"provider_slug": "oa", "model": "gpt-4o-mini", "weight": 0},
                ]
            },
            "targets[1].weight",
            "positive",
        ),
        (
            {"targets": [{"provider_slug": "oa", "model": "gpt-4o-mini", "weight": -2}]},
            "targets[0].weight",
            "positive",
        ),
        ({"fallback_on": [503, "teapot"]}, "fallback_on[1]", "failure class"),
        ({"fallback_on": [200]}, "fallback_on[0]", "400-599"),
        (
            {"conditions": [{"when": {"tags": ["batch"]}, "target": 3}]},
            "conditions[0].target",
            "one of the 1 targets",
        ),
        (
            {"conditions": [{"when": {"tags": ["batch"]}, "target": -1}]},
            "conditions[0].target",
            "one of the 1 targets",
        ),
        ({"strategy": "conditional", "default_target": 1}, "default_target", "one of the 1 targets"),
    ],
)
def test_each_bad_config_is_a_400_naming_the_field(fields: dict[str, Any], param: str, says: str) -> None:
    status, named, message = refusal(check(**fields))
    assert (status, named) == (400, param)
    assert says in message


def test_a_config_nesting_itself_is_a_cycle() -> None:
    status, param, message = refusal(check("leaf", targets=[{"config": "leaf"}]))
    assert (status, param) == (400, "targets[0].config") and "leaf -> leaf" in message


def test_a_change_that_closes_a_cycle_three_deep_is_refused_naming_the_path() -> None:
    # top -> middle -> leaf exists; making leaf nest top closes leaf -> top -> middle -> leaf.
    status, param, message = refusal(
        check("leaf", targets=[{"provider_slug": "oa", "model": "gpt-4o-mini"}, {"config": "top"}])
    )
    assert (status, param) == (400, "targets[1].config")
    assert "leaf -> top -> middle -> leaf" in message


def test_find_cycle_over_a_diamond_without_a_cycle_is_none() -> None:
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    assert find_cycle(graph, "a") is None
    graph["d"] = ["a"]
    assert find_cycle(graph, "a") == ["a", "b", "d", "a"]


@pytest.mark.parametrize("alias", ["", "Upper", "oa/gpt-4o-mini", "gpt-5:flex", "-dash", "a" * 65])
def test_a_malformed_alias_is_a_400_naming_alias(alias: str) -> None:
    assert refusal(check_alias(alias))[:2] == (400, "alias")


@pytest.mark.parametrize("config_id", ["", "x", "Has_Upper", "a/b"])
def test_a_malformed_config_id_is_a_400_naming_id(config_id: str) -> None:
    assert refusal(check_config_id(config_id))[:2] == (400, "id")


@pytest.mark.parametrize(
    ("target", "param"),
    [
        (AliasTarget(provider_slug="nope", model="gpt-4o-mini"), "target.provider_slug"),
        (AliasTarget(provider_slug="oa", model="gpt-4o"), "target.model"),
        (AliasTarget(config="missing"), "target.config"),
        (AliasTarget(config="top", provider_slug="oa"), "target"),
    ],
)
def test_a_virtual_models_bad_target_is_a_400_naming_the_field(target: AliasTarget, param: str) -> None:
    assert refusal(check_alias_target(STATE, CATALOG, target))[:2] == (400, param)


def test_good_virtual_model_targets_pass() -> None:
    assert check_alias_target(STATE, CATALOG, AliasTarget(provider_slug="oa", model="gpt-4o-mini")) is None
    assert check_alias_target(STATE, CATALOG, AliasTarget(config="top")) is None


def test_deleting_a_config_in_use_is_a_409_naming_every_referrer() -> None:
    response = still_referenced(STATE, "top")
    assert response is not None and response.status_code == 409
    assert "virtual model 'classifier'" in json.loads(bytes(response.body))["error"]["message"]
    middle = json.loads(bytes(still_referenced(STATE, "middle").body))["error"]["message"]  # type: ignore[union-attr]
    assert "config 'top'" in middle
    assert still_referenced(STATE, "unused-anything") is None


def test_a_custom_model_registered_on_the_integration_is_a_valid_target() -> None:
    state = state_with(
        integration("oa", enabled=["gpt-4o-mini"]),
        CustomModelRegistered(
            provider_slug="oa", model_slug="ft-classifier-v3", base_model="openai/gpt-4o-mini"
        ),
    )
    custom = msgspec.convert(
        {
            "id": "c",
            "strategy": "fallback",
            "targets": [{"provider_slug": "oa", "model": "ft-classifier-v3"}],
        },
        NewGatewayConfig,
    )
    assert check_config(state, state.catalog, "c", custom) is None
    assert (
        check_alias_target(state, state.catalog, AliasTarget(provider_slug="oa", model="ft-classifier-v3"))
        is None
    )
    status, param, message = refusal(
        check_alias_target(state, state.catalog, AliasTarget(provider_slug="oa", model="ft-other"))
    )
    assert (status, param) == (400, "target.model") and "custom-models" in message
