"""The executor: walks a request's targets, attempt by attempt, deciding through the failure module.

Every request goes through `execute`. Its fast path, for a single target with no retry policy,
hands the call to the worker pool with the ingress's reply subject inside (`reply_to`), so the
worker answers the ingress directly (one hop fewer). The call's own reply subject is a router
inbox that only ever receives NATS's "no responders" status: when no worker of the pool runs,
the router answers the ingress at once, naming the pool, instead of leaving it to time out.

Otherwise each target is attempted in order within the deadline budget, retried when its policy
and the failure allow (exponential backoff with jitter, never sooner than the upstream's retry
delay, skipped when it would not fit in the deadline), and fallen back from when the failure
module says so, with the `fallback_on` of the config that listed the target. A target with
parameter overrides gets the client's body with them merged in; any other gets it untouched. Attempts that no
worker made (no worker, an adapter this version lacks, a worker that never answered) are
recorded here, so every attempt leaves an activity row.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from keyrail_common.activity import ActivityPublisher
from keyrail_common.attempts import AttemptRecorder
from keyrail_common.failures import (
    ErrorInfo,
    FailureClass,
    FallbackOn,
    failure,
    may_fall_back,
    may_retry,
    retry_delay_s,
)
from keyrail_common.messages import (
    ProviderCall,
    ProviderResult,
    RouteRequest,
    Target,
    encode,
    provider_result_decoder,
)
from keyrail_common.subjects import provider_pool
from keyrail_router.breaker import Admission, Breaker, admission, probe_key
from keyrail_router.breaker_feed import BreakerFeed
from keyrail_router.budget import WORKER_GRACE_S, attempt_deadline_ns, remaining_s
from keyrail_router.configs import Route
from keyrail_router.resolve import Resolver, unavailable
from keyrail_router.strategy import apply_overrides

log = logging.getLogger("keyrail.router")

# A forwarded call whose pool had no worker is answered by NATS within milliseconds; entries
# older than this were answered by a worker and are forgotten.
_FORWARD_MEMORY_S = 5.0


def provider_call(
    request: RouteRequest,
    target: Target,
    position: int,
    attempt: int,
    deadline_ns: int,
    routed_ns: int,
    route: Route | None = None,
) -> ProviderCall:
    body = apply_overrides(request.body, target.override_params) if target.override_params else request.body
    return ProviderCall(
        request_id=request.request_id,
        org_id=request.org_id,
        project_id=request.project_id,
        attempt=attempt,
        fallback_position=position,
        target=target,
        body=body,
        received_ns=request.received_ns,
        routed_ns=routed_ns,
        deadline_ns=request.deadline_ns,
        attempt_deadline_ns=deadline_ns,
        stream=request.stream,
        stream_inbox=request.stream_inbox,
        tags=request.tags,
        operation=request.operation,
        dialect=request.dialect,
        config_id=route.config_id if route else "",
        virtual_model=route.virtual_model if route else "",
    )


def circuit_open(breaker: Breaker) -> ErrorInfo:
    opened = time.strftime("%H:%M:%S", time.gmtime(breaker.opened_at))
    probe = time.strftime("%H:%M:%S", time.gmtime(breaker.next_probe_at))
    return failure(
        FailureClass.CIRCUIT_OPEN,
        f"The circuit for '{breaker.slug}' model '{breaker.model}' is open (since {opened} UTC, after "
        f"{breaker.failures} failures in a row); the last failure was {breaker.last_failure_class}: "
        f"{breaker.last_failure_message or 'no message'}. A probe request goes through after "
        f"{probe} UTC; GET /admin/v1/integrations/{breaker.slug}/health shows the state.",
        code="circuit_open",
        provider_code=breaker.last_failure_class,
    )


def no_worker(target: Target) -> ErrorInfo:
    return failure(
        FailureClass.NO_WORKER,
        f"No '{target.adapter}' provider worker is running for '{target.provider_slug}'. "
        f"Start one with: keyrail worker --providers {target.adapter}",
        code="worker_pool_unavailable",
    )


class Executor:
    def __init__(
        self,
        nc: NATS,
        resolver: Resolver,
        activity: ActivityPublisher,
        breakers: BreakerFeed,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._nc = nc
        self._resolver = resolver
        self._activity = activity
        self._breakers = breakers
        self._jitter = jitter
        self._inbox = nc.new_inbox()
        self._tokens = itertools.count()
        self._forwarded: dict[str, tuple[str, ProviderCall, float]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_forward_answer)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    # -- the fast path ---------------------------------------------------------------------------

    def _fast_path(self, request: RouteRequest, targets: list[Target]) -> bool:
        return (
            len(targets) == 1
            and targets[0].retry is None
            and self._local_failure(request, targets[0]) is None
            and self._breakers.board.get(targets[0].provider_slug, targets[0].model) is None
        )

    async def _forward(
        self,
        request: RouteRequest,
        target: Target,
        reply: str,
        routed_ns: int,
        route: Route | None,
        position: int = 0,
    ) -> None:
        call = provider_call(request, target, position, position + 1, request.deadline_ns, routed_ns, route)
        call.reply_to = reply
        token = f"{self._inbox}.{next(self._tokens)}"
        self._forwarded[token] = (reply, call, time.monotonic())
        await self._nc.publish(provider_pool(target.adapter), encode(call), reply=token)

    async def _on_forward_answer(self, msg: Msg) -> None:
        """NATS's "no responders" for a forwarded call, or a worker's refusal of an unreadable one."""
        forwarded = self._forwarded.pop(msg.subject, None)
        if forwarded is None:
            return
        reply, call, _ = forwarded
        if msg.headers and msg.headers.get("Status") == "503":
            result = self._record_local(call, no_worker(call.target))
            await self._nc.publish(reply, encode(result))
        else:
            await self._nc.publish(reply, msg.data)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            cutoff = time.monotonic() - _FORWARD_MEMORY_S
            stale = [token for token, (_, _, at) in self._forwarded.items() if at < cutoff]
            for token in stale:
                del self._forwarded[token]

    # -- attempts --------------------------------------------------------------------------------

    def _local_failure(self, request: RouteRequest, target: Target) -> ErrorInfo | None:
        return unavailable(self._resolver, target, request.operation)

    def _skip_open_circuits(
        self, request: RouteRequest, targets: list[Target], routed_ns: int, route: Route | None
    ) -> list[ProviderResult]:
        """The leading targets whose circuit is open (not yet due a probe), each recorded as a
        skipped attempt: what is left may then still take the fast path."""
        skipped: list[ProviderResult] = []
        for position, target in enumerate(targets):
            breaker = self._breakers.board.get(target.provider_slug, target.model)
            # No breaker record is the common case: no clock read on the way to the fast path.
            if breaker is None or admission(breaker, time.time()) is not Admission.SKIP:
                break
            call = provider_call(
                request, target, position, position + 1, request.deadline_ns, routed_ns, route
            )
            result = self._record_local(call, circuit_open(breaker))
            result.attempts = position + 1
            skipped.append(result)
        return skipped

    async def _circuit_refusal(self, breaker: Breaker | None) -> ErrorInfo | None:
        """None when the target's breaker lets this attempt through (none, closed, or this router
        won the probe of a half-open one); else the open circuit's error, naming its cause."""
        now = time.time()
        verdict = admission(breaker, now)
        if verdict is Admission.GO or breaker is None:
            return None
        settings = self._breakers.board.settings
        if verdict is Admission.PROBE and await self._breakers.claim_probe(probe_key(breaker, now, settings)):
            return None
        return circuit_open(breaker)

    def _record_local(self, call: ProviderCall, error: ErrorInfo) -> ProviderResult:
        """An attempt that no worker made or answered: the router writes its activity row."""
        recorder = AttemptRecorder(call)
        result = recorder.fail(error)
        self._activity.record(recorder.row())
        return result

    async def _attempt(self, call: ProviderCall) -> ProviderResult:
        target = call.target
        wait_s = remaining_s(call.attempt_deadline_ns, time.time_ns()) + WORKER_GRACE_S
        try:
            reply = await self._nc.request(provider_pool(target.adapter), encode(call), timeout=wait_s)
        except NoRespondersError:
            return self._record_local(call, no_worker(target))
        except NatsTimeout:
            error = failure(
                FailureClass.TIMEOUT,
                f"No '{target.adapter}' worker answered for '{target.provider_slug}' within {wait_s:.1f}s.",
                code="worker_timeout",
            )
            return self._record_local(call, error)
        try:
            return provider_result_decoder.decode(reply.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.error("undecodable provider result for %s", call.request_id)
            error = failure(FailureClass.WORKER_ERROR, "The provider worker's answer could not be decoded.")
            return self._record_local(call, error)

    async def execute(
        self,
        request: RouteRequest,
        targets: list[Target],
        reply: str,
        fallback_on: FallbackOn | None = None,
        route: Route | None = None,
    ) -> ProviderResult | None:
        """The result for the ingress, or None when a worker answers it directly (fast path).
        `fallback_on`: for targets that carry none of their own."""
        routed_ns = time.time_ns()
        skipped = self._skip_open_circuits(request, targets, routed_ns, route)
        start = len(skipped)
        if start == len(targets):
            return skipped[-1]  # every target's circuit is open: the last one's error says why
        if self._fast_path(request, targets[start:]):
            # The one target left answers the ingress itself, as if it had been the only one.
            await self._forward(request, targets[start], reply, routed_ns, route, position=start)
            return None
        attempts = start
        result: ProviderResult | None = skipped[-1] if skipped else None
        for position in range(start, len(targets)):
            target = targets[position]
            retries = target.retry.attempts if target.retry else 0
            backoff_s = target.retry.backoff_ms / 1000 if target.retry else 0.0
            for retry_index in range(retries + 1):
                now_ns = time.time_ns()
                if now_ns >= request.deadline_ns and result is not None:
                    return result  # the budget is spent: the last failure is the answer
                attempts += 1
                deadline = attempt_deadline_ns(
                    now_ns, request.deadline_ns, target.timeout_s, len(targets) - position
                )
                call = provider_call(request, target, position, attempts, deadline, routed_ns, route)
                breaker = self._breakers.board.get(target.provider_slug, target.model)
                # A target the breakers know: its success is news to them (it resets or closes).
                call.breaker_watch = breaker is not None
                local = self._local_failure(request, target) or await self._circuit_refusal(breaker)
                result = self._record_local(call, local) if local else await self._attempt(call)
                result.attempts = attempts
                if result.ok or result.error is None:
                    return result
                if retry_index == retries or not may_retry(result.error):
                    break
                delay = retry_delay_s(result.error, retry_index, backoff_s, self._jitter())
                if time.time_ns() + delay * 1e9 >= request.deadline_ns:
                    break
                await asyncio.sleep(delay)
            assert result is not None and result.error is not None
            own = target.fallback_on
            if not may_fall_back(result.error, own if own is not None else fallback_on):
                return result
        return result
