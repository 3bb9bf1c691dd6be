"""Hot-path messages: ingress → router → provider worker, stream frames, activity rows.

All msgspec Structs encoded as msgpack; `v` fields version the wire shapes. Version 2 added the
operation, the client dialect and the deadlines: a version-1 route request still decodes (the new
fields have defaults), anything a service cannot read is refused with a counted, logged error
reply (`keyrail_common.bus_versions`), never a crash. Fields added since, all with defaults and
so within version 2 (an older sender omits them, an older reader ignores them): the gateway
config and virtual model of a request (`config_id`, `virtual_model`) and a target's
`override_params` and `fallback_on`.

The per-request messages are declared `gc=False`: they hold only strings, numbers, bytes and
containers of those (never themselves), so no reference cycle can run through them, and keeping
them out of the cyclic garbage collector's lists spares every service collections it would do
for nothing on each request.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any, Literal

import msgspec

from keyrail_common.failures import ErrorInfo
from keyrail_common.registry import Operation

MESSAGE_VERSION = 2

ZERO_COST = Decimal(0)


class Dialect(enum.StrEnum):
    """The API the client spoke to the ingress, and wants its answer in."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class RetryPolicy(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    attempts: int = 0  # retries of the same target after the first try
    backoff_ms: int = 200


class Usage(msgspec.Struct, omit_defaults=True, gc=False):
    """Normalised token usage, in OpenAI's semantics whatever the upstream: `prompt_tokens` counts
    every input token (cache reads and writes included), `cached_tokens` and `cache_write_tokens`
    are subsets of it, `reasoning_tokens` a subset of `completion_tokens`. None where a message
    carries a `Usage | None`: the upstream reported no usage (never silently zero)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0


class Prices(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """USD per one million tokens. None is "no known price" (the cost is unpriced, never $0);
    0 is a real price of nothing. `additional` prices further token kinds by name (for example
    `reasoning` or `cache_write`, from a custom model's additional token pricing); `version` names
    which price this is, so an activity row can say what it was costed with. The cost itself is
    computed in `keyrail_common.cost`."""

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    additional: dict[str, float] = {}
    version: str = ""
    # On the whole price: a service tier's discount (the flex tier's 0.5), 1 for standard.
    factor: float = 1.0


class RouteRequest(msgspec.Struct, omit_defaults=True, gc=False):
    """Ingress → router (`keyrail.route`)."""

    request_id: str
    org_id: str
    project_id: str
    model: str
    body: bytes  # the client's JSON body, forwarded untouched to OpenAI-family upstreams
    received_ns: int  # wall clock when the ingress received the request
    min_config_seq: int  # the router waits until its projection has applied this sequence
    stream: bool = False
    stream_inbox: str = ""
    pinned_slug: str = ""
    tags: list[str] = []
    operation: Operation = Operation.CHAT
    dialect: Dialect = Dialect.OPENAI
    deadline_ns: int = 0  # wall clock; 0 (a version-1 ingress): the router's own request timeout
    config_id: str = ""  # the `x-keyrail-config` header: route through this gateway config
    v: int = MESSAGE_VERSION


class Target(msgspec.Struct, omit_defaults=True, gc=False):
    """One resolved place a request can go: integration + upstream model + how to call it."""

    integration_id: str
    provider: str
    provider_slug: str
    adapter: str  # the wire format; its worker pool has the same name
    model: str  # model id as the upstream knows it
    catalog_id: str  # e.g. "openai/gpt-4o-mini"
    base_url: str  # the custom host, else the registry's default for the provider
    credential_ref: str
    credential_version: int
    prices: Prices = Prices()
    timeout_s: float = 0.0  # this target's own limit per attempt; 0: a share of the deadline
    retry: RetryPolicy | None = None
    # Merged into the client's body for this target (a config's override_params, `:flex`'s tier).
    override_params: dict[str, Any] = {}
    # What the router falls back on after this target fails (the `fallback_on` of the config that
    # listed it); None: the failure vocabulary's default set.
    fallback_on: list[int | str] | None = None


class ProviderCall(msgspec.Struct, omit_defaults=True, gc=False):
    """Router → worker pool (`keyrail.provider.<pool>`)."""

    request_id: str
    org_id: str
    project_id: str
    attempt: int
    fallback_position: int
    target: Target
    body: bytes
    received_ns: int
    routed_ns: int
    deadline_ns: int  # the request's deadline (wall clock): streams end there
    attempt_deadline_ns: int  # this attempt's: the upstream call is abandoned there
    stream: bool = False
    stream_inbox: str = ""
    tags: list[str] = []
    operation: Operation = Operation.CHAT
    dialect: Dialect = Dialect.OPENAI
    reply_to: str = ""  # set on the router's fast path: answer here, not to the message's reply
    # The router's circuit breakers hold a record of this target: its success must reach them too
    # (activity.ActivityPublisher.record's `watched`), not only its failure.
    breaker_watch: bool = False
    config_id: str = ""  # the gateway config the request was routed by, for the activity row
    virtual_model: str = ""  # the virtual model alias the request named
    v: int = MESSAGE_VERSION


class Timings(msgspec.Struct, omit_defaults=True, gc=False):
    """Wall-clock nanoseconds at each hop; zero when a hop did not happen."""

    received_ns: int = 0
    routed_ns: int = 0
    upstream_sent_ns: int = 0
    first_byte_ns: int = 0
    done_ns: int = 0


class ProviderResult(msgspec.Struct, omit_defaults=True, gc=False):
    """Worker → router, and router → ingress for non-streaming requests.

    For a stream, the worker replies as soon as the first chunk went out (`streaming=True`) or when
    the upstream failed before any content, so the router can still fall back.
    """

    ok: bool
    http_status: int
    provider: str = ""
    provider_slug: str = ""
    model: str = ""
    attempts: int = 1
    cost_usd: Decimal | None = ZERO_COST  # None: unpriced (a price or the usage is unknown)
    price_version: str = ""
    body: bytes = b""
    error: ErrorInfo | None = None
    usage: Usage | None = None
    streaming: bool = False
    timings: Timings = msgspec.field(default_factory=Timings)
    config_id: str = ""  # the gateway config the request was routed by (`x-keyrail-config`)
    virtual_model: str = ""  # the virtual model alias the request named
    v: int = MESSAGE_VERSION


class StreamChunk(msgspec.Struct, tag="chunk", gc=False):
    """One SSE `data:` payload, already in OpenAI chunk shape."""

    seq: int
    data: bytes


class StreamEnd(msgspec.Struct, tag="end", omit_defaults=True, gc=False):
    """Last frame of a stream; `chunks` lets the ingress check it saw every frame."""

    chunks: int
    provider: str
    provider_slug: str
    model: str
    attempts: int
    cost_usd: Decimal | None = ZERO_COST
    price_version: str = ""
    usage: Usage | None = None
    error: ErrorInfo | None = None
    timings: Timings = msgspec.field(default_factory=Timings)


StreamFrame = StreamChunk | StreamEnd


class ActivityRow(msgspec.Struct, omit_defaults=True, gc=False):
    """One activity-log row: kind `attempt` (worker) or `request` (ingress)."""

    request_id: str
    kind: str
    attempt: int
    ts_ms: int
    org_id: str = ""
    project_id: str = ""
    api_key_id: str = ""
    provider: str = ""
    provider_slug: str = ""
    model: str = ""
    status: str = "ok"
    http_status: int = 200
    error_class: str = ""
    error_message: str = ""
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    overhead_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Exact USD (a decimal string on the bus); None: unpriced. An attempt the upstream did not
    # bill (it failed without reporting usage) costs a real 0.
    cost_usd: Decimal | None = ZERO_COST
    tags: list[str] = []
    fallback_position: int = 0
    stream: bool = False
    cache_write_tokens: int = 0
    usage_source: str = ""  # "reported" by the upstream, "missing" on an answer without it, "" no answer
    cost_status: str = "priced"  # keyrail_common.cost.CostStatus: "priced" or "unpriced"
    price_version: str = ""  # the Prices.version the cost was computed with
    credential_version: int = 0  # attempt rows: the integration's credential version the call used
    config_id: str = ""  # the gateway config that routed the request
    virtual_model: str = ""  # the virtual model alias the request named
    v: int = 1


class CircuitReport(msgspec.Struct):
    """One target's circuit breaker as the router holds it (`keyrail.router.breakers`). Times are
    Unix seconds, 0 when it never happened."""

    model: str
    state: Literal["closed", "open", "half_open"]
    failures: int  # the current run of failures that count
    last_failure_class: str
    last_failure_message: str
    last_failure_at: float
    opened_at: float
    next_probe_at: float


class CircuitReports(msgspec.Struct):
    provider_slug: str
    circuits: list[CircuitReport]
    replica: str = ""  # which router answered (host:pid): every replica holds the same breakers


class ActivityCursor(msgspec.Struct, array_like=True, frozen=True):
    """Where a page of the activity log ended: the last row's sort key (newest first)."""

    ts_ms: int
    request_id: str
    kind: str
    attempt: int


class ActivityQuery(msgspec.Struct, omit_defaults=True):
    """A page of the activity log, newest first, ordered by (ts, request_id, kind, attempt)."""

    org_id: str
    request_id: str = ""
    project_id: str = ""
    provider_slug: str = ""
    model: str = ""
    status: str = ""
    failure_class: str = ""
    tag: str = ""
    since_ms: int = 0  # rows at or after this time; 0: no bound
    until_ms: int = 0  # rows before this time; 0: no bound
    limit: int = 100
    after: ActivityCursor | None = None  # only rows after this one in the order
    # When set, only these projects' rows (what a project role may read); empty: no such limit.
    project_ids: list[str] = []


class CostGroupBy(enum.StrEnum):
    SLUG = "slug"
    MODEL = "model"
    PROJECT = "project"
    DAY = "day"
    TAG = "tag"


class CostQuery(msgspec.Struct, omit_defaults=True):
    """Cost per group over whole UTC days, from the daily rollups."""

    org_id: str
    group_by: CostGroupBy
    since_day: str  # ISO date, inclusive
    until_day: str = ""  # ISO date, exclusive; empty: through today
    project_ids: list[str] = []  # as ActivityQuery.project_ids


class KeyUsageQuery(msgspec.Struct):
    """When each of these API keys was last used: the newest request row of each (the activity
    log already holds it, so the hot path writes nothing for "last used")."""

    org_id: str
    api_key_ids: list[str]


class SqlQuery(msgspec.Struct):
    sql: str


class QueryResult(msgspec.Struct, omit_defaults=True):
    columns: list[str] = []
    rows: list[list[object]] = []
    error: str = ""
    unavailable: bool = False  # the error is ClickHouse's, not the question's (a 503, not a 400)


encode = msgspec.msgpack.Encoder().encode
route_request_decoder = msgspec.msgpack.Decoder(RouteRequest)
provider_call_decoder = msgspec.msgpack.Decoder(ProviderCall)
provider_result_decoder = msgspec.msgpack.Decoder(ProviderResult)
stream_frame_decoder = msgspec.msgpack.Decoder(StreamFrame)
activity_decoder = msgspec.msgpack.Decoder(ActivityRow)
