"""How long an upstream asks us to wait before trying again, from its response headers.

In order of precedence: `retry-after-ms` (milliseconds), `Retry-After` (seconds or an HTTP
date), then the rate-limit reset headers (OpenAI's `x-ratelimit-reset-requests` / `-tokens`
durations such as `1s`, `6m0s`, `20ms`; Anthropic's `anthropic-ratelimit-*-reset` RFC 3339
times) of the limit that is exhausted, or the longest of those that do not say how much is left.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
from collections.abc import Mapping

from keyrail_common.failures import FailureClass

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_RESET_HEADERS = (
    ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
    ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"),
    ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"),
    ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"),
    ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"),
)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and math.isfinite(value) else None  # rejects negatives, NaN, inf


def _duration_s(text: str) -> float | None:
    """`1s`, `6m0s`, `1h2m3.5s`, `20ms`; a bare number is seconds."""
    text = text.strip()
    plain = _number(text)
    if plain is not None:
        return plain
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _date_s(text: str, now: dt.datetime) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def _reset_s(value: str, now: dt.datetime) -> float | None:
    duration = _duration_s(value)
    return duration if duration is not None else _date_s(value, now)


def retry_after_s(
    headers: Mapping[str, str], now: dt.datetime | None = None, rate_limit_resets: bool = True
) -> float:
    """Seconds to wait; 0 when the upstream said nothing usable. `headers` keys are lower case.

    `rate_limit_resets=False` reads only the explicit retry headers: the reset headers come on
    every OpenAI response and say nothing about an overloaded upstream.
    """
    now = now or dt.datetime.now(dt.UTC)
    millis = headers.get("retry-after-ms")
    if millis is not None and (value := _number(millis)) is not None:
        return value / 1000
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        value = _number(retry_after)
        if value is None:
            value = _date_s(retry_after, now)
        if value is not None:
            return value
    if not rate_limit_resets:
        return 0.0
    exhausted: list[float] = []
    others: list[float] = []
    for reset_name, remaining_name in _RESET_HEADERS:
        reset = headers.get(reset_name)
        if reset is None or (seconds := _reset_s(reset, now)) is None:
            continue
        remaining = headers.get(remaining_name)
        if remaining == "0":
            exhausted.append(seconds)
        elif remaining is None:  # the upstream did not say which limit this is
            others.append(seconds)
    if exhausted:
        return max(exhausted)
    return max(others, default=0.0)


def retry_after_for(failure_class: FailureClass, headers: Mapping[str, str]) -> float:
    """The delay an upstream's error response asks for, read as its failure class allows: a rate
    limit also by its reset headers, an overload only by its explicit retry headers."""
    if failure_class is FailureClass.RATE_LIMIT:
        return retry_after_s(headers)
    if failure_class is FailureClass.OVERLOADED:
        return retry_after_s(headers, rate_limit_resets=False)
    return 0.0
