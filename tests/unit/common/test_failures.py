"""The failure table: what each `FailureClass` means for the client status, retry, fallback and breaker.

Every class is listed here with its expected decisions, so a class added to the vocabulary fails
`test_every_failure_class_has_an_expected_row` until someone decides (and writes down) its policy.
"""

from __future__ import annotations

import pytest

from keyrail_common.failures import (
    POLICIES,
    ErrorInfo,
    FailureClass,
    client_status,
    counts_for_breaker,
    error_type_for,
    failure,
    may_fall_back,
    may_retry,
    retry_delay_s,
)

F = FailureClass

# class: (client status without an upstream status, retry, fallback by default, breaker, never falls back)
EXPECTED: dict[FailureClass, tuple[int, bool, bool, bool, bool]] = {
    # The caller's request: the next target would fail the same way.
    F.CALLER_ERROR: (400, False, False, False, True),
    F.CONTEXT_LENGTH: (400, False, False, False, True),
    F.CONTENT_FILTER: (400, False, False, False, True),
    # The target's configuration or account: another target may work, this one will not.
    F.CREDENTIAL: (502, False, True, True, False),
    F.MODEL_ACCESS: (502, False, True, True, False),
    F.QUOTA: (429, False, True, True, False),
    F.UNSUPPORTED: (400, False, True, False, False),
    # Capacity and transport: retry the same target, then fall back.
    F.RATE_LIMIT: (429, True, True, True, False),
    F.OVERLOADED: (503, True, True, True, False),
    F.UPSTREAM_5XX: (502, True, True, True, False),
    F.TIMEOUT: (504, True, True, True, False),
    F.CONNECTION: (502, True, True, True, False),
    F.STREAM_CUT: (502, False, True, True, False),
    # The gateway's own failures: fall back, never blame the target's breaker.
    F.NO_WORKER: (503, False, True, False, False),
    F.WORKER_ERROR: (502, False, True, False, False),
    F.CIRCUIT_OPEN: (503, False, True, False, False),
    # The client left.
    F.CLIENT_DISCONNECTED: (499, False, False, False, True),
    # Decided by the gateway before any attempt.
    F.BAD_REQUEST: (400, False, False, False, True),
    F.REQUEST_TOO_LARGE: (413, False, False, False, True),
    F.UNAUTHENTICATED: (401, False, False, False, True),
    F.SCOPE: (403, False, False, False, True),
    F.NOT_FOUND: (404, False, False, False, True),
    F.GATEWAY_TIMEOUT: (504, False, False, False, True),
}

NEVER_FALL_BACK = sorted(c for c, row in EXPECTED.items() if row[4])
GATEWAY_INTERNAL = [F.NO_WORKER, F.UNSUPPORTED, F.WORKER_ERROR, F.CIRCUIT_OPEN]
UPSTREAM_ANSWERS = [F.CREDENTIAL, F.MODEL_ACCESS, F.QUOTA, F.RATE_LIMIT, F.OVERLOADED, F.UPSTREAM_5XX]


def error_of(failure_class: FailureClass, upstream_status: int = 0, retry_after_s: float = 0.0) -> ErrorInfo:
    return failure(failure_class, "m", upstream_status=upstream_status, retry_after_s=retry_after_s)


def test_every_failure_class_has_an_expected_row_and_a_policy() -> None:
    assert set(EXPECTED) == set(FailureClass)
    assert set(POLICIES) == set(FailureClass)


# --- client status -------------------------------------------------------------------------------


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_client_status_of_every_class(failure_class: FailureClass) -> None:
    status = EXPECTED[failure_class][0]

    assert client_status(failure_class) == status
    assert error_of(failure_class).http_status == status


@pytest.mark.parametrize(("upstream", "client"), [(400, 400), (413, 413), (422, 422), (405, 400), (0, 400)])
def test_caller_errors_keep_the_upstream_status_of_a_rejected_request(upstream: int, client: int) -> None:
    assert client_status(F.CALLER_ERROR, upstream) == client


