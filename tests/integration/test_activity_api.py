"""`GET /admin/v1/activity` on the stack: rows written by real requests through the mock upstream,
every filter, cursor paging without duplicates or gaps, and an unpriced answer stored as NULL."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.integration.conftest import MODEL, Tenant, provision
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

A_REQUESTS = 5  # two tagged alpha, one failing upstream, one answered without usage, one plain
B_REQUESTS = 2  # both tagged beta


def _send(stack: KeyrailStack, tenant: Tenant, tag: str = "", mock: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {
        "model": tenant.model,
        "messages": [{"role": "user", "content": "five words in this prompt"}],
    }
    if mock:
        body["mock"] = mock
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    if tag:
        headers["x-keyrail-tags"] = tag
    response = httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == (200 if not mock or "status" not in mock else 400), response.text
    return response.headers["x-keyrail-request-id"]


def _rows(stack: KeyrailStack, query: str, expected: int | None = None) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        response = stack.admin("GET", f"/admin/v1/activity?{query}")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["data"]
        if expected is None or len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


class World:
    def __init__(self, stack: KeyrailStack, upstream: MockUpstream) -> None:
        self.a = provision(stack, upstream, "activity-a-mock")
        self.b = provision(stack, upstream, "activity-b-mock")
        self.tagged = [_send(stack, self.a, "alpha"), _send(stack, self.a, "alpha")]
        self.failed = _send(stack, self.a, mock={"status": 400})
        self.no_usage = _send(stack, self.a, mock={"no_usage": True})
        self.plain = _send(stack, self.a)
        self.b_ids = [_send(stack, self.b, "beta") for _ in range(B_REQUESTS)]
        # Every request has its request row and one attempt row.
        self.a_rows = _rows(stack, f"project_id={self.a.project_id}&limit=1000", 2 * A_REQUESTS)
        assert len(self.a_rows) == 2 * A_REQUESTS
        assert len(_rows(stack, f"project_id={self.b.project_id}", 2 * B_REQUESTS)) == 2 * B_REQUESTS


@pytest.fixture(scope="module")
def world(stack: KeyrailStack, upstream: MockUpstream) -> World:
    return World(stack, upstream)


def _key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    return (row["ts"], row["request_id"], row["kind"], row["attempt"])


def test_rows_are_newest_first_in_the_whole_key(world: World) -> None:
    keys = [_key(r) for r in world.a_rows]

    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)


def test_request_id_project_and_slug_filters(stack: KeyrailStack, world: World) -> None:
    one = _rows(stack, f"request_id={world.plain}")
    assert sorted(r["kind"] for r in one) == ["attempt", "request"]
    assert {r["request_id"] for r in one} == {world.plain}

    assert {r["project_id"] for r in world.a_rows} == {world.a.project_id}
    b_rows = _rows(stack, f"provider_slug={world.b.slug}")
    assert {r["request_id"] for r in b_rows} == set(world.b_ids) and len(b_rows) == 2 * B_REQUESTS


def test_model_filter(stack: KeyrailStack, world: World) -> None:
    a = world.a.project_id
    assert len(_rows(stack, f"project_id={a}&model={MODEL}")) == 2 * A_REQUESTS
    assert _rows(stack, f"project_id={a}&model=gpt-4.1") == []


def test_status_and_failure_class_filters(stack: KeyrailStack, world: World) -> None:
    a = world.a.project_id
    errors = _rows(stack, f"project_id={a}&status=error")
    assert {r["request_id"] for r in errors} == {world.failed} and len(errors) == 2
    failure_class = errors[0]["error_class"]
    assert failure_class and {r["error_class"] for r in errors} == {failure_class}

    assert _rows(stack, f"project_id={a}&failure_class={failure_class}") == errors
    assert len(_rows(stack, f"project_id={a}&status=ok")) == 2 * (A_REQUESTS - 1)


def test_tag_filter(stack: KeyrailStack, world: World) -> None:
    alpha = _rows(stack, "tag=alpha")
    assert {r["request_id"] for r in alpha} == set(world.tagged) and len(alpha) == 4
    assert {r["request_id"] for r in _rows(stack, "tag=beta")} == set(world.b_ids)


def test_since_and_until_bound_the_time(stack: KeyrailStack, world: World) -> None:
    oldest_first = sorted(world.a_rows, key=_key)
    since, until = oldest_first[3]["ts"], oldest_first[7]["ts"]
    expected = [r for r in world.a_rows if since <= r["ts"] < until]

    got = _rows(stack, f"project_id={world.a.project_id}&since={quote(since)}&until={quote(until)}")

    assert [_key(r) for r in got] == [_key(r) for r in expected] and got


@pytest.mark.parametrize("page", [1, 3, 4])
def test_cursor_pages_cover_every_row_once(stack: KeyrailStack, world: World, page: int) -> None:
    seen: list[dict[str, Any]] = []
    query = f"project_id={world.a.project_id}&limit={page}"
    cursor: str | None = ""
    pages = 0
    while cursor is not None:
        response = stack.admin("GET", f"/admin/v1/activity?{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= page
        seen += body["data"]
        cursor = body["next_cursor"]
        pages += 1

    assert [_key(r) for r in seen] == [_key(r) for r in world.a_rows]  # no duplicate, no gap
    assert pages == -(-len(world.a_rows) // page)  # no empty last page


def test_an_answer_without_usage_is_stored_unpriced_with_a_null_cost(
    stack: KeyrailStack, world: World
) -> None:
    rows = _rows(stack, f"request_id={world.no_usage}")
    assert {(r["kind"], r["cost_usd"], r["cost_status"], r["usage_source"]) for r in rows} == {
        ("request", None, "unpriced", "missing"),
        ("attempt", None, "unpriced", "missing"),
    }
    stored = stack.admin(
        "POST",
        "/admin/v1/sql",
        {
            "sql": "SELECT countIf(isNull(cost_usd)), count() FROM keyrail.activity FINAL "
            f"WHERE request_id = '{world.no_usage}'"
        },
    )
    assert stored.json()["rows"] == [[2, 2]]  # NULL in ClickHouse, not 0
    priced = _rows(stack, f"request_id={world.plain}")
    assert {r["cost_status"] for r in priced} == {"priced"} and all(
        Decimal(r["cost_usd"]) > 0 for r in priced
    )


@pytest.mark.parametrize(
    ("query", "param"),
    [("status=failed", "status"), ("limit=0", "limit"), ("cursor=zzz", "cursor"), ("slug=x", "slug")],
)
def test_a_bad_filter_is_a_400_naming_it(stack: KeyrailStack, query: str, param: str) -> None:
    response = stack.admin("GET", f"/admin/v1/activity?{query}")

    assert response.status_code == 400 and response.json()["error"]["param"] == param
