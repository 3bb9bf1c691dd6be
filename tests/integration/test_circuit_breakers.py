"""Circuit breakers on the real stack: a target failing in a row opens, is skipped (its requests
fall back, or get a 503 naming the cause), lets one probe through after the cool-down, and
closes again; the state is derived from the activity stream, so another replica rebuilds it, and
only one replica wins a probe.

Its own stack, with a small threshold and a short cool-down (the session stack's tests inject
faults at will and keep the defaults)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import openai
import pytest

from keyrail_router.breaker import BreakerBoard, BreakerSettings, probe_key
from keyrail_router.breaker_feed import BreakerFeed
from tests.support.control_plane import api_key, integration, project
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

FAILURES, COOLDOWN_S = 3, 8.0  # long enough for the open-state checks on a busy machine
FLAKY, STEADY = "openai-flaky", "openai-steady"
WARMING = "openai-warming"  # sorts after both: never tried for openai/<model> before them
MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def breaker_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyrailStack]:
    workdir = tmp_path_factory.mktemp("breakers")
    env = {
        "KEYRAIL_BREAKER_FAILURES": str(FAILURES),
        "KEYRAIL_BREAKER_WINDOW_S": "60",
        "KEYRAIL_BREAKER_COOLDOWN_S": str(COOLDOWN_S),
    }
    running = KeyrailStack(workdir / "data", workdir / "keyrail-up.log", extra_env=env)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(breaker_stack: KeyrailStack, upstream: MockUpstream) -> openai.OpenAI:
    home = project(breaker_stack, "breakers")
    for slug in (FLAKY, STEADY, WARMING):  # slug order: the flaky one is tried first for openai/<model>
        integration(breaker_stack, upstream, slug, [home])
    key = api_key(breaker_stack, home)["key"]
    return openai.OpenAI(base_url=f"{breaker_stack.url}/v1", api_key=key, max_retries=0)


def chat(client: openai.OpenAI, model: str, fault: dict[str, Any] | None = None, pin: str = "") -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"mock": fault} if fault else None,
        extra_headers={"x-keyrail-provider": pin} if pin else None,
    )


def health(stack: KeyrailStack, slug: str = FLAKY) -> dict[str, Any]:
    answer = stack.admin("GET", f"/admin/v1/integrations/{slug}/health")
    assert answer.status_code == 200, answer.text
    circuits = {c["model"]: c for c in answer.json()["data"]}
    return circuits.get(MODEL, {"state": "closed"})


def wait_for_state(stack: KeyrailStack, state: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        circuit = health(stack)
        if circuit["state"] == state:
            return circuit
        time.sleep(0.1)
    raise AssertionError(f"the circuit did not become {state}: {health(stack)}")


def attempt_classes(stack: KeyrailStack, slug: str, expected: dict[str, int]) -> dict[str, int]:
    """The slug's attempt rows by failure class ('' for a success), once they reach ClickHouse."""
    sql = (
        "SELECT error_class, count() FROM keyrail.activity FINAL "
        f"WHERE provider_slug = '{slug}' AND kind = 'attempt' GROUP BY error_class"
    )
    found: dict[str, int] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and found != expected:
        answer = stack.admin("POST", "/admin/v1/sql", {"sql": sql})
        assert answer.status_code == 200, answer.text
        found = {str(c): int(n) for c, n in answer.json()["rows"]}
        time.sleep(0.3)
    return found


def router_metrics(stack: KeyrailStack) -> str:
    # `keyrail up`: audit, router and worker metrics on KEYRAIL_METRICS_BASE_PORT (base + 1) and on.
    return httpx.get(f"http://127.0.0.1:{stack.base_port + 2}/metrics", timeout=5).text


async def _replica_view(stack: KeyrailStack) -> tuple[dict[str, Any], list[bool]]:
    """What a router replica started now rebuilds from the stream, and two replicas' claims on
    one probe."""
    nc = await nats.connect(stack.nats_url)
    try:
        replicas = []
        for _ in range(2):
            feed = BreakerFeed(nc.jetstream(), BreakerBoard(BreakerSettings(FAILURES, 60.0, COOLDOWN_S)))
            await feed.start()
            replicas.append(feed)
        await asyncio.sleep(1.0)  # the replay of the window
        breaker = replicas[0].board.get(FLAKY, MODEL)
        assert breaker is not None
        key = probe_key(breaker, time.time(), replicas[0].board.settings) + ".test"
        claims = [await feed.claim_probe(key) for feed in replicas]
        return {"open": breaker.open, "failures": breaker.failures}, claims
    finally:
        await nc.close()


