"""`retry_after_s`: how long the upstream asks us to wait, from its response headers."""

from __future__ import annotations

import datetime as dt
import email.utils
import json

import pytest

from keyrail_workers.retry_after import retry_after_s
from tests.support.contracts import FIXTURES

NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)


def wait(headers: dict[str, str]) -> float:
    return retry_after_s(headers, now=NOW)


def http_date(seconds_from_now: float) -> str:
    return email.utils.format_datetime(NOW + dt.timedelta(seconds=seconds_from_now), usegmt=True)


def test_nothing_said_is_zero() -> None:
    assert wait({}) == 0.0
    assert wait({"content-type": "application/json", "x-request-id": "req_1"}) == 0.0


# --- retry-after-ms and Retry-After ----------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("1500", 1.5), ("20", 0.02), ("0", 0.0), ("250.5", 0.2505)])
def test_retry_after_ms(value: str, expected: float) -> None:
    assert wait({"retry-after-ms": value}) == pytest.approx(expected)


@pytest.mark.parametrize(("value", "expected"), [("17", 17.0), ("0", 0.0), ("120", 120.0), ("2.5", 2.5)])
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert wait({"retry-after": value}) == pytest.approx(expected)


@pytest.mark.parametrize("seconds", [30, 1, 3600])
def test_retry_after_http_date(seconds: int) -> None:
    assert wait({"retry-after": http_date(seconds)}) == pytest.approx(seconds)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert wait({"retry-after": http_date(-60)}) == 0.0


def test_the_clock_defaults_to_now() -> None:
    soon = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=100), usegmt=True)

    assert 95 <= retry_after_s({"retry-after": soon}) <= 100


# --- rate-limit reset headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("6.596s", 6.596),
        ("2m", 120.0),
        ("12", 12.0),  # a bare number is seconds
    ],
)
def test_openai_reset_durations(value: str, expected: float) -> None:
    headers = {"x-ratelimit-reset-requests": value, "x-ratelimit-remaining-requests": "0"}

    assert wait(headers) == pytest.approx(expected)


def test_the_exhausted_limit_decides_not_the_longest_reset() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "6m0s",  # the token limit is not the one we hit
    }

    assert wait(headers) == pytest.approx(1.0)


def test_when_several_limits_are_exhausted_the_longest_wait_wins() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "20ms",
    }

    assert wait(headers) == pytest.approx(1.0)


def test_without_remaining_headers_the_longest_reset_is_used() -> None:
    headers = {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}

    assert wait(headers) == pytest.approx(360.0)


def test_resets_of_limits_that_are_not_exhausted_are_ignored() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "12",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "6m0s",
    }

    assert wait(headers) == 0.0


def test_anthropic_rfc3339_resets_of_the_fixture() -> None:
    fixture = json.loads((FIXTURES / "anthropic" / "rate_limit_headers_429.json").read_text())
    headers = {k.lower(): v for k, v in fixture["headers"].items()}
    without_retry_after = {k: v for k, v in headers.items() if k != "retry-after"}

    # input tokens are exhausted (remaining 0), reset at 12:00:17Z; the other limits have room.
    assert wait(without_retry_after) == pytest.approx(17.0)
    assert wait(headers) == pytest.approx(17.0)  # and the fixture's own Retry-After says the same


@pytest.mark.parametrize(
    ("reset", "expected"),
    [("2026-11-26T12:00:17Z", 17.0), ("2026-11-26T12:01:00+00:00", 60.0), ("2026-11-26T11:59:00Z", 0.0)],
)
def test_anthropic_reset_times(reset: str, expected: float) -> None:
    headers = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": reset}

    assert wait(headers) == pytest.approx(expected)


# --- precedence ------------------------------------------------------------------------------------


def test_retry_after_ms_comes_before_retry_after_and_resets() -> None:
    headers = {
        "retry-after-ms": "250",
        "retry-after": "17",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
    }

    assert wait(headers) == pytest.approx(0.25)


def test_retry_after_comes_before_resets() -> None:
    headers = {"retry-after": "3", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}

    assert wait(headers) == pytest.approx(3.0)


def test_garbage_in_a_higher_header_falls_through_to_the_next() -> None:
    headers = {
        "retry-after-ms": "soon",
        "retry-after": "whenever",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "20ms",
    }

    assert wait(headers) == pytest.approx(0.02)


# --- garbage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after-ms": "soon"},
        {"retry-after-ms": "-5"},
        {"retry-after-ms": "nan"},
        {"retry-after-ms": ""},
        {"retry-after": "tomorrow-ish"},
        {"retry-after": "-1"},
        {"retry-after": "NaN"},
        {"retry-after": ""},
        {"retry-after": "Mon, 99 Foo 2026 25:61:00 GMT"},
        {"x-ratelimit-reset-requests": "1x", "x-ratelimit-remaining-requests": "0"},
        {"x-ratelimit-reset-requests": "1s2", "x-ratelimit-remaining-requests": "0"},
        {"x-ratelimit-reset-requests": "s", "x-ratelimit-remaining-requests": "0"},
        {"anthropic-ratelimit-tokens-reset": "not-a-time", "anthropic-ratelimit-tokens-remaining": "0"},
    ],
)
def test_garbage_is_ignored(headers: dict[str, str]) -> None:
    assert wait(headers) == 0.0


@pytest.mark.parametrize(
    "headers",
    [{"retry-after": "inf"}, {"retry-after": "Infinity"}, {"retry-after-ms": "1e999"}],
    ids=["inf", "Infinity", "overflow"],
)
def test_infinite_delays_are_garbage_too(headers: dict[str, str]) -> None:
    assert wait(headers) == 0.0
