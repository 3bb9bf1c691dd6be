"""Gateway configs and virtual models on the real stack: fallback, aliases, conditional routing on
dynamic tags, retries, caller errors that never fall back, and records routable the moment the
admin call returns. The upstream is the mock; a target's `override_params` carry the mock's fault
plan (`{"mock": {...}}`), so one target of a config fails while the next one answers."""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import MODEL
from tests.support.control_plane import api_key, config_last_seq, created, integration, project
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

MESSAGES: list[Any] = [{"role": "user", "content": "route me"}]


class World:
    def __init__(self, stack: KeyrailStack, upstream: MockUpstream) -> None:
        self.stack = stack
        self.project = project(stack, "gateway configs")
        for slug in ("cfg-primary", "cfg-secondary", "cfg-batch"):
            integration(stack, upstream, slug, [self.project])
        self.key = api_key(stack, self.project)["key"]
        self.client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=self.key, max_retries=0)

    def config(self, config_id: str, strategy: str = "fallback", **fields: Any) -> dict[str, Any]:
        body = {"id": config_id, "project_scope": [self.project], "strategy": strategy, **fields}
        return created(self.stack.admin("POST", "/admin/v1/configs", body))

    def attempts(self, request_id: str, expected_rows: int) -> list[dict[str, Any]]:
        rows = self.stack.activity_rows(request_id, expected=expected_rows)
        return sorted((r for r in rows if r["kind"] == "attempt"), key=lambda r: r["attempt"])


@pytest.fixture(scope="module")
def world(stack: KeyrailStack, upstream: MockUpstream) -> World:
    return World(stack, upstream)


def fresh(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def target(slug: str, **extra: Any) -> dict[str, Any]:
    return {"provider_slug": slug, "model": MODEL, **extra}


def failing(slug: str, status: int, **mock: Any) -> dict[str, Any]:
    return target(slug, override_params={"mock": {"status": status, **mock}})


def test_a_fallback_config_serves_from_the_second_target_when_the_first_answers_503(world: World) -> None:
    config_id = fresh("fallback")
    world.config(config_id, targets=[failing("cfg-primary", 503), target("cfg-secondary")])

    raw = world.client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers={"x-keyrail-config": config_id}
    )

    assert raw.parse().choices[0].message.content == DEFAULT_REPLY
    assert raw.headers["x-keyrail-attempts"] == "2"
    assert raw.headers["x-keyrail-provider-slug"] == "cfg-secondary"
    assert raw.headers["x-keyrail-config"] == config_id
    request_id = raw.headers["x-keyrail-request-id"]
    attempts = world.attempts(request_id, expected_rows=3)
    assert [
        (r["provider_slug"], r["status"], r["http_status"], r["fallback_position"], r["config_id"])
        for r in attempts
    ] == [("cfg-primary", "error", 503, 0, config_id), ("cfg-secondary", "ok", 200, 1, config_id)]
    (request_row,) = [r for r in world.stack.activity_rows(request_id, 3) if r["kind"] == "request"]
    assert (request_row["provider_slug"], request_row["config_id"]) == ("cfg-secondary", config_id)


def test_a_virtual_model_alias_routes_through_its_config(world: World) -> None:
    config_id, alias = fresh("alias-chain"), fresh("classifier")
    world.config(config_id, targets=[failing("cfg-primary", 502), target("cfg-secondary")])
    created(
        world.stack.admin(
            "POST",
            "/admin/v1/virtual-models",
            {"alias": alias, "project_scope": [world.project], "target": {"config": config_id}},
        )
    )

    raw = world.client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES)

    assert raw.parse().choices[0].message.content == DEFAULT_REPLY
    assert (raw.headers["x-keyrail-config"], raw.headers["x-keyrail-attempts"]) == (config_id, "2")
    rows = world.stack.activity_rows(raw.headers["x-keyrail-request-id"], expected=3)
    by_kind = sorted(
        (r["kind"], r["attempt"], r["provider_slug"], r["virtual_model"], r["config_id"]) for r in rows
    )
    assert by_kind == [
        ("attempt", 1, "cfg-primary", alias, config_id),
        ("attempt", 2, "cfg-secondary", alias, config_id),
        ("request", 2, "cfg-secondary", alias, config_id),
    ]
    # The alias is a model string the key can send, listed for its project only.
    assert alias in [m.id for m in world.client.models.list().data]
    other = api_key(world.stack, project(world.stack, "no aliases here"))["key"]
    elsewhere = openai.OpenAI(base_url=f"{world.stack.url}/v1", api_key=other, max_retries=0)
    assert alias not in [m.id for m in elsewhere.models.list().data]


