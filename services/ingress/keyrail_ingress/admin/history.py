"""The change history behind `GET /admin/v1/events`: who changed what, when, before and after.

The ingress's projection calls `ChangeHistory` for every event it applies (a projection
Observer), so the history is rebuilt from the stream on every start, exactly like the state. Each
entry compares the aggregate as the admin API shows it (admin/views.py) before and after the
event. Those views hold no secret (no credential, token or key, not even a hash), so neither
does the history: a credential rotation shows as `credential_version` 1 -> 2.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from keyrail_common.config_events import ConfigEnvelope
from keyrail_common.config_state import ConfigState, EventMeta
from keyrail_ingress.admin.model_views import catalog_view, custom_model_view
from keyrail_ingress.admin.views import (
    integration_view,
    iso,
    key_view,
    project_view,
    token_view,
    user_view,
)
from keyrail_ingress.admin_types import ChangeEntry, FieldChange

AGGREGATES = ("org", "user", "admintoken", "project", "apikey", "integration", "custommodel", "catalog")
_NOT_COMPARED = {"version", "last_used_at"}  # change with every event, or are not configuration


def snapshot(state: ConfigState, aggregate: str, aggregate_id: str) -> dict[str, Any] | None:
    """The aggregate as the admin API shows it, as plain values; None when it does not exist."""
    view: Any = None
    match aggregate:
        case "org":
            view = {"name": state.org.name} if state.org and state.org.org_id == aggregate_id else None
        case "user":
            user = state.users.get(aggregate_id)
            view = user_view(state, user) if user else None
        case "admintoken":
            token = state.admin_tokens.get(aggregate_id)
            view = token_view(state, token) if token else None
        case "project":
            project = state.projects.get(aggregate_id)
            view = project_view(state, project) if project else None
        case "apikey":
            key = state.api_keys.get(aggregate_id)
            view = key_view(state, key) if key else None
        case "integration":
            integration = state.integration(aggregate_id)
            view = integration_view(state, integration) if integration else None
        case "custommodel":
            slug, _, model_slug = aggregate_id.partition("/")
            custom = state.custom_models.get(slug, model_slug)
            view = custom_model_view(state, custom) if custom else None
        case "catalog":
            entry = state.catalog.by_id(aggregate_id)
            view = catalog_view(state, entry) if entry else None
    if view is None:
        return None
    fields: dict[str, Any] = msgspec.to_builtins(view)
    return {k: v for k, v in fields.items() if k not in _NOT_COMPARED}


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, FieldChange]:
    old, new = before or {}, after or {}
    return {
        name: FieldChange(before=old.get(name), after=new.get(name))
        for name in (*new, *(n for n in old if n not in new))
        if old.get(name) != new.get(name)
    }


def projects_of(state: ConfigState, aggregate: str, aggregate_id: str) -> frozenset[str] | None:
    """The projects whose members may read the entry (None: every project); users, tokens and the
    organisation are for owners only."""
    if aggregate == "project":
        return frozenset({aggregate_id})
    if aggregate == "apikey":
        key = state.api_keys.get(aggregate_id)
        return frozenset({key.project_id}) if key else frozenset()
    if aggregate == "catalog":
        return None  # the catalog is everyone's
    if aggregate in ("integration", "custommodel"):
        integration = state.integration(aggregate_id.partition("/")[0])
        if integration is None:
            return frozenset()
        scope = integration.project_scope
        return None if scope == "all" else frozenset(scope)
    return frozenset()


@dataclass(frozen=True)
class _Entry:
    change: ChangeEntry
    ts: float
    projects: frozenset[str] | None


class ChangeHistory:
    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def __call__(
        self, state: ConfigState, meta: EventMeta, envelope: ConfigEnvelope, apply: Callable[[], None]
    ) -> None:
        aggregate, _, aggregate_id = meta.aggregate_key.partition(".")
        before = snapshot(state, aggregate, aggregate_id)
        apply()
        after = snapshot(state, aggregate, aggregate_id)
        change = ChangeEntry(
            seq=meta.seq,
            ts=iso(envelope.ts) or "",
            actor=envelope.actor,
            aggregate=aggregate,
            aggregate_id=aggregate_id,
            type=str(type(envelope.event).__struct_config__.tag),
            changes=changes(before, after),
        )
        self._entries.append(_Entry(change, envelope.ts, projects_of(state, aggregate, aggregate_id)))

    def query(
        self,
        visible: frozenset[str] | None,
        aggregate: str = "",
        aggregate_id: str = "",
        actor: str = "",
        since: float = 0.0,
        limit: int = 100,
        before_seq: int = 0,
    ) -> list[ChangeEntry]:
        """The newest `limit` matching changes, newest first; `visible`: the caller's projects
        (None: an owner, who sees everything); `before_seq`: only changes older than that stream
        sequence (the next page; 0: from the newest)."""
        found: list[ChangeEntry] = []
        start = bisect_left(self._entries, before_seq, key=lambda e: e.change.seq) if before_seq else None
        for entry in reversed(self._entries[:start]):
            if len(found) >= limit:
                break
            change = entry.change
            if entry.ts < since:
                continue  # not `break`: two ingresses' clocks may disagree by a little
            if (aggregate and change.aggregate != aggregate) or (
                aggregate_id and change.aggregate_id != aggregate_id
            ):
                continue
            if actor and change.actor != actor:
                continue
            if visible is not None and entry.projects is not None and not entry.projects & visible:
                continue
            found.append(change)
        return found