@pytest.mark.parametrize(
    ("failure_class", "upstream", "client"),
    [
        (F.CREDENTIAL, 401, 502),  # the gateway's key is wrong; the caller's request was fine
        (F.CREDENTIAL, 403, 502),
        (F.MODEL_ACCESS, 404, 502),
        (F.QUOTA, 402, 429),
        (F.RATE_LIMIT, 429, 429),
        (F.TIMEOUT, 408, 504),
        (F.CONTEXT_LENGTH, 400, 400),
    ],
)
def test_other_classes_answer_their_own_status_whatever_the_upstream_said(
    failure_class: FailureClass, upstream: int, client: int
) -> None:
    assert client_status(failure_class, upstream) == client


@pytest.mark.parametrize(
    ("failure_class", "upstream", "client"),
    [
        (F.UPSTREAM_5XX, 503, 503),  # "unavailable" stays unavailable
        (F.UPSTREAM_5XX, 500, 502),
        (F.UPSTREAM_5XX, 502, 502),
        (F.UPSTREAM_5XX, 0, 502),
        (F.OVERLOADED, 503, 503),
        (F.OVERLOADED, 529, 503),  # Anthropic overloaded_error
        (F.OVERLOADED, 498, 503),  # Groq flex capacity
    ],
)
def test_upstream_503_is_503_and_other_server_failures_are_502(
    failure_class: FailureClass, upstream: int, client: int
) -> None:
    assert client_status(failure_class, upstream) == client


# --- fallback ------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_fallback_default_without_a_fallback_on_list(failure_class: FailureClass) -> None:
    assert may_fall_back(error_of(failure_class)) is EXPECTED[failure_class][2]


@pytest.mark.parametrize("failure_class", NEVER_FALL_BACK)
def test_never_fall_back_classes_do_not_fall_back_even_when_the_list_names_them(
    failure_class: FailureClass,
) -> None:
    error = error_of(failure_class, upstream_status=400 if failure_class is F.CALLER_ERROR else 0)
    fallback_on = [failure_class.value, error.http_status, 400, 413, 422, 499, 504]

    assert may_fall_back(error, fallback_on) is False


@pytest.mark.parametrize(
    ("failure_class", "upstream", "fallback_on", "expected"),
    [
        # Upstream statuses: the upstream's own status is what the list names.
        (F.RATE_LIMIT, 429, [429], True),
        (F.RATE_LIMIT, 429, [503, 502], False),
        (F.OVERLOADED, 529, [529], True),
        (F.OVERLOADED, 529, [503], False),  # 503 is what the client sees, not what the upstream said
        (F.OVERLOADED, 503, [503], True),
        (F.UPSTREAM_5XX, 500, [500, 502], True),
        (F.CREDENTIAL, 401, [401, 403], True),
        (F.CREDENTIAL, 401, [429], False),
        (F.MODEL_ACCESS, 404, [], False),
        # Class names.
        (F.RATE_LIMIT, 429, ["rate_limit"], True),
        (F.QUOTA, 429, ["rate_limit"], False),
        (F.QUOTA, 429, ["quota"], True),
        (F.STREAM_CUT, 0, ["stream_cut"], True),
        # No upstream status (the gateway's own timeout, a refused connection): the client status counts.
        (F.TIMEOUT, 0, ["timeout"], True),
        (F.TIMEOUT, 0, [504], True),
        (F.TIMEOUT, 0, [429, "connection"], False),
        (F.CONNECTION, 0, ["connection"], True),
        (F.CONNECTION, 0, ["timeout"], False),
        # SPEC §4a's example list.
        (F.OVERLOADED, 529, [429, 500, 502, 503, 504, 529, "timeout", "connection", 401, 403], True),
        (F.MODEL_ACCESS, 404, [429, 500, 502, 503, 504, 529, "timeout", "connection", 401, 403], False),
    ],
)
def test_fallback_on_lists_name_upstream_statuses_and_class_names(
    failure_class: FailureClass, upstream: int, fallback_on: list[int | str], expected: bool
) -> None:
    assert may_fall_back(error_of(failure_class, upstream), fallback_on) is expected


@pytest.mark.parametrize("failure_class", GATEWAY_INTERNAL)
@pytest.mark.parametrize("fallback_on", [[], [429], ["timeout", 503]])
def test_gateway_internal_failures_always_fall_back(
    failure_class: FailureClass, fallback_on: list[int | str]
) -> None:
    assert may_fall_back(error_of(failure_class), fallback_on) is True


