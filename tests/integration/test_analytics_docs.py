"""Every SQL example of docs/analytics.md, run in order against rows written by real requests: a
stale credential on the first integration, the requests answered by the fallback behind it."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import MODEL, Tenant, provision
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
STALE, SERVING = "docs-a-mock", "docs-b-mock"  # slug order: the stale one is tried first
FALLBACK_REQUESTS = 3
TOKENS = 5 + len(DEFAULT_REPLY.split())
REQUEST_COST = (5 * Decimal("0.15") + len(DEFAULT_REPLY.split()) * Decimal("0.6")) / 1_000_000


def doc_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def _chat(stack: KeyrailStack, tenant: Tenant, model: str) -> str:
    response = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "one two three four five"}]},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.headers["x-keyrail-request-id"]


class World:
    def __init__(self, stack: KeyrailStack, upstream: MockUpstream) -> None:
        self.tenant = provision(stack, upstream, SERVING)
        stale = stack.admin(
            "POST",
            "/admin/v1/integrations",
            {
                "name": "stale credentials",
                "provider": "openai",
                "provider_slug": STALE,
                "project_scope": [self.tenant.project_id],
                "credentials": {"api_key": "sk-stale-rotated-away"},
                "custom_host": upstream.url,
                "allow_http": True,
                "enabled_models": [MODEL],
            },
        )
        assert stale.status_code == 201, stale.text
        self.stale_version = stale.json()["credential_version"]
        serving = stack.admin("GET", f"/admin/v1/integrations/{SERVING}").json()
        self.serving_version = serving["credential_version"]
        self.fallen_back = [_chat(stack, self.tenant, f"openai/{MODEL}") for _ in range(FALLBACK_REQUESTS)]
        self.direct = _chat(stack, self.tenant, self.tenant.model)  # pinned: no fallback
        ids = ", ".join(f"'{i}'" for i in [*self.fallen_back, self.direct])
        deadline = time.monotonic() + 20
        # Every request row and every attempt row (two per fallen-back request) written.
        while stack.sql(f"SELECT count() FROM keyrail.activity FINAL WHERE request_id IN ({ids})") != [
            [2 * FALLBACK_REQUESTS + FALLBACK_REQUESTS + 2]
        ]:
            assert time.monotonic() < deadline
            time.sleep(0.25)


@pytest.fixture(scope="module")
def world(stack: KeyrailStack, upstream: MockUpstream) -> World:
    return World(stack, upstream)


def test_the_doc_has_the_four_questions() -> None:
    assert len(doc_queries()) == 4


def test_which_credential_set_served_a_request(stack: KeyrailStack, world: World) -> None:
    sql = doc_queries()[0].replace("req_…", world.fallen_back[0])

    assert stack.sql(sql) == [
        [1, STALE, world.stale_version, "error", "credential"],
        [2, SERVING, world.serving_version, "ok", ""],
    ]


def test_cost_per_integration_and_model(stack: KeyrailStack, world: World) -> None:
    rows = {(r[0], r[1]): r[2:] for r in stack.sql(doc_queries()[1])}

    # Request rows name the integration that answered: the stale one served none.
    requests, unpriced, cost = rows[(SERVING, MODEL)]
    assert (requests, unpriced, Decimal(cost)) == (
        FALLBACK_REQUESTS + 1,
        0,
        REQUEST_COST * (FALLBACK_REQUESTS + 1),
    )
    assert not any(slug == STALE for slug, _ in rows)


def test_error_rate_per_slug(stack: KeyrailStack, world: World) -> None:
    rows = {r[0]: r[1:] for r in stack.sql(doc_queries()[2])}

    assert rows[STALE] == [FALLBACK_REQUESTS, FALLBACK_REQUESTS, 1.0]
    assert rows[SERVING] == [FALLBACK_REQUESTS + 1, 0, 0.0]


def test_fallback_cost_drift(stack: KeyrailStack, world: World) -> None:
    rows = [r for r in stack.sql(doc_queries()[3]) if r[0] == STALE]

    per_1k = (REQUEST_COST * FALLBACK_REQUESTS * 1000 / (TOKENS * FALLBACK_REQUESTS)).quantize(
        Decimal("1e-9")
    )
    assert rows == [
        [
            STALE,
            "credential",
            SERVING,
            MODEL,
            FALLBACK_REQUESTS,
            str(REQUEST_COST * FALLBACK_REQUESTS),
            str(per_1k.normalize()),
        ]
    ]