def test_a_stream_through_a_config_falls_back_before_its_first_content(world: World) -> None:
    config_id = fresh("stream-chain")
    world.config(config_id, targets=[failing("cfg-primary", 503), target("cfg-secondary")])

    with world.client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-keyrail-config": config_id}
    ) as response:
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
        headers = response.headers

    assert text == DEFAULT_REPLY
    assert (headers["x-keyrail-provider-slug"], headers["x-keyrail-attempts"]) == ("cfg-secondary", "2")
    assert headers["x-keyrail-config"] == config_id
    attempts = world.attempts(headers["x-keyrail-request-id"], expected_rows=3)
    assert [(r["provider_slug"], r["fallback_position"], r["stream"]) for r in attempts] == [
        ("cfg-primary", 0, 1),
        ("cfg-secondary", 1, 1),
    ]


def test_conditional_routing_follows_x_keyrail_tags_and_a_replaced_config_at_once(world: World) -> None:
    config_id = fresh("by-tag")
    made = world.config(
        config_id,
        strategy="conditional",
        targets=[target("cfg-primary"), target("cfg-batch")],
        conditions=[{"when": {"tags": ["batch"]}, "target": 1}],
        default_target=0,
    )

    def served(tags: str | None) -> str:
        headers = {"x-keyrail-config": config_id, **({"x-keyrail-tags": tags} if tags else {})}
        raw = world.client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, extra_headers=headers
        )
        return raw.headers["x-keyrail-provider-slug"]

    assert [served("batch"), served("eu,batch"), served(None), served("interactive")] == [
        "cfg-batch",
        "cfg-batch",
        "cfg-primary",
        "cfg-primary",
    ]
    # The routing rule changes, the application does not: the next request follows the new rule.
    replaced = world.stack.admin(
        "PUT",
        f"/admin/v1/configs/{config_id}",
        {
            "project_scope": [world.project],
            "strategy": "conditional",
            "targets": [target("cfg-primary"), target("cfg-batch"), target("cfg-secondary")],
            "conditions": [{"when": {"tags": ["batch"]}, "target": 2}],
        },
        headers={"If-Match": str(made["version"])},
    )
    assert replaced.status_code == 200, replaced.text
    assert served("batch") == "cfg-secondary"


def test_a_target_with_retries_rides_out_429s_then_succeeds(world: World) -> None:
    config_id = fresh("retrying")
    key = fresh("rate-limited")
    world.config(
        config_id,
        targets=[
            failing("cfg-primary", 429, times=2, key=key) | {"retry": {"attempts": 3, "backoff_ms": 20}},
            target("cfg-secondary"),
        ],
    )

    raw = world.client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers={"x-keyrail-config": config_id}
    )

    assert raw.headers["x-keyrail-provider-slug"] == "cfg-primary"
    assert raw.headers["x-keyrail-attempts"] == "3"
    attempts = world.attempts(raw.headers["x-keyrail-request-id"], expected_rows=4)
    assert [(r["provider_slug"], r["http_status"], r["fallback_position"]) for r in attempts] == [
        ("cfg-primary", 429, 0),
        ("cfg-primary", 429, 0),
        ("cfg-primary", 200, 0),
    ]
    assert [r["error_class"] for r in attempts] == ["rate_limit", "rate_limit", ""]


