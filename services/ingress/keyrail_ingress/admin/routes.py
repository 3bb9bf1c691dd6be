"""Every admin route: importing the resource modules registers their routes on `router`."""

from __future__ import annotations

from keyrail_ingress.admin import (
    activity,
    catalog,
    costs,
    custom_models,
    events,
    health,
    integrations,
    projects,
    routing_records,
    users,
)
from keyrail_ingress.admin.command import ROUTES, router

__all__ = ["MODULES", "ROUTES", "router"]

MODULES = (
    users,
    projects,
    integrations,
    health,
    custom_models,
    catalog,
    routing_records,
    activity,
    costs,
    events,
)
