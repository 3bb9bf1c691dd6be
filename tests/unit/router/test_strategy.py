"""A gateway config's strategies as pure decisions: target order, conditions, weights, overrides."""

from __future__ import annotations

import random
from collections import Counter

import msgspec
import pytest

from keyrail_common.config_events import Condition, ConditionWhen, GatewayConfigSet, RouteTarget
from keyrail_router.strategy import (
    RequestFacts,
    apply_overrides,
    matches,
    merge_patch,
    target_order,
    weighted_order,
)

FACTS = RequestFacts(tags=["batch", "eu"], model="classifier", stream=False)


def config(strategy: str, weights: list[float] | None = None, **extra: object) -> GatewayConfigSet:
    weights = weights or [1.0, 1.0, 1.0]
    return GatewayConfigSet(
        config_id="c",
        org_id="org",
        project_scope="all",
        strategy=strategy,  # type: ignore[arg-type]
        targets=[RouteTarget(provider_slug=f"s{i}", model="m", weight=w) for i, w in enumerate(weights)],
        **extra,  # type: ignore[arg-type]
    )


def test_fallback_tries_the_targets_in_the_order_listed() -> None:
    assert target_order(config("fallback"), FACTS, 0.99) == [0, 1, 2]


@pytest.mark.parametrize(
    ("pick", "first"), [(0.0, 0), (0.69, 0), (0.70, 1), (0.89, 1), (0.90, 2), (0.999, 2)]
)
def test_loadbalance_picks_in_proportion_to_the_weights(pick: float, first: int) -> None:
    # weights 70/20/10: [0, 0.7) -> 0, [0.7, 0.9) -> 1, [0.9, 1) -> 2
    assert weighted_order([70, 20, 10], pick)[0] == first


def test_loadbalance_falls_back_to_the_others_heaviest_first_ties_in_listed_order() -> None:
    assert weighted_order([1, 5, 3, 5], 0.0) == [0, 1, 3, 2]
    assert weighted_order([1, 5, 3, 5], 0.99) == [3, 1, 2, 0]


def test_loadbalance_over_1000_seeded_picks_lands_within_two_points_of_70_30() -> None:
    rng = random.Random(20261201)
    lb = config("loadbalance", [70, 30])
    firsts = Counter(target_order(lb, FACTS, rng.random())[0] for _ in range(1000))
    assert abs(firsts[0] / 1000 - 0.70) < 0.02 and firsts[0] + firsts[1] == 1000


def test_seeded_loadbalance_is_reproducible() -> None:
    lb = config("loadbalance", [70, 30])
    runs = [
        [target_order(lb, FACTS, r.random())[0] for _ in range(50)]
        for r in (random.Random(7), random.Random(7))
    ]
    assert runs[0] == runs[1] and set(runs[0]) == {0, 1}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (ConditionWhen(tags=["batch"]), True),
        (ConditionWhen(tags=["batch", "eu"]), True),
        (ConditionWhen(tags=["batch", "us"]), False),  # every tag listed must be on the request
        (ConditionWhen(model="classifier"), True),
        (ConditionWhen(model="other"), False),
        (ConditionWhen(stream=False), True),
        (ConditionWhen(stream=True), False),
        (ConditionWhen(tags=["eu"], model="classifier", stream=False), True),
        (ConditionWhen(tags=["eu"], model="classifier", stream=True), False),
        (ConditionWhen(), True),
    ],
)
def test_a_condition_matches_when_every_field_it_gives_holds(when: ConditionWhen, expected: bool) -> None:
    assert matches(when, FACTS) is expected


def test_conditional_takes_the_first_matching_rule_else_the_default_target() -> None:
    rules = [
        Condition(when=ConditionWhen(tags=["interactive"]), target=0),
        Condition(when=ConditionWhen(tags=["batch"]), target=2),
        Condition(when=ConditionWhen(tags=["eu"]), target=1),
    ]
    conditional = config("conditional", conditions=rules, default_target=1)
    assert target_order(conditional, FACTS, 0.5) == [2]
    other = RequestFacts(tags=["nothing"], model="x", stream=True)
    assert target_order(conditional, other, 0.5) == [1]


def test_merge_patch_merges_objects_replaces_values_and_null_removes() -> None:
    body = {"model": "m", "temperature": 1, "metadata": {"a": "1", "b": "2"}, "stop": ["x"]}
    patch = {"temperature": 0, "metadata": {"b": None, "c": "3"}, "stop": ["y"], "seed": 7}
    assert merge_patch(body, patch) == {
        "model": "m",
        "temperature": 0,
        "metadata": {"a": "1", "c": "3"},
        "stop": ["y"],
        "seed": 7,
    }


def test_overrides_are_merged_into_the_clients_body_bytes() -> None:
    body = b'{"model":"classifier","messages":[{"role":"user","content":"hi"}],"temperature":0.7}'
    merged = msgspec.json.decode(apply_overrides(body, {"temperature": 0, "service_tier": "flex"}))
    assert merged == {
        "model": "classifier",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
        "service_tier": "flex",
    }
