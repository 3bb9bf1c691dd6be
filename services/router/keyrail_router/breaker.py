"""Circuit breakers, one per target (provider slug + upstream model): the pure state machine.

The state is a fold over the attempt rows of the activity stream, in stream order, with the
rows' own timestamps: every router replica reads the same stream, so every replica holds the
same breakers (breaker_feed.py does the reading), and the fast path, whose attempts the router
never sees answered, counts like every other attempt. The stream carries every failure but only
the successes of targets that have a breaker record when they are routed (a healthy target's
success changes nothing): a success in flight while a target's first failure is being folded is
not seen, so "in a row" means "with no success seen in between".

- closed: failures of a breaker-counting class (failures.counts_for_breaker) in a row, within
  `window_s` of the first of them, open the circuit at the `failures`-th; a success resets the
  count; a failure that does not count (the caller's own error) changes nothing.
- open: the target is skipped until `cooldown_s` after it opened. Rows of attempts that started
  before that are stragglers and change nothing.
- probing ("half open"): from then on one probe request at a time is let through
  (`probe_key` names the claim, shared by the replicas through breaker_feed.ProbeClaims); its
  success closes the circuit, its failure opens it again for another cool-down. A probe that
  never reports frees the next claim one cool-down later.
"""

from __future__ import annotations

import enum
import hashlib

import msgspec

from keyrail_common.failures import FailureClass, counts_for_breaker


class AttemptOutcome(msgspec.Struct, gc=False):  # no cycles: see keyrail_common.messages
    """The fields of an attempt's activity row (messages.ActivityRow) a breaker reads: decoding
    only these from the activity stream costs the router a fraction of the whole row."""

    kind: str
    ts_ms: int
    provider_slug: str = ""
    model: str = ""
    status: str = "ok"
    error_class: str = ""
    error_message: str = ""


class OutcomeBatch(msgspec.Struct, gc=False):
    rows: list[AttemptOutcome]  # an activity.ActivityBatch, read for these fields only


class BreakerSettings(msgspec.Struct, frozen=True):
    failures: int = 5  # consecutive counting failures that open the circuit
    window_s: float = 60.0  # ... within this long of the first of them
    cooldown_s: float = 30.0  # how long an open circuit skips its target before a probe


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # open, and the cool-down has passed: a probe may go through


class Breaker(msgspec.Struct, frozen=True):
    """One target's breaker, as the fold leaves it. Times are Unix seconds."""

    slug: str
    model: str
    open: bool = False
    failures: int = 0  # the current run of counting failures
    run_started_at: float = 0.0
    opened_at: float = 0.0
    next_probe_at: float = 0.0
    last_failure_class: str = ""
    last_failure_message: str = ""
    last_failure_at: float = 0.0

    def state(self, now: float) -> CircuitState:
        if not self.open:
            return CircuitState.CLOSED
        return CircuitState.HALF_OPEN if now >= self.next_probe_at else CircuitState.OPEN


def observe(breaker: Breaker, row: AttemptOutcome, settings: BreakerSettings) -> Breaker:
    """The breaker after one attempt row of its target."""
    at = row.ts_ms / 1000
    ok = row.status == "ok"
    counting = not ok and _counts(row.error_class)
    if breaker.open:
        if at < breaker.next_probe_at or not (ok or counting):
            return breaker  # a straggler from before the cool-down, or the caller's own error
        if ok:  # the probe went through: closed, its history kept for the health endpoint
            return msgspec.structs.replace(
                breaker, open=False, failures=0, run_started_at=0.0, opened_at=0.0, next_probe_at=0.0
            )
        return msgspec.structs.replace(
            breaker,
            opened_at=at,
            next_probe_at=at + settings.cooldown_s,
            failures=breaker.failures + 1,
            **_failure_of(row),
        )
    if ok:
        return breaker if breaker.failures == 0 else msgspec.structs.replace(breaker, failures=0)
    if not counting:
        return breaker
    fresh_run = breaker.failures == 0 or at - breaker.run_started_at > settings.window_s
    failures = 1 if fresh_run else breaker.failures + 1
    run_started_at = at if fresh_run else breaker.run_started_at
    opens = failures >= settings.failures
    return msgspec.structs.replace(
        breaker,
        failures=failures,
        run_started_at=run_started_at,
        open=opens,
        opened_at=at if opens else 0.0,
        next_probe_at=at + settings.cooldown_s if opens else 0.0,
        **_failure_of(row),
    )


def _counts(error_class: str) -> bool:
    try:
        return counts_for_breaker(FailureClass(error_class))
    except ValueError:
        return False  # a class this version does not know (a newer worker): not evidence


def _failure_of(row: AttemptOutcome) -> dict[str, object]:
    return {
        "last_failure_class": row.error_class,
        "last_failure_message": row.error_message,
        "last_failure_at": row.ts_ms / 1000,
    }


class Admission(enum.Enum):
    GO = "go"  # closed: attempt it
    PROBE = "probe"  # half open: attempt it if this router wins the probe claim
    SKIP = "skip"  # open: do not attempt it


def admission(breaker: Breaker | None, now: float) -> Admission:
    if breaker is None or not breaker.open:
        return Admission.GO
    return Admission.PROBE if now >= breaker.next_probe_at else Admission.SKIP


def probe_key(breaker: Breaker, now: float, settings: BreakerSettings) -> str:
    """The claim one probe of this open period (and this cool-down slot of it) is sent under:
    the same on every replica, and a new one each cool-down a probe stays unanswered."""
    slot = int(max(now - breaker.next_probe_at, 0.0) // settings.cooldown_s)
    target = hashlib.sha256(f"{breaker.slug}\0{breaker.model}".encode()).hexdigest()[:24]
    return f"{target}.{int(breaker.opened_at * 1000)}.{slot}"


class BreakerBoard:
    """Every target's breaker, folded from the attempt rows in stream order."""

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self._breakers: dict[tuple[str, str], Breaker] = {}

    def observe(self, row: AttemptOutcome) -> Breaker | None:
        """Folds one row in; returns the target's breaker when the row changed it."""
        if row.kind != "attempt" or not row.provider_slug:
            return None
        key = (row.provider_slug, row.model)
        before = self._breakers.get(key)
        if before is None:
            if row.status == "ok":
                return None  # the common case: a healthy target needs no record
            before = Breaker(row.provider_slug, row.model)
        after = observe(before, row, self.settings)
        if after is before:
            return None
        self._breakers[key] = after
        return after

    def get(self, slug: str, model: str) -> Breaker | None:
        return self._breakers.get((slug, model))

    def of_slug(self, slug: str) -> list[Breaker]:
        return sorted((b for (s, _), b in self._breakers.items() if s == slug), key=lambda b: b.model)

    def all(self) -> list[Breaker]:
        return list(self._breakers.values())