def test_a_400_from_the_first_target_does_not_fall_back(world: World) -> None:
    config_id = fresh("caller-error")
    world.config(
        config_id,
        targets=[failing("cfg-primary", 400), target("cfg-secondary")],
        fallback_on=[400, 429, 503],  # even when the list names 400: a caller error never falls back
    )

    with pytest.raises(openai.BadRequestError) as caught:
        world.client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-keyrail-config": config_id}
        )

    headers = caught.value.response.headers
    assert headers["x-keyrail-attempts"] == "1" and headers["x-keyrail-provider-slug"] == "cfg-primary"
    attempts = world.attempts(headers["x-keyrail-request-id"], expected_rows=2)
    assert [(r["provider_slug"], r["error_class"]) for r in attempts] == [("cfg-primary", "caller_error")]


def test_records_are_routable_the_moment_the_call_returns_and_gone_when_deleted(world: World) -> None:
    alias = fresh("instant")
    made = created(
        world.stack.admin(
            "POST",
            "/admin/v1/virtual-models",
            {"alias": alias, "project_scope": [world.project], "target": target("cfg-batch")},
        )
    )
    raw = world.client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES)
    assert raw.headers["x-keyrail-provider-slug"] == "cfg-batch" and "x-keyrail-config" not in raw.headers

    removed = world.stack.admin(
        "DELETE", f"/admin/v1/virtual-models/{alias}", headers={"If-Match": str(made["version"])}
    )
    assert removed.status_code == 200, removed.text
    with pytest.raises(openai.NotFoundError):
        world.client.chat.completions.create(model=alias, messages=MESSAGES)
    # The alias may be used again, and routes again at once.
    again = {"alias": alias, "project_scope": [world.project], "target": target("cfg-secondary")}
    assert created(world.stack.admin("POST", "/admin/v1/virtual-models", again))["version"] > made["version"]
    raw = world.client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES)
    assert raw.headers["x-keyrail-provider-slug"] == "cfg-secondary"


def test_an_unknown_config_header_is_a_404_naming_it(world: World) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        world.client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-keyrail-config": "no-such-config"}
        )
    body = caught.value.response.json()["error"]
    assert (body["code"], body["param"]) == ("config_not_found", "x-keyrail-config")
    assert "no-such-config" in body["message"]


def test_bad_configs_are_400s_naming_the_field_and_leave_no_event(world: World) -> None:
    before = config_last_seq(world.stack)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"targets": [target("no-such-slug")]}, "targets[0].provider_slug"),
        ({"targets": [{"provider_slug": "cfg-primary", "model": "gpt-4o"}]}, "targets[0].model"),
        ({"targets": [target("cfg-primary", weight=0)]}, "targets[0].weight"),
        ({"targets": [{"config": "not-there"}]}, "targets[0].config"),
        ({"targets": [target("cfg-primary")], "fallback_on": ["sometimes"]}, "fallback_on[0]"),
        (
            {"targets": [target("cfg-primary")], "conditions": [{"when": {}, "target": 4}]},
            "conditions[0].target",
        ),
    ]
    for fields, param in cases:
        body: dict[str, Any] = {"id": fresh("bad"), "project_scope": [world.project], "strategy": "fallback"}
        body.update(fields)
        response = world.stack.admin("POST", "/admin/v1/configs", body)
        assert response.status_code == 400, (param, response.text)
        assert response.json()["error"]["param"] == param
    assert config_last_seq(world.stack) == before


def test_a_config_in_use_cannot_be_deleted_and_a_cycle_cannot_be_made(world: World) -> None:
    inner, outer = fresh("inner"), fresh("outer")
    inner_made = world.config(inner, targets=[target("cfg-primary")])
    world.config(outer, targets=[{"config": inner}])

    refused = world.stack.admin(
        "DELETE", f"/admin/v1/configs/{inner}", headers={"If-Match": str(inner_made["version"])}
    )
    assert refused.status_code == 409 and f"config '{outer}'" in refused.json()["error"]["message"]

    cycle = world.stack.admin(
        "PUT",
        f"/admin/v1/configs/{inner}",
        {"project_scope": [world.project], "strategy": "fallback", "targets": [{"config": outer}]},
        headers={"If-Match": str(inner_made["version"])},
    )
    assert cycle.status_code == 400 and cycle.json()["error"]["param"] == "targets[0].config"
    assert f"{inner} -> {outer} -> {inner}" in cycle.json()["error"]["message"]


