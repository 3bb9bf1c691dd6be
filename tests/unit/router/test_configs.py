"""`resolve_route`: virtual models, `x-keyrail-config`, nested configs, per-target settings and
`:flex`, over a config projection and the shipped catalog (no I/O)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from keyrail_common.config_events import (
    Condition,
    ConditionWhen,
    GatewayConfigSet,
    RouteRetry,
    RouteTarget,
    VirtualModelSet,
)
from keyrail_common.failures import ErrorInfo, FailureClass
from keyrail_common.messages import RetryPolicy, RouteRequest
from keyrail_router.configs import Route, resolve_route
from tests.unit.router.test_resolve import ORG, PROJECT_A, PROJECT_B, RESOLVER, integration, state_with

MODEL = "gpt-4o-mini"


def to(slug: str, **extra: Any) -> RouteTarget:
    return RouteTarget(provider_slug=slug, model=MODEL, **extra)


def gateway(
    config_id: str, *targets: RouteTarget, strategy: str = "fallback", **extra: Any
) -> GatewayConfigSet:
    return GatewayConfigSet(
        config_id=config_id,
        org_id=ORG,
        project_scope=extra.pop("scope", "all"),
        strategy=strategy,  # type: ignore[arg-type]
        targets=list(targets),
        **extra,
    )


def alias(name: str, target: RouteTarget, scope: Any = "all") -> VirtualModelSet:
    return VirtualModelSet(alias=name, org_id=ORG, project_scope=scope, target=target)


STATE = state_with(
    integration("oa-one"),
    integration("oa-two"),
    integration("oa-three"),
    integration("oa-only-b", scope=[PROJECT_B]),
    gateway(
        "chain",
        to(
            "oa-one",
            timeout_ms=1500,
            retry=RouteRetry(attempts=2, backoff_ms=50),
            override_params={"temperature": 0},
        ),
        to("oa-two"),
        fallback_on=[503, "timeout"],
    ),
    gateway("outer", to("oa-three"), RouteTarget(config="chain")),
    gateway(
        "by-tag",
        to("oa-one"),
        RouteTarget(config="chain"),
        strategy="conditional",
        conditions=[Condition(when=ConditionWhen(tags=["batch"]), target=1)],
        default_target=0,
    ),
    gateway("weighted", to("oa-one", weight=70), to("oa-two", weight=30), strategy="loadbalance"),
    gateway("b-only", to("oa-one"), scope=[PROJECT_B]),
    gateway("skips", to("oa-only-b"), to("oa-two")),
    alias("classifier", RouteTarget(config="outer")),
    alias("fast", to("oa-two")),
    alias("b-alias", to("oa-one"), scope=[PROJECT_B]),
)


def route_request(model: str = MODEL, project: str = PROJECT_A, **extra: Any) -> RouteRequest:
    return RouteRequest(
        request_id="req_1",
        org_id=ORG,
        project_id=project,
        model=model,
        body=b"{}",
        received_ns=0,
        min_config_seq=0,
        **extra,
    )


def route(model: str = MODEL, project: str = PROJECT_A, pick: float = 0.0, **extra: Any) -> Route | ErrorInfo:
    return resolve_route(RESOLVER, STATE, route_request(model, project, **extra), lambda: pick)


def slugs(result: Route | ErrorInfo) -> list[str]:
    assert isinstance(result, Route), result
    return [t.provider_slug for t in result.targets]


def test_the_config_header_routes_by_the_config_and_carries_its_per_target_settings() -> None:
    result = route("anything", config_id="chain")
    assert isinstance(result, Route) and result.config_id == "chain" and result.virtual_model == ""
    first, second = result.targets
    assert (first.provider_slug, first.timeout_s, first.retry) == ("oa-one", 1.5, RetryPolicy(2, 50))
    assert first.override_params == {"temperature": 0}
    assert first.fallback_on == [503, "timeout"] and second.fallback_on == [503, "timeout"]
    assert (second.provider_slug, second.timeout_s, second.retry, second.override_params) == (
        "oa-two",
        0.0,
        None,
        {},
    )


def test_nested_configs_expand_depth_first_each_target_keeping_its_own_configs_fallback_on() -> None:
    result = route(config_id="outer")
    assert slugs(result) == ["oa-three", "oa-one", "oa-two"]
    assert isinstance(result, Route)
    assert [t.fallback_on for t in result.targets] == [None, [503, "timeout"], [503, "timeout"]]


def test_a_virtual_model_alias_routes_to_its_config_naming_both() -> None:
    result = route("classifier")
    assert slugs(result) == ["oa-three", "oa-one", "oa-two"]
    assert isinstance(result, Route) and (result.config_id, result.virtual_model) == ("outer", "classifier")


def test_a_virtual_model_alias_routes_to_its_integration_and_model() -> None:
    result = route("fast")
    assert slugs(result) == ["oa-two"]
    assert isinstance(result, Route) and (result.config_id, result.virtual_model) == ("", "fast")


def test_another_projects_alias_is_not_seen_the_model_string_resolves_as_it_is() -> None:
    error = route("b-alias")
    assert isinstance(error, ErrorInfo) and error.code == "model_not_found"
    assert slugs(route("b-alias", project=PROJECT_B)) == ["oa-one"]


@pytest.mark.parametrize(("tags", "expected"), [(["batch"], ["oa-one", "oa-two"]), ([], ["oa-one"])])
def test_conditional_on_tags_picks_the_nested_chain_or_the_default(
    tags: list[str], expected: list[str]
) -> None:
    result = route(config_id="by-tag", tags=tags)
    assert slugs(result) == expected
    if tags:
        assert isinstance(result, Route) and result.targets[0].retry == RetryPolicy(2, 50)


def test_loadbalance_takes_the_pick_then_falls_back_to_the_other() -> None:
    assert slugs(route(config_id="weighted", pick=0.1)) == ["oa-one", "oa-two"]
    assert slugs(route(config_id="weighted", pick=0.8)) == ["oa-two", "oa-one"]


def test_loadbalance_with_a_seeded_generator_lands_near_its_weights() -> None:
    rng = random.Random(1)
    request = route_request(config_id="weighted")
    firsts = [resolve_route(RESOLVER, STATE, request, rng.random) for _ in range(1000)]
    share = sum(1 for r in firsts if isinstance(r, Route) and r.targets[0].provider_slug == "oa-one") / 1000
    assert 0.67 < share < 0.73


def test_an_unknown_config_header_is_404_naming_the_header() -> None:
    error = route(config_id="nope")
    assert isinstance(error, ErrorInfo)
    assert (error.http_status, error.code, error.param) == (404, "config_not_found", "x-keyrail-config")


def test_a_config_out_of_the_projects_scope_is_403() -> None:
    error = route(config_id="b-only")
    assert isinstance(error, ErrorInfo) and (error.http_status, error.code) == (403, "config_out_of_scope")
    assert slugs(route(config_id="b-only", project=PROJECT_B)) == ["oa-one"]


def test_a_target_out_of_scope_is_left_out_of_the_chain() -> None:
    assert slugs(route(config_id="skips")) == ["oa-two"]


def test_flex_suffix_asks_for_the_flex_tier_where_the_catalog_has_one() -> None:
    state = state_with(integration("oa-one"))
    result = resolve_route(RESOLVER, state, route_request("oa-one/gpt-5-mini:flex"), random.random)
    assert isinstance(result, Route)
    (target,) = result.targets
    assert (target.model, target.override_params) == ("gpt-5-mini", {"service_tier": "flex"})


def test_flex_target_is_priced_at_half_the_standard_price_and_says_so() -> None:
    state = state_with(integration("oa-one"))
    standard = resolve_route(RESOLVER, state, route_request("oa-one/gpt-5-mini"), random.random)
    flex = resolve_route(RESOLVER, state, route_request("oa-one/gpt-5-mini:flex"), random.random)
    assert isinstance(standard, Route) and isinstance(flex, Route)
    (plain,), (tiered,) = standard.targets, flex.targets
    assert (plain.prices.factor, tiered.prices.factor) == (1.0, 0.5)
    assert tiered.prices.version == plain.prices.version + "+flex"
    assert (tiered.prices.input, tiered.prices.output) == (plain.prices.input, plain.prices.output)


@pytest.mark.parametrize("model", ["oa-one/gpt-4o-mini:flex", "gpt-4o-mini:flex"])
def test_flex_suffix_without_a_flex_tier_is_a_clear_400(model: str) -> None:
    error = route(model)
    assert isinstance(error, ErrorInfo)
    assert (error.http_status, error.code, error.param) == (400, "flex_tier_unavailable", "model")
    assert error.error_class is FailureClass.BAD_REQUEST and "no flex tier" in error.message


def test_plain_model_strings_resolve_as_before_with_no_config() -> None:
    result = route("oa-two/gpt-4o-mini")
    assert slugs(result) == ["oa-two"]
    assert isinstance(result, Route) and result.config_id == "" and result.targets[0].fallback_on is None
