"""The executor: targets attempted in order within the deadline, retried and fallen back from as the
failure table says. NATS is an in-memory stand-in that answers each pool from a script."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from keyrail_common.activity import ActivityPublisher
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import (
    ActivityRow,
    ProviderCall,
    ProviderResult,
    RetryPolicy,
    RouteRequest,
    Target,
    encode,
    provider_call_decoder,
    provider_result_decoder,
)
from keyrail_common.registry import load_registry
from keyrail_router.breaker import AttemptOutcome, BreakerBoard, BreakerSettings
from keyrail_router.breaker_feed import BreakerFeed
from keyrail_router.configs import Route
from keyrail_router.executor import Executor
from keyrail_router.resolve import Resolver
from tests.support.registry import registry_lacking

S = 1_000_000_000
RESOLVER = Resolver(load_registry())
Answer = ProviderResult | Exception | bytes | Callable[[ProviderCall], ProviderResult]


@dataclass
class Reply:
    data: bytes


@dataclass
class Forwarded:
    subject: str
    data: bytes
    headers: dict[str, str] | None = None


@dataclass
class FakeNats:
    """`request` answers from a per-subject script; `publish` records."""

    script: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[tuple[str, ProviderCall, float]] = field(default_factory=list)
    published: list[tuple[str, bytes, str]] = field(default_factory=list)

    def new_inbox(self) -> str:
        return "_INBOX.router"

    async def request(self, subject: str, payload: bytes, timeout: float) -> Reply:  # noqa: ASYNC109 (nats-py's signature)
        call = provider_call_decoder.decode(payload)
        self.requests.append((subject, call, timeout))
        answer = self.script[subject].pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, bytes):
            return Reply(answer)
        if callable(answer):
            return Reply(encode(answer(call)))
        return Reply(encode(answer))

    async def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        self.published.append((subject, payload, reply))


@dataclass
class FakeActivity:
    rows: list[ActivityRow] = field(default_factory=list)

    def record(self, row: ActivityRow, watched: bool = False) -> None:
        self.rows.append(row)


def target(slug: str, provider: str = "openai", adapter: str = "openai", **extra: Any) -> Target:
    return Target(
        integration_id=f"int_{slug}",
        provider=provider,
        provider_slug=slug,
        adapter=adapter,
        model="gpt-4o-mini",
        catalog_id=f"{provider}/gpt-4o-mini",
        base_url="https://api.openai.com/v1",
        credential_ref=f"integrations/org_1/{slug}",
        credential_version=1,
        **extra,
    )


def request(deadline_s: float = 60.0, **extra: Any) -> RouteRequest:
    now = time.time_ns()
    return RouteRequest(
        request_id="req_1",
        org_id="org_1",
        project_id="proj_a",
        model="openai/gpt-4o-mini",
        body=b'{"messages": []}',
        received_ns=now,
        min_config_seq=0,
        deadline_ns=now + int(deadline_s * S),
        **extra,
    )


def ok(slug: str) -> ProviderResult:
    return ProviderResult(ok=True, http_status=200, provider_slug=slug, body=b'{"id": "x"}')


def failed(slug: str, error: ErrorInfo) -> ProviderResult:
    return ProviderResult(ok=False, http_status=error.http_status, provider_slug=slug, error=error)


def upstream(failure_class: FailureClass, status: int, retry_after_s: float = 0.0) -> ErrorInfo:
    return failure(
        failure_class, f"upstream said {status}", upstream_status=status, retry_after_s=retry_after_s
    )


class Circuits(BreakerFeed):
    """The breakers without the bus: rows are folded by the test, probe claims won or lost."""

    def __init__(self, win_probes: bool = False) -> None:
        super().__init__(cast(Any, None), BreakerBoard(BreakerSettings(failures=2, cooldown_s=30.0)))
        self.win_probes = win_probes
        self.claims: list[str] = []

    async def claim_probe(self, key: str) -> bool:
        self.claims.append(key)
        return self.win_probes

    def fail(self, slug: str, times: int, at: float, error_class: str = "upstream_5xx") -> None:
        for _ in range(times):
            self.board.observe(
                AttemptOutcome(
                    kind="attempt",
                    ts_ms=int(at * 1000),
                    provider_slug=slug,
                    model="gpt-4o-mini",
                    status="error",
                    error_class=error_class,
                    error_message="upstream said 500",
                )
            )


def executor(
    nc: FakeNats, activity: FakeActivity | None = None, circuits: Circuits | None = None
) -> Executor:
    return Executor(
        cast(NATS, nc),
        RESOLVER,
        cast(ActivityPublisher, activity or FakeActivity()),
        circuits or Circuits(),
        jitter=lambda: 0.0,
    )


POOL = "keyrail.provider.openai"


# --- the fast path -------------------------------------------------------------------------------


async def test_a_single_target_without_retries_is_forwarded_for_the_worker_to_answer() -> None:
    nc = FakeNats()
    route = request()

    result = await executor(nc).execute(route, [target("openai-prod")], "_INBOX.ingress.1")

    assert result is None  # the worker answers the ingress directly
    [(subject, payload, reply_token)] = nc.published
    call = provider_call_decoder.decode(payload)
    assert subject == POOL
    assert call.reply_to == "_INBOX.ingress.1"
    assert reply_token.startswith("_INBOX.router.")
    assert call.attempt_deadline_ns == route.deadline_ns == call.deadline_ns
    assert (call.attempt, call.fallback_position) == (1, 0)
    assert nc.requests == []


async def test_no_responders_for_a_forwarded_call_answers_the_ingress_naming_the_pool() -> None:
    nc, activity = FakeNats(), FakeActivity()
    subject = executor(nc, activity)
    await subject.execute(request(), [target("openai-prod")], "_INBOX.ingress.1")
    [(_, _, token)] = nc.published

    await subject._on_forward_answer(Forwarded(token, b"", {"Status": "503"}))  # type: ignore[arg-type]

    subject_, payload, _ = nc.published[-1]
    answer = provider_result_decoder.decode(payload)
    assert subject_ == "_INBOX.ingress.1"
    assert answer.error is not None and answer.error.error_class is FailureClass.NO_WORKER
    assert "keyrail worker --providers openai" in answer.error.message
    assert [row.error_class for row in activity.rows] == ["no_worker"]


async def test_a_target_with_a_retry_policy_is_not_forwarded() -> None:
    nc = FakeNats(script={POOL: [ok("openai-prod")]})

    result = await executor(nc).execute(
        request(), [target("openai-prod", retry=RetryPolicy(attempts=1, backoff_ms=1))], "_INBOX.ingress.1"
    )

    assert result is not None and result.ok
    assert len(nc.requests) == 1 and nc.published == []


# --- fallback --------------------------------------------------------------------------------------


async def test_a_failure_that_may_fall_back_tries_the_next_target() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.RATE_LIMIT, 429)), ok("b")]})

    result = await executor(nc).execute(request(), [target("a"), target("b")], "_INBOX.ingress.1")

    assert result is not None and result.ok and result.provider_slug == "b"
    assert result.attempts == 2
    assert [(c.target.provider_slug, c.attempt, c.fallback_position) for _, c, _ in nc.requests] == [
        ("a", 1, 0),
        ("b", 2, 1),
    ]


async def test_a_caller_error_is_the_answer_without_fallback() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.CALLER_ERROR, 400))]})

    result = await executor(nc).execute(request(), [target("a"), target("b")], "_INBOX.ingress.1")

    assert result is not None and result.error is not None
    assert result.error.error_class is FailureClass.CALLER_ERROR
    assert [c.target.provider_slug for _, c, _ in nc.requests] == ["a"]


async def test_a_fallback_on_list_that_does_not_name_the_failure_stops_there() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.OVERLOADED, 529))]})

    result = await executor(nc).execute(request(), [target("a"), target("b")], "_INBOX.ingress.1", [429])

    assert result is not None and result.error is not None and result.error.upstream_status == 529
    assert len(nc.requests) == 1


async def test_every_target_failing_answers_the_last_failure() -> None:
    nc = FakeNats(
        script={
            POOL: [
                failed("a", upstream(FailureClass.UPSTREAM_5XX, 500)),
                failed("b", upstream(FailureClass.TIMEOUT, 504)),
            ]
        }
    )

    result = await executor(nc).execute(request(), [target("a"), target("b")], "_INBOX.ingress.1")

    assert result is not None and not result.ok and result.provider_slug == "b"
    assert result.attempts == 2


async def test_targets_without_a_timeout_share_the_deadline() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.UPSTREAM_5XX, 500)), ok("b")]})
    route = request(deadline_s=90.0)

    await executor(nc).execute(route, [target("a"), target("b"), target("c")], "_INBOX.ingress.1")

    (_, first, _), (_, second, _) = nc.requests
    # A third of 90 s for the first of three; the first answered at once, so half of ~90 s for the second.
    assert first.attempt_deadline_ns - first.routed_ns == pytest.approx(30 * S, rel=0.01)
    assert second.attempt_deadline_ns - second.routed_ns == pytest.approx(45 * S, rel=0.01)
    assert all(c.deadline_ns == route.deadline_ns for _, c, _ in nc.requests)


# --- retries ---------------------------------------------------------------------------------------


async def test_a_retryable_failure_is_retried_on_the_same_target() -> None:
    five_hundred = failed("a", upstream(FailureClass.UPSTREAM_5XX, 500))
    nc = FakeNats(script={POOL: [five_hundred, five_hundred, ok("a")]})
    retrying = target("a", retry=RetryPolicy(attempts=2, backoff_ms=1))

    result = await executor(nc).execute(request(), [retrying, target("b")], "_INBOX.ingress.1")

    assert result is not None and result.ok and result.attempts == 3
    assert [(c.target.provider_slug, c.attempt, c.fallback_position) for _, c, _ in nc.requests] == [
        ("a", 1, 0),
        ("a", 2, 0),
        ("a", 3, 0),
    ]


async def test_retries_are_bounded_by_the_policy_then_the_next_target_is_tried() -> None:
    five_hundred = failed("a", upstream(FailureClass.UPSTREAM_5XX, 500))
    nc = FakeNats(script={POOL: [five_hundred, five_hundred, ok("b")]})
    retrying = target("a", retry=RetryPolicy(attempts=1, backoff_ms=1))

    result = await executor(nc).execute(request(), [retrying, target("b")], "_INBOX.ingress.1")

    assert result is not None and result.ok and result.provider_slug == "b" and result.attempts == 3
    assert [c.target.provider_slug for _, c, _ in nc.requests] == ["a", "a", "b"]


async def test_a_failure_that_may_not_be_retried_goes_straight_to_the_next_target() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.CREDENTIAL, 401)), ok("b")]})
    retrying = target("a", retry=RetryPolicy(attempts=3, backoff_ms=1))

    result = await executor(nc).execute(request(), [retrying, target("b")], "_INBOX.ingress.1")

    assert result is not None and result.ok
    assert [c.target.provider_slug for _, c, _ in nc.requests] == ["a", "b"]


async def test_a_retry_that_does_not_fit_in_the_deadline_is_skipped() -> None:
    slow_down = failed("a", upstream(FailureClass.RATE_LIMIT, 429, retry_after_s=60.0))
    nc = FakeNats(script={POOL: [slow_down, ok("b")]})
    retrying = target("a", retry=RetryPolicy(attempts=3, backoff_ms=1))

    started = time.monotonic()
    result = await executor(nc).execute(request(deadline_s=5.0), [retrying, target("b")], "_INBOX.ingress.1")

    assert time.monotonic() - started < 1.0  # it did not wait the upstream's 60 s
    assert result is not None and result.ok and result.provider_slug == "b"
    assert [c.target.provider_slug for _, c, _ in nc.requests] == ["a", "b"]


# --- attempts no worker made ------------------------------------------------------------------------


async def test_a_target_this_version_cannot_attempt_is_recorded_here_and_fallen_back_from() -> None:
    nc, activity = FakeNats(script={POOL: [ok("openai-b")]}), FakeActivity()
    claude = target("anthropic-a", provider="anthropic", adapter="anthropic")
    lacking = Executor(
        cast(NATS, nc),
        Resolver(registry_lacking("anthropic")),
        cast(ActivityPublisher, activity),
        Circuits(),
        jitter=lambda: 0.0,
    )

    result = await lacking.execute(request(), [claude, target("openai-b")], "_INBOX.ingress.1")

    assert result is not None and result.ok and result.attempts == 2
    assert [s for s, _, _ in nc.requests] == [POOL]  # the anthropic pool was never asked
    [row] = activity.rows
    assert (row.provider_slug, row.error_class, row.attempt, row.fallback_position) == (
        "anthropic-a",
        "unsupported",
        1,
        0,
    )


async def test_no_worker_in_the_pool_is_recorded_and_fallen_back_from() -> None:
    nc, activity = FakeNats(script={POOL: [NoRespondersError(), ok("b")]}), FakeActivity()

    result = await executor(nc, activity).execute(request(), [target("a"), target("b")], "_INBOX.ingress.1")

    assert result is not None and result.ok
    [row] = activity.rows
    assert (row.provider_slug, row.error_class, row.http_status) == ("a", "no_worker", 503)


async def test_a_worker_that_never_answers_is_a_timeout_recorded_here() -> None:
    nc, activity = FakeNats(script={POOL: [NatsTimeout()]}), FakeActivity()

    result = await executor(nc, activity).execute(
        request(), [target("a", retry=RetryPolicy(attempts=0))], "_INBOX.ingress.1"
    )

    assert result is not None and result.error is not None
    assert (result.error.error_class, result.error.code) == (FailureClass.TIMEOUT, "worker_timeout")
    assert [row.error_class for row in activity.rows] == ["timeout"]
    [(_, call, timeout)] = nc.requests
    assert timeout == pytest.approx((call.attempt_deadline_ns - time.time_ns()) / S + 1.0, abs=0.5)


async def test_an_undecodable_worker_answer_is_a_worker_error() -> None:
    nc, activity = FakeNats(script={POOL: [b"\xc1garbage"]}), FakeActivity()

    result = await executor(nc, activity).execute(
        request(), [target("a", retry=RetryPolicy(attempts=0))], "_INBOX.ingress.1"
    )

    assert result is not None and result.error is not None
    assert result.error.error_class is FailureClass.WORKER_ERROR
    assert [row.error_class for row in activity.rows] == ["worker_error"]


async def test_past_the_deadline_the_last_failure_is_the_answer() -> None:
    route = request(deadline_s=60.0)

    def fail_and_spend_the_budget(call: ProviderCall) -> ProviderResult:
        route.deadline_ns = time.time_ns()  # the budget is gone by the time this answer arrives
        return failed("a", upstream(FailureClass.UPSTREAM_5XX, 500))

    nc = FakeNats(script={POOL: [fail_and_spend_the_budget]})

    result = await executor(nc).execute(route, [target("a"), target("b")], "_INBOX.ingress.1")

    assert result is not None and result.error is not None and result.provider_slug == "a"
    assert len(nc.requests) == 1


async def test_a_success_is_the_answer_and_the_next_target_is_not_tried() -> None:
    nc = FakeNats(script={POOL: [ok("a"), ok("b")]})

    result = await executor(nc).execute(request(), [target("a"), target("b")], "_INBOX.ingress.1")

    assert result is not None and result.ok and result.provider_slug == "a" and result.attempts == 1
    assert [c.target.provider_slug for _, c, _ in nc.requests] == ["a"]


# --- gateway config settings ----------------------------------------------------------------------


async def test_the_backoff_schedule_doubles_and_honours_the_upstreams_retry_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("keyrail_router.executor.asyncio.sleep", sleep)
    five_hundred = failed("a", upstream(FailureClass.UPSTREAM_5XX, 500))
    slow_down = failed("a", upstream(FailureClass.RATE_LIMIT, 429, retry_after_s=1.5))
    nc = FakeNats(script={POOL: [five_hundred, five_hundred, slow_down, ok("a")]})
    retrying = target("a", retry=RetryPolicy(attempts=3, backoff_ms=100))

    result = await executor(nc).execute(request(), [retrying], "_INBOX.ingress.1")

    assert result is not None and result.ok and result.attempts == 4
    # jitter 0: half the backoff, doubling (0.05, 0.1, 0.2); the 429's Retry-After of 1.5 s wins.
    assert slept == pytest.approx([0.05, 0.1, 1.5])


async def test_a_targets_own_fallback_on_decides_after_it() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.OVERLOADED, 503)), ok("b")]})
    only_on_429 = target("a", fallback_on=[429])

    result = await executor(nc).execute(request(), [only_on_429, target("b")], "_INBOX.ingress.1", [503])

    assert result is not None and not result.ok and result.error is not None
    assert len(nc.requests) == 1  # the config that listed "a" falls back on 429 only


async def test_a_caller_error_never_falls_back_whatever_fallback_on_says() -> None:
    bad = failed("a", upstream(FailureClass.CALLER_ERROR, 400))
    nc = FakeNats(script={POOL: [bad, ok("b")]})

    result = await executor(nc).execute(
        request(), [target("a", fallback_on=[400, "caller_error"]), target("b")], "_INBOX.ingress.1"
    )

    assert result is not None and result.http_status == 400 and len(nc.requests) == 1


async def test_overrides_are_merged_into_that_targets_body_only_and_the_route_is_on_every_call() -> None:
    nc = FakeNats(script={POOL: [failed("a", upstream(FailureClass.OVERLOADED, 503)), ok("b")]})
    route = Route([], config_id="chain", virtual_model="classifier")
    overridden = target("a", override_params={"temperature": 0, "messages": None})

    result = await executor(nc).execute(request(), [overridden, target("b")], "_INBOX.ingress.1", route=route)

    assert result is not None and result.ok
    (_, first, _), (_, second, _) = nc.requests
    assert msgspec.json.decode(first.body) == {"temperature": 0}
    assert second.body == request().body  # untouched bytes
    assert [(c.config_id, c.virtual_model) for c in (first, second)] == [("chain", "classifier")] * 2


async def test_a_forwarded_call_carries_its_route_and_its_overrides() -> None:
    nc = FakeNats()
    route = Route([], config_id="chain", virtual_model="classifier")

    await executor(nc).execute(
        request(), [target("a", override_params={"service_tier": "flex"})], "_INBOX.ingress.1", route=route
    )

    [(_, payload, _)] = nc.published
    call = provider_call_decoder.decode(payload)
    assert (call.config_id, call.virtual_model) == ("chain", "classifier")
    assert msgspec.json.decode(call.body) == {"messages": [], "service_tier": "flex"}


async def test_an_attempt_the_router_records_names_the_config_and_the_alias() -> None:
    activity = FakeActivity()
    nc = FakeNats(script={POOL: [NoRespondersError(), ok("b")]})
    route = Route([], config_id="chain", virtual_model="classifier")

    await executor(nc, activity).execute(
        request(), [target("a"), target("b")], "_INBOX.ingress.1", route=route
    )

    [row] = activity.rows
    assert (row.config_id, row.virtual_model, row.fallback_position) == ("chain", "classifier", 0)


# --- circuit breakers ---------------------------------------------------------------------------------


async def test_an_open_circuit_skips_its_target_naming_the_cause_and_falls_back() -> None:
    circuits = Circuits()
    circuits.fail("openai-a", 2, at=time.time())
    nc, activity = FakeNats(script={POOL: [ok("openai-b")]}), FakeActivity()
    targets = [target("openai-a"), target("openai-b"), target("openai-c")]
    result = await executor(nc, activity, circuits).execute(request(), targets, "_INBOX.client")
    assert result is not None and result.ok and result.provider_slug == "openai-b" and result.attempts == 2
    assert [c.target.provider_slug for _, c, _ in nc.requests] == ["openai-b"]  # a was never called
    (skipped,) = activity.rows
    assert skipped.provider_slug == "openai-a" and skipped.error_class == "circuit_open"
    assert "upstream_5xx: upstream said 500" in skipped.error_message
    assert circuits.claims == []  # still cooling down: no probe claimed


async def test_the_one_target_left_past_open_circuits_takes_the_fast_path_as_the_second_attempt() -> None:
    """Skipping costs the fallback no extra hop: the target left answers the ingress itself."""
    circuits = Circuits()
    circuits.fail("openai-a", 2, at=time.time())
    nc, activity = FakeNats(), FakeActivity()
    result = await executor(nc, activity, circuits).execute(
        request(), [target("openai-a"), target("openai-b")], "_INBOX.client"
    )
    assert result is None and nc.requests == []  # no request/reply through the router
    ((subject, payload, _),) = nc.published
    forwarded = provider_call_decoder.decode(payload)
    assert subject == POOL and forwarded.target.provider_slug == "openai-b"
    assert (forwarded.fallback_position, forwarded.attempt, forwarded.reply_to) == (1, 2, "_INBOX.client")
    assert [(r.provider_slug, r.error_class, r.attempt) for r in activity.rows] == [
        ("openai-a", "circuit_open", 1)
    ]


async def test_calls_to_a_target_the_breakers_know_ask_for_its_success_to_be_watched() -> None:
    """Regression (breaker feed cost): routers read only failures and watched successes, so a
    target with a breaker record must mark its calls, or a success would never reset the count."""
    circuits = Circuits()
    circuits.fail("openai-a", 1, at=time.time())  # one failure: a record, the circuit still closed
    nc = FakeNats(script={POOL: [ok("openai-a"), ok("openai-b")]})
    targets = [target("openai-a"), target("openai-b")]
    await executor(nc, circuits=circuits).execute(request(), targets, "_INBOX.client")
    await executor(nc, circuits=circuits).execute(request(), [targets[1], targets[0]], "_INBOX.client")
    assert [(c.target.provider_slug, c.breaker_watch) for _, c, _ in nc.requests] == [
        ("openai-a", True),  # known to the breakers
        ("openai-b", False),  # healthy, never failed: its success would change nothing
    ]


async def test_a_single_target_with_an_open_circuit_is_not_forwarded_but_answered_503() -> None:
    circuits = Circuits()
    circuits.fail("openai-a", 2, at=time.time())
    nc = FakeNats()
    result = await executor(nc, circuits=circuits).execute(request(), [target("openai-a")], "_INBOX.client")
    assert result is not None and result.error is not None
    assert result.http_status == 503 and result.error.code == "circuit_open"
    assert result.error.provider_code == "upstream_5xx"  # the underlying cause travels with it
    assert "/admin/v1/integrations/openai-a/health" in result.error.message
    assert nc.requests == [] and nc.published == []


@pytest.mark.parametrize("wins", [True, False])
async def test_after_the_cool_down_only_the_replica_that_wins_the_probe_claim_attempts(wins: bool) -> None:
    circuits = Circuits(win_probes=wins)
    circuits.fail("openai-a", 2, at=time.time() - 31)
    nc = FakeNats(script={POOL: [ok("openai-a")]})
    result = await executor(nc, circuits=circuits).execute(request(), [target("openai-a")], "_INBOX.client")
    assert len(circuits.claims) == 1
    assert result is not None
    if wins:
        assert result.ok and [c.target.provider_slug for _, c, _ in nc.requests] == ["openai-a"]
    else:
        assert result.error is not None and result.error.code == "circuit_open" and nc.requests == []


async def test_a_closed_breaker_with_some_failures_still_attempts_its_target() -> None:
    circuits = Circuits()
    circuits.fail("openai-a", 1, at=time.time())
    nc = FakeNats(script={POOL: [ok("openai-a")]})
    result = await executor(nc, circuits=circuits).execute(request(), [target("openai-a")], "_INBOX.client")
    assert result is not None and result.ok and circuits.claims == []
