"""From a request to its route: virtual models, gateway configs and the `:flex` tier, in the
resolution order the README documents, around `resolve_targets` (resolve.py) for model strings.

1. the `x-keyrail-config` header names a gateway config: its targets, whatever the model says
   (the model string still feeds `conditional` rules);
2. a virtual model alias in the project's scope: its target, an integration + model or a config;
3. any other model string (`<slug>/<model>`, `provider/model`, a bare catalog id) as resolve.py
   resolves it; a `:flex` suffix asks for the provider's flex tier where the catalog has one.

A config is expanded depth first into one flat list of targets, each carrying its config's
per-target settings (timeout, retries, overrides) and the `fallback_on` of the config that
listed it. A target that cannot be routed for this project (out of scope, disabled) is left out
of the chain; when none is left, the first such refusal is the answer. Pure: the random number
a `loadbalance` config needs comes from `pick`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from keyrail_common.catalog import FLEX_PRICE_FACTOR, FLEX_PRICE_VERSION_SUFFIX, FLEX_SUFFIX, Catalog
from keyrail_common.config_events import GatewayConfigSet, RouteTarget
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import RetryPolicy, RouteRequest, Target
from keyrail_common.projection import ConfigState
from keyrail_common.registry import Operation
from keyrail_common.routable import CONFIG_HEADER, in_scope
from keyrail_router.resolve import Resolver, resolve_targets
from keyrail_router.strategy import RequestFacts, target_order


@dataclass(frozen=True)
class Route:
    """The targets in the order they are to be tried, and what chose them."""

    targets: list[Target]
    config_id: str = ""  # the gateway config (from the header or the virtual model)
    virtual_model: str = ""  # the alias the request named


def model_targets(
    resolver: Resolver,
    state: ConfigState,
    project_id: str,
    model_string: str,
    pinned_slug: str = "",
    operation: Operation = Operation.CHAT,
) -> list[Target] | ErrorInfo:
    """resolve.py's targets for a model string, with the `:flex` suffix handled here."""
    if not model_string.endswith(FLEX_SUFFIX):
        return resolve_targets(resolver, state, project_id, model_string, pinned_slug, operation)
    base = model_string.removesuffix(FLEX_SUFFIX)
    targets = resolve_targets(resolver, state, project_id, base, pinned_slug, operation)
    if isinstance(targets, ErrorInfo):
        return targets
    flex = [t for t in targets if _has_flex_tier(state.catalog, t)]
    if not flex:
        return failure(
            FailureClass.BAD_REQUEST,
            f"'{base}' has no flex tier: the catalog has one only for some OpenAI models (GPT-5 and "
            "later, o3, o4-mini). Drop the ':flex' suffix.",
            code="flex_tier_unavailable",
            param="model",
        )
    return [
        msgspec.structs.replace(
            t,
            override_params={**t.override_params, "service_tier": "flex"},
            prices=msgspec.structs.replace(
                t.prices,
                factor=FLEX_PRICE_FACTOR,
                version=t.prices.version + FLEX_PRICE_VERSION_SUFFIX,
            ),
        )
        for t in flex
    ]


def _has_flex_tier(catalog: Catalog, target: Target) -> bool:
    entry = catalog.by_id(target.catalog_id)
    return entry is not None and entry.flex_tier and target.adapter == "openai"


def _configured(target: Target, spec: RouteTarget, config: GatewayConfigSet) -> Target:
    """A resolved target with the settings its config gives it."""
    return msgspec.structs.replace(
        target,
        timeout_s=spec.timeout_ms / 1000 if spec.timeout_ms else target.timeout_s,
        retry=RetryPolicy(spec.retry.attempts, spec.retry.backoff_ms) if spec.retry else target.retry,
        override_params={**target.override_params, **spec.override_params}
        if spec.override_params
        else target.override_params,
        fallback_on=config.fallback_on,
    )


class _Expansion:
    """One request's walk through a config and the configs it nests."""

    def __init__(
        self,
        resolver: Resolver,
        state: ConfigState,
        request: RouteRequest,
        facts: RequestFacts,
        pick: Callable[[], float],
    ) -> None:
        self.resolver = resolver
        self.state = state
        self.request = request
        self.facts = facts
        self.pick = pick
        self.first_refusal: ErrorInfo | None = None

    def config(self, config_id: str, param: str, seen: frozenset[str] = frozenset()) -> list[Target]:
        config = self.state.configs.get(config_id)
        project_id = self.request.project_id
        if config is None:
            self._refused(
                failure(
                    FailureClass.NOT_FOUND,
                    f"No gateway config '{config_id}'. GET /admin/v1/configs lists them.",
                    code="config_not_found",
                    param=param,
                )
            )
            return []
        if config_id in seen:  # the admin API refuses cycles; a stream written around it does not
            return []
        if not in_scope(config, project_id):
            self._refused(
                failure(
                    FailureClass.SCOPE,
                    f"Gateway config '{config_id}' is not in the scope of this API key's project "
                    f"({project_id}). A project admin can add the project to its project_scope.",
                    code="config_out_of_scope",
                    param=param,
                )
            )
            return []
        targets: list[Target] = []
        pick = self.pick() if config.strategy == "loadbalance" else 0.0  # draws only where it decides
        for index in target_order(config, self.facts, pick):
            targets.extend(self.target(config.targets[index], config, seen | {config_id}))
        return targets

    def target(
        self, spec: RouteTarget, config: GatewayConfigSet | None, seen: frozenset[str] = frozenset()
    ) -> list[Target]:
        if spec.config is not None:
            return self.config(spec.config, "model", seen)
        model = f"{spec.provider_slug}/{spec.model}"
        resolved = model_targets(
            self.resolver, self.state, self.request.project_id, model, "", self.request.operation
        )
        if isinstance(resolved, ErrorInfo):
            self._refused(resolved)
            return []
        if config is None:
            return resolved
        return [_configured(t, spec, config) for t in resolved]

    def _refused(self, error: ErrorInfo) -> None:
        if self.first_refusal is None:
            self.first_refusal = error


def resolve_route(
    resolver: Resolver, state: ConfigState, request: RouteRequest, pick: Callable[[], float]
) -> Route | ErrorInfo:
    """The request's route, or the error the client should get."""
    alias = state.virtual_models.get(request.model)
    if alias is not None and not in_scope(alias, request.project_id):
        alias = None  # another project's alias: this project sees the model string as it is
    if not request.config_id and alias is None:
        targets = model_targets(
            resolver, state, request.project_id, request.model, request.pinned_slug, request.operation
        )
        return targets if isinstance(targets, ErrorInfo) else Route(targets)
    facts = RequestFacts(tags=request.tags, model=request.model, stream=request.stream)
    expansion = _Expansion(resolver, state, request, facts, pick)
    virtual_model = alias.alias if alias is not None else ""
    if request.config_id:
        config_id = request.config_id
        targets = expansion.config(config_id, CONFIG_HEADER)
    else:
        assert alias is not None
        config_id = alias.target.config or ""
        targets = expansion.target(alias.target, None)
    if targets:
        return Route(targets, config_id, virtual_model)
    return expansion.first_refusal or failure(
        FailureClass.NOT_FOUND,
        f"Gateway config '{config_id}' has no target this project can route.",
        code="no_routable_target",
        param="model",
    )
