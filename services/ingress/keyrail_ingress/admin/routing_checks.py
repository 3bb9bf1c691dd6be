"""The checks a virtual model or a gateway config passes before its event is written.

Each returns the 400 (or 409) that names the field at fault, as a JSON path into the body
(`targets[1].model`), or None; none writes anything. They read the projection and the catalog
only, so they are tested without a stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from starlette.responses import Response

from keyrail_common.catalog import FLEX_SUFFIX, Catalog
from keyrail_common.config_events import IntegrationCreated
from keyrail_common.config_state import ConfigState
from keyrail_common.failures import FailureClass
from keyrail_common.routable import model_enabled
from keyrail_ingress.admin_types import AliasTarget, GatewayConfigBody, TargetSpec
from keyrail_ingress.responses import error

ALIAS_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CONFIG_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_FAILURE_CLASSES = frozenset(c.value for c in FailureClass)


def _invalid(message: str, param: str) -> Response:
    return error(400, message, "invalid_value", param)


def check_alias(alias: str) -> Response | None:
    if ALIAS_PATTERN.match(alias):
        return None
    return _invalid(
        "alias must match ^[a-z0-9][a-z0-9._-]{0,63}$ (e.g. classifier): no '/' (that is "
        "'<provider-slug>/<model>') and no ':' (that is a tier suffix).",
        "alias",
    )


def check_config_id(config_id: str) -> Response | None:
    if CONFIG_ID_PATTERN.match(config_id):
        return None
    return _invalid("id must match ^[a-z0-9][a-z0-9-]{1,62}$ (e.g. classifier-chain).", "id")


# -- models ------------------------------------------------------------------------------------

ModelLookup = Callable[[ConfigState, Catalog, IntegrationCreated, str], bool]


def catalog_model(state: ConfigState, catalog: Catalog, integration: IntegrationCreated, model: str) -> bool:
    """A catalog model enabled on the integration; with `:flex`, one that has a flex tier."""
    base = model.removesuffix(FLEX_SUFFIX)
    entry = catalog.get(integration.provider, base)
    if entry is None or not model_enabled(integration, base):
        return False
    return entry.flex_tier or not model.endswith(FLEX_SUFFIX)


def custom_model(state: ConfigState, catalog: Catalog, integration: IntegrationCreated, model: str) -> bool:
    """A custom model registered on the integration (routed as `<slug>/<model_slug>`)."""
    return state.custom_models.get(integration.provider_slug, model) is not None


# Where a target's model may come from, tried in order.
MODEL_LOOKUPS: tuple[ModelLookup, ...] = (catalog_model, custom_model)


def check_model_target(
    state: ConfigState, catalog: Catalog, slug: str | None, model: str | None, field: str
) -> Response | None:
    """An integration (routable, not disabled) and a model it serves."""
    if not slug:
        return _invalid(f"{field}.provider_slug is required with a model.", f"{field}.provider_slug")
    integration = state.integrations.get(slug)
    if integration is None:
        gone = " is disabled" if slug in state.disabled_integrations else " does not exist"
        return _invalid(
            f"Integration '{slug}'{gone}. GET /admin/v1/integrations lists them.", f"{field}.provider_slug"
        )
    if not model:
        return _invalid(f"{field}.model is required with a provider_slug.", f"{field}.model")
    if any(lookup(state, catalog, integration, model) for lookup in MODEL_LOOKUPS):
        return None
    return _invalid(
        f"Integration '{slug}' does not serve model '{model}': use a catalog model of provider "
        f"'{integration.provider}' that is enabled on it (PUT /admin/v1/integrations/{slug}/models "
        f"enables one) or one of its custom models (POST /admin/v1/integrations/{slug}/custom-models "
        "registers one); ':flex' only where the catalog lists a flex tier.",
        f"{field}.model",
    )


def check_alias_target(state: ConfigState, catalog: Catalog, target: AliasTarget) -> Response | None:
    if target.config is not None:
        if target.provider_slug is not None or target.model is not None:
            return _invalid("target is either {provider_slug, model} or {config}, not both.", "target")
        return _known_config(state, target.config, "target.config")
    return check_model_target(state, catalog, target.provider_slug, target.model, "target")


def _known_config(state: ConfigState, config_id: str, field: str) -> Response | None:
    if config_id in state.configs:
        return None
    return _invalid(f"No gateway config '{config_id}'. GET /admin/v1/configs lists them.", field)


# -- configs -----------------------------------------------------------------------------------


def find_cycle(nested: Mapping[str, list[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start through the configs' nested configs, or None (depth first)."""
    path = [start]
    on_path = {start}
    done: set[str] = set()

    def walk(node: str) -> bool:
        for child in nested.get(node, []):
            if child == start:
                path.append(child)
                return True
            if child in on_path or child in done:
                continue
            path.append(child)
            on_path.add(child)
            if walk(child):
                return True
            path.pop()
            on_path.discard(child)
            done.add(child)
        return False

    return path if walk(start) else None


