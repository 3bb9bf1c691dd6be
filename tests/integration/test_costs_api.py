"""`GET /admin/v1/costs` on the stack: per slug, model, project, day and tag, the rollup's answer
equals a direct SQL sum over the request rows, costs are exact decimals, unpriced requests are
counted apart, and a redelivered batch is not counted twice."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import Tenant, provision
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

PROMPT_TOKENS = 5  # the mock counts the prompt's words
REPLY_TOKENS = len(DEFAULT_REPLY.split())
# gpt-4o-mini at the catalog's prices, USD per 1M tokens: 0.15 input, 0.60 output.
REQUEST_COST = (PROMPT_TOKENS * Decimal("0.15") + REPLY_TOKENS * Decimal("0.6")) / 1_000_000


def _send(stack: KeyrailStack, tenant: Tenant, tags: str = "", mock: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {
        "model": tenant.model,
        "messages": [{"role": "user", "content": "one two three four five"}],
    }
    if mock:
        body["mock"] = mock
    headers = {"Authorization": f"Bearer {tenant.api_key}", **({"x-keyrail-tags": tags} if tags else {})}
    httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def _costs(stack: KeyrailStack, group_by: str) -> dict[str, dict[str, Any]]:
    response = stack.admin("GET", f"/admin/v1/costs?group_by={group_by}")
    assert response.status_code == 200, response.text
    return {g["key"]: g for g in response.json()["data"]}


class World:
    def __init__(self, stack: KeyrailStack, upstream: MockUpstream) -> None:
        self.a = provision(stack, upstream, "costs-a-mock")
        self.b = provision(stack, upstream, "costs-b-mock")
        for _ in range(3):
            _send(stack, self.a, "team-x")
        _send(stack, self.a, "team-x,eval")
        _send(stack, self.a, mock={"status": 400})  # an error, not billed
        _send(stack, self.a, mock={"no_usage": True})  # answered without usage: unpriced
        for _ in range(2):
            _send(stack, self.b, "eval")
        deadline = time.monotonic() + 20
        while _costs(stack, "slug").get(self.a.slug, {}).get("requests") != 6 or (
            _costs(stack, "slug").get(self.b.slug, {}).get("requests") != 2
        ):
            assert time.monotonic() < deadline, _costs(stack, "slug")
            time.sleep(0.25)


@pytest.fixture(scope="module")
def world(stack: KeyrailStack, upstream: MockUpstream) -> World:
    return World(stack, upstream)


def test_per_slug_the_costs_are_the_hand_computed_ones(stack: KeyrailStack, world: World) -> None:
    groups = _costs(stack, "slug")
    a, b = groups[world.a.slug], groups[world.b.slug]

    assert (a["requests"], a["errors"], a["unpriced"]) == (6, 1, 1)
    assert a["error_rate"] == pytest.approx(1 / 6, abs=1e-6)
    assert Decimal(a["cost_usd"]) == 4 * REQUEST_COST  # the error and the unpriced answer add nothing
    assert a["tokens"]["prompt"] == 4 * PROMPT_TOKENS and a["tokens"]["completion"] == 4 * REPLY_TOKENS
    assert (b["requests"], b["errors"], b["unpriced"], Decimal(b["cost_usd"])) == (2, 0, 0, 2 * REQUEST_COST)


@pytest.mark.parametrize(
    ("group_by", "column"),
    [
        ("slug", "provider_slug"),
        ("model", "model"),
        ("project", "project_id"),
        ("day", "toString(toDate(ts))"),
    ],
)
def test_every_group_equals_a_direct_sum_over_the_request_rows(
    stack: KeyrailStack, world: World, group_by: str, column: str
) -> None:
    ((org_id,),) = stack.sql(
        f"SELECT any(org_id) FROM keyrail.activity WHERE project_id = '{world.a.project_id}'"
    )
    direct = stack.sql(
        f"SELECT {column} AS key, count(), countIf(status = 'error'), countIf(cost_status = 'unpriced'), "
        "sum(prompt_tokens), sum(completion_tokens), toString(sum(ifNull(cost_usd, 0))) "
        f"FROM keyrail.activity FINAL WHERE kind = 'request' AND org_id = '{org_id}' AND ts >= today() - 29 "
        "GROUP BY key ORDER BY key",
    )

    groups = _costs(stack, group_by)

    assert [
        [
            key,
            g["requests"],
            g["errors"],
            g["unpriced"],
            g["tokens"]["prompt"],
            g["tokens"]["completion"],
            Decimal(g["cost_usd"]),
        ]
        for key, g in sorted(groups.items())
    ] == [[*row[:-1], Decimal(row[-1])] for row in direct]


def test_per_tag_a_request_counts_under_each_of_its_tags(stack: KeyrailStack, world: World) -> None:
    groups = _costs(stack, "tag")

    assert groups["team-x"]["requests"] == 4 and Decimal(groups["team-x"]["cost_usd"]) == 4 * REQUEST_COST
    assert groups["eval"]["requests"] == 3 and Decimal(groups["eval"]["cost_usd"]) == 3 * REQUEST_COST


def test_the_unpriced_request_is_stored_as_null_not_zero(stack: KeyrailStack, world: World) -> None:
    rows = stack.sql(
        "SELECT cost_status, isNull(cost_usd), usage_source FROM keyrail.activity FINAL "
        f"WHERE kind = 'request' AND provider_slug = '{world.a.slug}' AND cost_status = 'unpriced'",
    )

    assert rows == [["unpriced", 1, "missing"]]


def test_a_bad_group_is_a_400_naming_it(stack: KeyrailStack) -> None:
    response = stack.admin("GET", "/admin/v1/costs?group_by=provider")

    assert response.status_code == 400 and response.json()["error"]["param"] == "group_by"


def test_a_flex_request_costs_half_the_standard_price_and_names_its_price(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    tenant = provision(stack, upstream, "costs-flex-mock")
    path = f"/admin/v1/integrations/{tenant.slug}"
    enabled = stack.change("PUT", f"{path}/models", {"enabled_models": ["gpt-5-mini"]}, of=path)
    assert enabled.status_code == 200, enabled.text
    for suffix in ("", ":flex"):
        messages = [{"role": "user", "content": "a b c"}]
        body = {"model": f"{tenant.slug}/gpt-5-mini{suffix}", "messages": messages}
        answer = httpx.post(
            f"{stack.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {tenant.api_key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    sql = (
        "SELECT kind, cost_usd, price_version FROM keyrail.activity FINAL "
        f"WHERE provider_slug = '{tenant.slug}' ORDER BY price_version, kind"
    )
    deadline = time.monotonic() + 20
    while len(rows := stack.sql(sql)) < 4:
        assert time.monotonic() < deadline, rows
        time.sleep(0.25)

    # gpt-5-mini at the catalog's prices, USD per 1M tokens: 0.25 input, 2.00 output; flex is half.
    standard = (3 * Decimal("0.25") + REPLY_TOKENS * Decimal("2.0")) / 1_000_000
    assert [(kind, Decimal(cost), version) for kind, cost, version in rows] == [
        ("attempt", standard, "catalog:2026-11-17"),
        ("request", standard, "catalog:2026-11-17"),
        ("attempt", standard / 2, "catalog:2026-11-17+flex"),
        ("request", standard / 2, "catalog:2026-11-17+flex"),
    ]
