"""The worker's NATS side: a provider call in, exactly one answer out, one activity row, one log line.

Non-streaming: the answer is the upstream's response. Streaming: chunks go straight to the
ingress inbox and the answer is sent as soon as the first chunk went out (or the upstream failed
before any content, so the router can still fall back). On the router's fast path the answer
goes to the ingress directly (`reply_to`), not to the message's reply subject.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.attempts import AttemptRecorder
from keyrail_common.failures import FailureClass, failure
from keyrail_common.messages import ProviderResult, encode, provider_call_decoder
from keyrail_common.wire import decode_or_refuse
from keyrail_workers.metrics import WORKER_CALLS
from keyrail_workers.runner import AttemptRunner

log = logging.getLogger("keyrail.worker")


class ProviderCallHandler:
    def __init__(self, nc: NATS, runner: AttemptRunner, activity: ActivityPublisher, access_log: AccessLog):
        self._nc = nc
        self._runner = runner
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._activity = activity
        self._access_log = access_log

    async def on_call(self, msg: Msg) -> None:
        call = decode_or_refuse(provider_call_decoder, msg.data, msg.subject)
        if isinstance(call, str):
            if msg.reply:
                error = failure(FailureClass.WORKER_ERROR, f"The provider worker refused the call: {call}.")
                await self._nc.publish(
                    msg.reply, encode(ProviderResult(ok=False, http_status=502, error=error))
                )
            return
        reply_subject = call.reply_to or msg.reply
        attempt = AttemptRecorder(call)
        replied = False

        async def reply(result: ProviderResult) -> None:
            nonlocal replied
            if not replied:
                replied = True
                await self._nc.publish(reply_subject, encode(result))

        if call.stream:
            self._streams[call.request_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._runner.run(call, attempt, reply)
        except asyncio.CancelledError:
            # Only `cancel_stream` cancels these tasks: the client left, so stop paying the upstream.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            attempt.fail(failure(FailureClass.CLIENT_DISCONNECTED, "The client closed the stream."))
        except Exception as exc:  # the router must always get an answer; the reason is logged by class only
            log.error("provider call %s failed: %s", call.request_id, type(exc).__name__)
            await reply(
                attempt.fail(failure(FailureClass.WORKER_ERROR, f"Worker failed: {type(exc).__name__}"))
            )
        finally:
            self._streams.pop(call.request_id, None)
            if not replied:
                await reply(
                    attempt.fail(
                        attempt.error or failure(FailureClass.WORKER_ERROR, "The worker gave no result.")
                    )
                )
            attempt.timings.done_ns = attempt.timings.done_ns or time.time_ns()
            self._activity.record(attempt.row(), watched=call.breaker_watch)
            WORKER_CALLS(call.target.provider_slug, attempt.http_status).inc()
            self._access_log.line(
                request_id=call.request_id,
                provider_slug=call.target.provider_slug,
                attempt=call.attempt,
                status=attempt.http_status,
                stream=call.stream,
            )

    async def cancel_stream(self, msg: Msg) -> None:
        """`keyrail.stream.cancel`: the ingress lost the client of this request's stream."""
        task = self._streams.get(msg.data.decode(errors="replace"))
        if task is not None:
            task.cancel()
