"""Two router replicas on one bus: a second `keyrail router` joins the stack's queue group.

Both route by the same configuration (a config replaced through the admin API changes the routing
of every following request, whichever replica takes it), and both hold the same circuit breakers
(each folds the activity stream; the second rebuilds what happened before it started)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import openai
import pytest

from keyrail_common import subjects
from keyrail_common.messages import CircuitReports
from tests.support.control_plane import api_key, integration, project
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
PRIMARY, BATCH, DEAD = "openai-2r-primary", "openai-2r-batch", "openai-2r-dead"


@pytest.fixture(scope="module")
def second_router(stack: KeyrailStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log = tmp_path_factory.mktemp("second-router") / "router.log"
    env = {**stack.env(), "KEYRAIL_NATS_URL": stack.nats_url, "KEYRAIL_METRICS_PORT": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keyrail_cli.main", "router"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while b"router ready" not in log.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield log
    process.terminate()
    process.wait(30)


@pytest.fixture(scope="module")
def client(stack: KeyrailStack, upstream: MockUpstream) -> tuple[openai.OpenAI, str]:
    home = project(stack, "two routers")
    for slug in (PRIMARY, BATCH):
        integration(stack, upstream, slug, [home])
    key = api_key(stack, home)["key"]
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0), home


def _served(client: openai.OpenAI, config_id: str, tags: str | None) -> tuple[str, str]:
    headers = {"x-keyrail-config": config_id, **({"x-keyrail-tags": tags} if tags else {})}
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_headers=headers
    )
    return raw.headers["x-keyrail-provider-slug"], raw.headers["x-keyrail-request-id"]


def test_a_replaced_config_routes_every_following_request_on_both_replicas(
    stack: KeyrailStack, client: tuple[openai.OpenAI, str], second_router: Path
) -> None:
    sdk, home = client
    targets = [{"provider_slug": PRIMARY, "model": MODEL}, {"provider_slug": BATCH, "model": MODEL}]
    body: dict[str, Any] = {
        "project_scope": [home],
        "strategy": "conditional",
        "targets": targets,
        "conditions": [{"when": {"tags": ["batch"]}, "target": 1}],
        "default_target": 0,
    }
    made = stack.admin("POST", "/admin/v1/configs", {"id": "two-routers", **body})
    assert made.status_code == 201, made.text
    request_ids = []
    for tags, slug in (("batch", BATCH), (None, PRIMARY)):
        for _ in range(10):
            served, request_id = _served(sdk, "two-routers", tags)
            assert served == slug
            request_ids.append(request_id)
    replaced = stack.admin(
        "PUT",
        "/admin/v1/configs/two-routers",
        {**body, "default_target": 1},
        headers={"If-Match": str(made.json()["version"])},
    )
    assert replaced.status_code == 200, replaced.text
    for _ in range(10):  # every following request, whichever replica routes it
        served, request_id = _served(sdk, "two-routers", None)
        assert served == BATCH
        request_ids.append(request_id)
    second = second_router.read_text()
    assert any(r in second for r in request_ids), "the second replica routed some of them"
    assert not all(r in second for r in request_ids), "and the stack's own router the others"


async def _replies(stack: KeyrailStack, slug: str, want: int = 2) -> dict[str, CircuitReports]:
    """Ask the queue group until `want` different replicas have answered."""
    nc = await nats.connect(stack.nats_url)
    try:
        seen: dict[str, CircuitReports] = {}
        for _ in range(200):
            reply = await nc.request(subjects.ROUTER_BREAKERS, slug.encode(), timeout=5)
            report = msgspec.msgpack.decode(reply.data, type=CircuitReports)
            seen[report.replica] = report
            if len(seen) >= want:
                break
        return seen
    finally:
        await nc.close()


def test_both_replicas_hold_the_same_open_circuit(
    stack: KeyrailStack, client: tuple[openai.OpenAI, str], second_router: Path
) -> None:
    sdk, home = client
    integration(
        stack, MockUpstream("sk-nobody-listens"), DEAD, [home]
    )  # never started: nothing listens on its port
    for _ in range(5):  # KEYRAIL_BREAKER_FAILURES' default
        with pytest.raises(openai.APIStatusError):
            sdk.chat.completions.create(model=f"{DEAD}/{MODEL}", messages=[{"role": "user", "content": "hi"}])
    deadline = time.monotonic() + 10
    while True:
        replies = asyncio.run(_replies(stack, DEAD))
        states = {replica: [c.state for c in r.circuits] for replica, r in replies.items()}
        if len(states) == 2 and all(s == ["open"] for s in states.values()):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    health = stack.admin("GET", f"/admin/v1/integrations/{DEAD}/health").json()
    assert [(c["model"], c["state"], c["failures"]) for c in health["data"]] == [(MODEL, "open", 5)]
