"""The deadline budget: each attempt's share of what is left of the request's deadline."""

from __future__ import annotations

import pytest

from keyrail_router.budget import attempt_deadline_ns, remaining_s

S = 1_000_000_000  # one second in nanoseconds
NOW = 1_700_000_000 * S


@pytest.mark.parametrize(
    ("left_s", "targets_left", "share_s"),
    [
        (120, 1, 120),  # the last target gets all that is left
        (120, 2, 60),
        (120, 3, 40),
        (90, 4, 22.5),
        (1, 3, 1 / 3),
    ],
)
def test_targets_without_a_timeout_share_what_is_left_equally(
    left_s: float, targets_left: int, share_s: float
) -> None:
    deadline = attempt_deadline_ns(NOW, NOW + int(left_s * S), 0.0, targets_left)

    assert deadline - NOW == pytest.approx(share_s * S, abs=1)


def test_shares_grow_as_targets_are_used_up() -> None:
    request_deadline = NOW + 120 * S

    first = attempt_deadline_ns(NOW, request_deadline, 0.0, 3)  # 40 s, and it hung to the end
    second = attempt_deadline_ns(first, request_deadline, 0.0, 2)  # half of the 80 s left
    third = attempt_deadline_ns(second, request_deadline, 0.0, 1)  # all of the 40 s left

    assert (first - NOW, second - first, third - second) == (40 * S, 40 * S, 40 * S)
    assert third == request_deadline


@pytest.mark.parametrize(
    ("timeout_s", "left_s", "budget_s"),
    [
        (20, 120, 20),  # its own timeout, when it fits
        (20, 15, 15),  # capped by what is left of the request
        (0.25, 120, 0.25),
        (120, 120, 120),
    ],
)
@pytest.mark.parametrize("targets_left", [1, 3])
def test_a_targets_own_timeout_is_capped_by_what_is_left(
    timeout_s: float, left_s: float, budget_s: float, targets_left: int
) -> None:
    # An own timeout is not shared out: it is the target's limit whatever follows it.
    deadline = attempt_deadline_ns(NOW, NOW + int(left_s * S), timeout_s, targets_left)

    assert deadline - NOW == int(budget_s * S)


@pytest.mark.parametrize("timeout_s", [0.0, 30.0])
@pytest.mark.parametrize("past_s", [0, 1, 3600])
def test_past_the_deadline_an_attempt_gets_no_budget(timeout_s: float, past_s: int) -> None:
    deadline = attempt_deadline_ns(NOW, NOW - past_s * S, timeout_s, 2)

    assert deadline == NOW
    assert remaining_s(deadline, NOW) == 0.0


def test_zero_targets_left_is_treated_as_one() -> None:
    assert attempt_deadline_ns(NOW, NOW + 10 * S, 0.0, 0) == NOW + 10 * S


@pytest.mark.parametrize(
    ("deadline_offset_ns", "expected_s"),
    [(10 * S, 10.0), (S // 4, 0.25), (1, 1e-9), (0, 0.0), (-5 * S, 0.0)],
)
def test_remaining_s_is_never_negative(deadline_offset_ns: int, expected_s: float) -> None:
    assert remaining_s(NOW + deadline_offset_ns, NOW) == pytest.approx(expected_s)
