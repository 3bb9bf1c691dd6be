"""The deadline budget: how long each attempt may take out of what is left of the request's.

A target with its own timeout gets the smaller of that and what is left. A target without one
gets an equal share of what is left among the targets still to try (the last one gets it all),
so a target that hangs is abandoned in time for the next one to answer within the client's
budget. All times are wall-clock nanoseconds: they cross the bus between processes.
"""

from __future__ import annotations

# The router waits this much past an attempt's deadline for the worker's own timeout answer
# before it decides that no worker answered at all.
WORKER_GRACE_S = 1.0


def attempt_deadline_ns(
    now_ns: int, request_deadline_ns: int, target_timeout_s: float, targets_left: int
) -> int:
    left_ns = max(request_deadline_ns - now_ns, 0)
    if target_timeout_s > 0:
        return now_ns + min(int(target_timeout_s * 1e9), left_ns)
    return now_ns + left_ns // max(targets_left, 1)


def remaining_s(deadline_ns: int, now_ns: int) -> float:
    return max((deadline_ns - now_ns) / 1e9, 0.0)
