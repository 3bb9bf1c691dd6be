"""Every NATS subject and JetStream name Keyrail uses, in one place."""

ROUTE = "keyrail.route"
# Broadcast to every worker (no queue group): the worker relaying that stream stops it.
STREAM_CANCEL = "keyrail.stream.cancel"
ROUTER_QUEUE = "router"

CONFIG_STREAM = "KEYRAIL_CONFIG"
CONFIG_PREFIX = "keyrail.config."
CONFIG_SUBJECTS = CONFIG_PREFIX + ">"

ACTIVITY_STREAM = "KEYRAIL_ACTIVITY"
ACTIVITY_SUBJECTS = "keyrail.activity.>"
ACTIVITY_ATTEMPT = "keyrail.activity.attempt"
# The attempts the routers' circuit breakers follow, apart from the healthy bulk above: every
# failure, and the successes of targets a breaker holds a record of (ProviderCall.breaker_watch).
ACTIVITY_ATTEMPT_WATCHED = "keyrail.activity.attempt.watched"
ACTIVITY_REQUEST = "keyrail.activity.request"
AUDIT_DURABLE = "audit"
# Create-only keys: the one router replica whose write succeeds sends a half-open circuit's probe.
BREAKER_PROBES_BUCKET = "KEYRAIL_BREAKER_PROBES"
# Any router replica answers with the circuit breakers of one provider slug (they all hold the same).
ROUTER_BREAKERS = "keyrail.router.breakers"

AUDIT_ACTIVITY_QUERY = "keyrail.audit.activity"
AUDIT_SQL = "keyrail.audit.sql"
AUDIT_KEY_USAGE = "keyrail.audit.key_usage"
AUDIT_COSTS = "keyrail.audit.costs"
AUDIT_QUEUE = "audit"


def provider_pool(pool: str) -> str:
    """Hot-path subject of one worker pool (one per adapter, its own queue group)."""
    return f"keyrail.provider.{pool}"


def config_subject(aggregate: str, aggregate_id: str) -> str:
    """One subject per aggregate: its last sequence is the aggregate's version."""
    return f"{CONFIG_PREFIX}{aggregate}.{aggregate_id}"


def health(component: str) -> str:
    """`router`, `audit` or `worker.<pool>`: each answers a ping when ready."""
    return f"keyrail.health.{component}"
