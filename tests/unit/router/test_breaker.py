"""The circuit breaker's state machine, folded from attempt rows (pure, no I/O)."""

from __future__ import annotations

import msgspec

from keyrail_common.activity import ActivityBatch, encode_batch
from keyrail_common.messages import ActivityRow
from keyrail_router.breaker import (
    Admission,
    AttemptOutcome,
    BreakerBoard,
    BreakerSettings,
    CircuitState,
    OutcomeBatch,
    admission,
    probe_key,
)

SETTINGS = BreakerSettings(failures=3, window_s=10.0, cooldown_s=5.0)
SLUG, MODEL = "openai-prod", "gpt-4o-mini"


def row(
    at: float, error_class: str = "", slug: str = SLUG, model: str = MODEL, kind: str = "attempt"
) -> ActivityRow:
    return ActivityRow(
        request_id=f"req-{at}",
        kind=kind,
        attempt=1,
        ts_ms=int(at * 1000),
        provider_slug=slug,
        model=model,
        status="error" if error_class else "ok",
        error_class=error_class,
        error_message=f"{error_class} at {at}" if error_class else "",
    )


def fold(*rows: ActivityRow) -> BreakerBoard:
    """The board after these rows, read as the router reads them: whole activity batches on the
    bus, decoded for the breaker's fields only."""
    board = BreakerBoard(SETTINGS)
    for outcome in msgspec.msgpack.decode(encode_batch(ActivityBatch(list(rows))), type=OutcomeBatch).rows:
        board.observe(outcome)
    return board


def test_three_counting_failures_in_a_row_open_the_circuit_with_the_last_cause() -> None:
    board = fold(row(100, "upstream_5xx"), row(101, "timeout"), row(102, "rate_limit"))
    breaker = board.get(SLUG, MODEL)
    assert breaker is not None and breaker.open and breaker.failures == 3
    assert breaker.opened_at == 102 and breaker.next_probe_at == 107
    assert (breaker.last_failure_class, breaker.last_failure_message) == ("rate_limit", "rate_limit at 102")
    assert breaker.state(106.9) is CircuitState.OPEN and breaker.state(107) is CircuitState.HALF_OPEN
    assert admission(breaker, 106.9) is Admission.SKIP and admission(breaker, 107) is Admission.PROBE


def test_two_failures_stay_closed_and_a_success_resets_the_run() -> None:
    board = fold(row(100, "upstream_5xx"), row(101, "upstream_5xx"), row(102), row(103, "upstream_5xx"))
    breaker = board.get(SLUG, MODEL)
    assert breaker is not None and not breaker.open and breaker.failures == 1
    assert admission(breaker, 104) is Admission.GO


def test_failures_spread_wider_than_the_window_do_not_open_it() -> None:
    board = fold(row(100, "timeout"), row(105, "timeout"), row(111, "timeout"))
    breaker = board.get(SLUG, MODEL)
    assert (
        breaker is not None and not breaker.open and breaker.failures == 1 and breaker.run_started_at == 111
    )


def test_the_callers_own_errors_and_gateway_failures_neither_count_nor_reset() -> None:
    board = fold(
        row(100, "upstream_5xx"),
        row(100.5, "caller_error"),
        row(101, "upstream_5xx"),
        row(101.5, "no_worker"),
        row(101.7, "circuit_open"),
        row(101.8, "a_class_from_a_newer_worker"),
        row(102, "upstream_5xx"),
    )
    breaker = board.get(SLUG, MODEL)
    assert breaker is not None and breaker.open and breaker.failures == 3


def test_stragglers_before_the_cool_down_change_nothing_and_a_probes_success_closes_it() -> None:
    opened = (row(100, "overloaded"), row(101, "overloaded"), row(102, "overloaded"))
    board = fold(*opened, row(103), row(104, "overloaded"))
    breaker = board.get(SLUG, MODEL)
    assert breaker is not None and breaker.open and breaker.opened_at == 102
    board.observe(AttemptOutcome(kind="attempt", ts_ms=107_500, provider_slug=SLUG, model=MODEL))  # the probe
    closed = board.get(SLUG, MODEL)
    assert closed is not None and not closed.open and closed.failures == 0
    assert closed.last_failure_class == "overloaded"  # kept for the health endpoint
    assert admission(closed, 108) is Admission.GO


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    board = fold(row(100, "timeout"), row(101, "timeout"), row(102, "timeout"), row(108, "connection"))
    breaker = board.get(SLUG, MODEL)
    assert breaker is not None and breaker.open and breaker.opened_at == 108 and breaker.next_probe_at == 113
    assert breaker.last_failure_class == "connection"
    assert admission(breaker, 110) is Admission.SKIP


def test_one_probe_key_per_open_period_and_cool_down_slot_the_same_on_every_replica() -> None:
    rows = (row(100, "timeout"), row(101, "timeout"), row(102, "timeout"))
    one, other = fold(*rows).get(SLUG, MODEL), fold(*rows).get(SLUG, MODEL)
    assert one is not None and other is not None
    assert probe_key(one, 107.0, SETTINGS) == probe_key(other, 111.9, SETTINGS)  # same slot
    assert probe_key(one, 112.0, SETTINGS) != probe_key(one, 107.0, SETTINGS)  # unanswered: next slot
    reopened = fold(*rows, row(108, "timeout")).get(SLUG, MODEL)
    assert reopened is not None and probe_key(reopened, 113.0, SETTINGS) != probe_key(one, 107.0, SETTINGS)


def test_targets_are_separate_and_healthy_ones_leave_no_record() -> None:
    board = fold(
        row(100, "timeout"),
        row(101, "timeout"),
        row(102, "timeout"),
        row(102, slug="openai-backup"),
        row(102, model="gpt-4o"),
        row(103, "timeout", kind="request"),
    )
    assert [b.model for b in board.of_slug(SLUG)] == [MODEL]
    assert board.get("openai-backup", MODEL) is None
    assert board.get(SLUG, "gpt-4o") is None