def test_a_failing_target_opens_is_skipped_probes_and_closes(
    breaker_stack: KeyrailStack, client: openai.OpenAI
) -> None:
    for _ in range(FAILURES):
        with pytest.raises(openai.APIStatusError) as failed:
            chat(client, f"{FLAKY}/{MODEL}", {"status": 500})
        assert failed.value.status_code == 502
    opened = wait_for_state(breaker_stack, "open")
    assert opened["failures"] == FAILURES and opened["last_failure_class"] == "upstream_5xx"
    assert opened["opened_at"] and opened["next_probe_at"]

    # Skipped: the pinned target is not called at all, and the error names the open circuit's cause.
    with pytest.raises(openai.APIStatusError) as refused:
        chat(client, f"{FLAKY}/{MODEL}")
    assert refused.value.status_code == 503
    error: Any = refused.value.body  # the SDK unwraps `error`
    assert error["code"] == "circuit_open" and "upstream_5xx" in error["message"]

    # With somewhere to fall back to, the request is served by the next target.
    served = chat(client, f"openai/{MODEL}")
    assert served.headers["x-keyrail-provider-slug"] == STEADY
    assert served.headers["x-keyrail-attempts"] == "2"
    # The two skips are the router's rows; no worker attempted the flaky target while it was open.
    assert attempt_classes(breaker_stack, FLAKY, {"upstream_5xx": 3, "circuit_open": 2}) == {
        "upstream_5xx": 3,
        "circuit_open": 2,
    }

    gauge = f'keyrail_breaker_state{{model="{MODEL}",provider_slug="{FLAKY}"}}'
    assert f"{gauge} 1.0" in router_metrics(breaker_stack)  # open (half open would be 2.0)

    # Another replica rebuilds the same breaker from the stream; of two replicas, one wins a probe.
    rebuilt, claims = asyncio.run(_replica_view(breaker_stack))
    assert rebuilt == {"open": True, "failures": FAILURES}
    assert sorted(claims) == [False, True]

    # After the cool-down one probe goes through; its success closes the circuit.
    wait_for_state(breaker_stack, "half_open", timeout_s=COOLDOWN_S + 5)
    probe = chat(client, f"{FLAKY}/{MODEL}")
    assert probe.headers["x-keyrail-provider-slug"] == FLAKY
    closed = wait_for_state(breaker_stack, "closed")
    assert closed["failures"] == 0 and closed["last_failure_class"] == "upstream_5xx"
    assert chat(client, f"{FLAKY}/{MODEL}").headers["x-keyrail-provider-slug"] == FLAKY
    assert attempt_classes(breaker_stack, FLAKY, {"upstream_5xx": 3, "circuit_open": 2, "": 2})[""] == 2


def test_a_success_between_failures_resets_the_count(
    breaker_stack: KeyrailStack, client: openai.OpenAI
) -> None:
    """Regression (breaker feed cost): the routers read only failures and the successes of targets
    they hold a record of; the success of a target with a record must reach them."""

    def failures_seen(count: int) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while (circuit := health(breaker_stack, WARMING)).get("failures", 0) != count:
            assert time.monotonic() < deadline, circuit
            time.sleep(0.1)
        return circuit

    model = f"{WARMING}/{MODEL}"
    for _ in range(FAILURES - 1):
        with pytest.raises(openai.InternalServerError):
            chat(client, model, {"status": 500})
    failures_seen(FAILURES - 1)
    assert chat(client, model).status_code == 200
    failures_seen(0)  # the success was seen: the run of failures starts again
    for _ in range(FAILURES - 1):
        with pytest.raises(openai.InternalServerError):
            chat(client, model, {"status": 500})
    assert failures_seen(FAILURES - 1)["state"] == "closed"  # 4 failures in all, never 3 in a row


def test_the_callers_own_errors_never_open_a_circuit(
    breaker_stack: KeyrailStack, client: openai.OpenAI
) -> None:
    for _ in range(FAILURES + 1):
        with pytest.raises(openai.BadRequestError):
            chat(client, f"{STEADY}/{MODEL}", {"status": 400})
    time.sleep(0.5)
    answer = breaker_stack.admin("GET", f"/admin/v1/integrations/{STEADY}/health").json()
    assert answer == {"provider_slug": STEADY, "data": []}


def test_health_of_an_unknown_integration_is_a_404(breaker_stack: KeyrailStack) -> None:
    answer = breaker_stack.admin("GET", "/admin/v1/integrations/no-such-slug/health")
    assert answer.status_code == 404
