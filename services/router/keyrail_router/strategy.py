"""A gateway config's strategies, as pure decisions: in which order its targets are tried, and what
a target's parameter overrides make of the client's body.

- `fallback`: the targets in the order listed.
- `loadbalance`: one target picked at random in proportion to its weight, then the others as its
  fallbacks, heaviest first (ties in the order listed) — so a dead target costs a fallback, not
  an error.
- `conditional`: the target of the first condition that matches the request, else
  `default_target`; only that one (nest a `fallback` config there to fall back).

The random number comes from the caller (`pick`, in [0, 1)), so a seeded generator makes every
decision here reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from keyrail_common.config_events import ConditionWhen, GatewayConfigSet


@dataclass(frozen=True)
class RequestFacts:
    """What conditions look at: the request's dynamic tags, its model string and `stream`."""

    tags: Sequence[str]
    model: str
    stream: bool


def matches(when: ConditionWhen, facts: RequestFacts) -> bool:
    """Every field the condition gives must hold: all its tags on the request, the same model
    string, the same `stream`. A condition that gives no field matches every request."""
    if when.model is not None and when.model != facts.model:
        return False
    if when.stream is not None and when.stream != facts.stream:
        return False
    return all(tag in facts.tags for tag in when.tags)


def weighted_order(weights: Sequence[float], pick: float) -> list[int]:
    """The index chosen with probability weight / total, then the rest heaviest first."""
    total = sum(weights)
    threshold = pick * total
    chosen = len(weights) - 1
    running = 0.0
    for index, weight in enumerate(weights):
        running += weight
        if threshold < running:
            chosen = index
            break
    rest = sorted((i for i in range(len(weights)) if i != chosen), key=lambda i: -weights[i])
    return [chosen, *rest]


def target_order(config: GatewayConfigSet, facts: RequestFacts, pick: float) -> list[int]:
    """The indices of `config.targets`, in the order they are to be tried."""
    match config.strategy:
        case "loadbalance":
            return weighted_order([t.weight for t in config.targets], pick)
        case "conditional":
            for condition in config.conditions:
                if matches(condition.when, facts):
                    return [condition.target]
            return [config.default_target]
        case _:
            return list(range(len(config.targets)))


def merge_patch(into: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, `null` removes a key, anything else
    replaces the value."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(into) if isinstance(into, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def apply_overrides(body: bytes, overrides: dict[str, Any]) -> bytes:
    """The client's JSON body with a target's overrides merged in (only called when there are
    some: the body otherwise travels untouched, as bytes)."""
    return msgspec.json.encode(merge_patch(msgspec.json.decode(body), overrides))
