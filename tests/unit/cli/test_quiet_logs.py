"""An idle pull-fetch is not a failure, whichever TimeoutError nats-py raises for it; any other
fetch error is still a warning. (nats-py raises the builtin TimeoutError when the wait runs out
between its two pull requests: a timing edge a real server hits only now and then, so the fetch
results are scripted here; tests/integration/test_first_run.py runs the consumer on a real one.)"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import FetchTimeoutError, ServiceUnavailableError

from keyrail_audit.consumer import ActivityConsumer
from keyrail_audit.store import ActivityStore


class ScriptedSubscription:
    def __init__(self, outcomes: list[BaseException], stop: asyncio.Event) -> None:
        self._outcomes = outcomes
        self._stop = stop

    async def fetch(self, batch: int, timeout: float) -> list[Any]:  # noqa: ASYNC109 - nats-py's signature
        await asyncio.sleep(0)
        if not self._outcomes:
            self._stop.set()
            raise NatsTimeout
        raise self._outcomes.pop(0)

    async def unsubscribe(self) -> None:
        pass


async def run_consumer(outcomes: list[BaseException], tmp_path: Any) -> None:
    stop = asyncio.Event()
    subscription = ScriptedSubscription(outcomes, stop)
    store = ActivityStore(f"chdb://{tmp_path}")  # never opened: nothing is fetched, nothing inserted
    consumer = ActivityConsumer(None, store)  # type: ignore[arg-type]  # no JetStream beyond the fetches
    await asyncio.wait_for(consumer.consume(subscription, stop), 10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "idle",
    [TimeoutError(), NatsTimeout(), FetchTimeoutError()],
    ids=["builtin TimeoutError", "nats TimeoutError", "FetchTimeoutError"],
)
async def test_an_idle_fetch_is_not_logged(
    idle: BaseException, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="keyrail.audit")
    await run_consumer([idle, idle, idle], tmp_path)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_real_fetch_failure_is_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="keyrail.audit")
    await run_consumer([TimeoutError(), ServiceUnavailableError(description="no responders")], tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("fetch failed: ServiceUnavailableError: ")
