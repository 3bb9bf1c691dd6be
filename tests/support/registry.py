"""The shipped provider registry as a version that lacks one adapter: tests of what happens to a
target whose wire format is not available must not depend on which adapters ship today."""

from __future__ import annotations

from keyrail_common.registry import AdapterInfo, ProviderRegistry, load_registry


def registry_lacking(adapter: str) -> ProviderRegistry:
    shipped = load_registry()
    adapters = {**shipped.adapters, adapter: AdapterInfo(available=False)}
    return ProviderRegistry(shipped.entries(), adapters, shipped.custom_host_formats)