def test_the_change_history_shows_a_configs_before_and_after(world: World) -> None:
    config_id = fresh("history")
    made = world.config(config_id, targets=[target("cfg-primary")])
    replaced = world.stack.admin(
        "PUT",
        f"/admin/v1/configs/{config_id}",
        {"project_scope": [world.project], "strategy": "fallback", "targets": [target("cfg-secondary")]},
        headers={"If-Match": str(made["version"])},
    )
    assert replaced.status_code == 200, replaced.text
    history = world.stack.admin("GET", f"/admin/v1/events?aggregate=gatewayconfig/{config_id}").json()["data"]
    assert [e["type"] for e in history] == ["GatewayConfigSet", "GatewayConfigSet"]
    change = history[0]["changes"]["targets"]
    assert change["before"][0]["provider_slug"] == "cfg-primary"
    assert change["after"][0]["provider_slug"] == "cfg-secondary"
    assert history[1]["changes"]["strategy"] == {"before": None, "after": "fallback"}


def test_loadbalance_over_1000_requests_lands_within_5_points_of_70_30(world: World) -> None:
    config_id = fresh("weighted")
    world.config(
        config_id,
        strategy="loadbalance",
        targets=[target("cfg-primary", weight=70), target("cfg-secondary", weight=30)],
    )
    headers = {"Authorization": f"Bearer {world.key}", "x-keyrail-config": config_id}
    body = {"model": MODEL, "messages": MESSAGES}
    served: Counter[str] = Counter()
    with httpx.Client(base_url=world.stack.url, headers=headers, timeout=30) as http:
        for _ in range(1000):
            answer = http.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            served[answer.headers["x-keyrail-provider-slug"]] += 1
    assert set(served) == {"cfg-primary", "cfg-secondary"}
    assert abs(served["cfg-primary"] / 1000 - 0.70) <= 0.05, served


def test_a_custom_model_first_falls_back_to_a_catalog_model_and_returns_when_healthy(world: World) -> None:
    model_slug = fresh("ft-classifier")
    registered = world.stack.admin(
        "POST",
        "/admin/v1/integrations/cfg-primary/custom-models",
        {"model_slug": model_slug, "base_model": f"openai/{MODEL}", "input_price_per_mtok": 0.3},
    )
    assert registered.status_code == 201, registered.text
    config_id, alias = fresh("custom-first"), fresh("classifier")
    broken = {
        "provider_slug": "cfg-primary",
        "model": model_slug,
        "override_params": {"mock": {"status": 503}},
    }
    made = world.config(config_id, targets=[broken, target("cfg-secondary")])
    body = {"alias": alias, "project_scope": [world.project], "target": {"config": config_id}}
    created(world.stack.admin("POST", "/admin/v1/virtual-models", body))

    raw = world.client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES)
    assert (raw.headers["x-keyrail-provider-slug"], raw.headers["x-keyrail-attempts"]) == (
        "cfg-secondary",
        "2",
    )
    attempts = world.attempts(raw.headers["x-keyrail-request-id"], expected_rows=3)
    assert [(r["provider_slug"], r["model"], r["status"]) for r in attempts] == [
        ("cfg-primary", model_slug, "error"),
        ("cfg-secondary", MODEL, "ok"),
    ]

    healthy = {**broken, "override_params": {}}
    replaced = world.stack.admin(
        "PUT",
        f"/admin/v1/configs/{config_id}",
        {
            "project_scope": [world.project],
            "strategy": "fallback",
            "targets": [healthy, target("cfg-secondary")],
        },
        headers={"If-Match": str(made["version"])},
    )
    assert replaced.status_code == 200, replaced.text
    raw = world.client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES)
    assert (raw.headers["x-keyrail-provider-slug"], raw.headers["x-keyrail-model"]) == (
        "cfg-primary",
        model_slug,
    )
