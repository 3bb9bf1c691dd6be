"""The worker pools `keyrail up --providers` and `keyrail worker --providers` accept: one per
adapter the provider registry marks available (with the operator's overrides applied)."""

from __future__ import annotations


def accepted_pools() -> tuple[str, ...]:
    from keyrail_common.registry import load_registry
    from keyrail_common.settings import load_settings

    return tuple(load_registry(load_settings().providers_override).pools())