def nested_configs(state: ConfigState) -> dict[str, list[str]]:
    return {cid: [t.config for t in c.targets if t.config is not None] for cid, c in state.configs.items()}


def _check_target(state: ConfigState, catalog: Catalog, target: TargetSpec, field: str) -> Response | None:
    if not target.weight > 0:
        return _invalid(f"{field}.weight must be a positive number (got {target.weight}).", f"{field}.weight")
    if target.config is None:
        return check_model_target(state, catalog, target.provider_slug, target.model, field)
    for name, given in (
        ("provider_slug", target.provider_slug is not None),
        ("model", target.model is not None),
        ("timeout_ms", target.timeout_ms != 0),
        ("retry", target.retry is not None),
        ("override_params", bool(target.override_params)),
    ):
        if given:
            return _invalid(
                f"{field} names a nested config, which takes only a weight: set {name} on the "
                "nested config's own targets.",
                f"{field}.{name}",
            )
    return _known_config(state, target.config, f"{field}.config")


def _check_fallback_on(entries: list[int | str] | None) -> Response | None:
    for index, entry in enumerate(entries or []):
        if isinstance(entry, int) and 400 <= entry <= 599:
            continue
        if isinstance(entry, str) and entry in _FAILURE_CLASSES:
            continue
        return _invalid(
            f"fallback_on[{index}] is {entry!r}: use an HTTP status 400-599 or a failure class "
            f"({', '.join(sorted(_FAILURE_CLASSES))}).",
            f"fallback_on[{index}]",
        )
    return None


def _check_index(index: int, count: int, field: str) -> Response | None:
    if 0 <= index < count:
        return None
    return _invalid(f"{field} is {index}: it must name one of the {count} targets (0-{count - 1}).", field)


def check_config(
    state: ConfigState, catalog: Catalog, config_id: str, body: GatewayConfigBody
) -> Response | None:
    """Every target, the fallback list, the conditions and that no nesting leads back here."""
    if not body.targets:
        return _invalid("targets must name at least one target.", "targets")
    for index, target in enumerate(body.targets):
        refused = _check_target(state, catalog, target, f"targets[{index}]")
        if refused is not None:
            return refused
    refused = _check_fallback_on(body.fallback_on)
    if refused is not None:
        return refused
    for index, condition in enumerate(body.conditions):
        refused = _check_index(condition.target, len(body.targets), f"conditions[{index}].target")
        if refused is not None:
            return refused
    refused = _check_index(body.default_target, len(body.targets), "default_target")
    if refused is not None:
        return refused
    nested = nested_configs(state)
    nested[config_id] = [t.config for t in body.targets if t.config is not None]
    cycle = find_cycle(nested, config_id)
    if cycle is None:
        return None
    index = next(i for i, t in enumerate(body.targets) if t.config == cycle[1])
    return _invalid(
        f"Nesting would form a cycle: {' -> '.join(cycle)}. A config may not lead back to itself.",
        f"targets[{index}].config",
    )


def referrers(state: ConfigState, config_id: str) -> list[str]:
    """The configs and virtual models that route to this config."""
    configs = [
        f"config '{cid}'"
        for cid, config in sorted(state.configs.items())
        if any(t.config == config_id for t in config.targets)
    ]
    aliases = [
        f"virtual model '{alias}'"
        for alias, vm in sorted(state.virtual_models.items())
        if vm.target.config == config_id
    ]
    return configs + aliases


def still_referenced(state: ConfigState, config_id: str) -> Response | None:
    found = referrers(state, config_id)
    if not found:
        return None
    return error(
        409,
        f"Gateway config '{config_id}' is still used by {', '.join(found)}: change or delete those "
        "first. Nothing was deleted.",
        "config_in_use",
    )