# --- retry and breaker ---------------------------------------------------------------------------


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_retry_per_class(failure_class: FailureClass) -> None:
    assert may_retry(error_of(failure_class)) is EXPECTED[failure_class][1]


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_breaker_per_class(failure_class: FailureClass) -> None:
    assert counts_for_breaker(error_of(failure_class).error_class) is EXPECTED[failure_class][3]


def test_the_upstream_status_does_not_change_the_decisions_of_a_class() -> None:
    for failure_class in UPSTREAM_ANSWERS:
        plain, with_status = error_of(failure_class), error_of(failure_class, upstream_status=599)
        assert may_retry(plain) is may_retry(with_status)
        assert counts_for_breaker(plain.error_class) is counts_for_breaker(with_status.error_class)
        assert may_fall_back(plain) is may_fall_back(with_status)


# --- retry_delay_s -------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_index", "expected"), [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8)])
def test_retry_delay_doubles_per_retry(retry_index: int, expected: float) -> None:
    # jitter 0 is the shortest delay: half the exponential backoff.
    assert retry_delay_s(error_of(F.UPSTREAM_5XX), retry_index, 0.2, 0.0) == pytest.approx(expected)


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 0.75, 0.999999])
@pytest.mark.parametrize("retry_index", [0, 1, 4])
def test_retry_delay_jitter_stays_between_half_and_all_of_the_backoff(
    jitter: float, retry_index: int
) -> None:
    full = 0.2 * 2**retry_index

    delay = retry_delay_s(error_of(F.OVERLOADED), retry_index, 0.2, jitter)

    assert full / 2 <= delay < full
    assert delay == pytest.approx(full * (0.5 + jitter / 2))


def test_retry_delay_grows_with_the_jitter() -> None:
    error = error_of(F.TIMEOUT)

    delays = [retry_delay_s(error, 1, 0.5, j) for j in (0.0, 0.3, 0.6, 0.9)]

    assert delays == sorted(delays) and len(set(delays)) == 4


@pytest.mark.parametrize("retry_index", [0, 1, 2])
@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_retry_delay_is_never_below_the_upstreams_retry_after(retry_index: int, jitter: float) -> None:
    error = error_of(F.RATE_LIMIT, 429, retry_after_s=7.0)

    assert retry_delay_s(error, retry_index, 0.2, jitter) == pytest.approx(7.0)


def test_retry_delay_is_the_backoff_when_it_is_longer_than_the_retry_after() -> None:
    error = error_of(F.RATE_LIMIT, 429, retry_after_s=0.05)

    assert retry_delay_s(error, 3, 1.0, 0.0) == pytest.approx(4.0)


# --- failure() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_failure_sets_status_type_and_code_from_the_class(failure_class: FailureClass) -> None:
    error = failure(failure_class, "what happened and what to do")

    assert error.error_class is failure_class
    assert error.http_status == EXPECTED[failure_class][0]
    assert error.type == error_type_for(error.http_status)
    assert error.code == failure_class.value  # the class name when no code is given
    assert error.message == "what happened and what to do"
    assert (error.param, error.upstream_status, error.provider_code, error.retry_after_ms) == (None, 0, "", 0)


def test_failure_keeps_code_param_and_what_the_upstream_said() -> None:
    error = failure(
        F.CALLER_ERROR,
        "bad",
        code="upstream_422",
        param="tools",
        upstream_status=422,
        provider_code="invalid_type",
    )

    assert (error.http_status, error.type) == (422, "invalid_request_error")
    assert (error.code, error.param) == ("upstream_422", "tools")
    assert (error.upstream_status, error.provider_code) == (422, "invalid_type")


@pytest.mark.parametrize(
    ("seconds", "millis"), [(6.596, 6596), (17.0, 17000), (0.0004, 0), (0.0, 0), (-3.0, 0)]
)
def test_failure_turns_the_retry_delay_into_milliseconds(seconds: float, millis: int) -> None:
    assert failure(F.RATE_LIMIT, "slow down", retry_after_s=seconds).retry_after_ms == millis


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (408, "timeout_error"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (499, "invalid_request_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "api_error"),
        # Unlisted statuses: by range.
        (409, "invalid_request_error"),
        (418, "invalid_request_error"),
        (529, "api_error"),
        (599, "api_error"),
    ],
)
def test_error_type_for_statuses(status: int, expected: str) -> None:
    assert error_type_for(status) == expected
