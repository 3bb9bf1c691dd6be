"""The worker pools `keyrail up --providers` and `keyrail worker --providers` accept."""

from __future__ import annotations


def accepted_pools() -> tuple[str, ...]:
    """Every pool this build can serve (imported on demand: the worker's module is not light).

    One line to change when the provider registry (`keyrail_common.registry`) lands.
    """
    from keyrail_workers.service import SUPPORTED_FAMILIES

    return tuple(SUPPORTED_FAMILIES)
