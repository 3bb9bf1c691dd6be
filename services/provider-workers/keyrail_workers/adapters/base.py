"""The adapter interface: what every wire format provides, as pure functions over bytes.

An adapter builds the upstream request from the call and the credential, parses a response
into the client's dialect with normalised usage, translates a stream event by event, and
classifies an error response into the failure vocabulary. It does no I/O: the runner does the
HTTP, the relay publishes frames, and so every adapter is tested from fixtures alone.

Building and parsing may fail too, with an `UpstreamError` instead of their result: a call the
integration's configuration cannot express is refused before any HTTP, and a 2xx body that
reports a failed generation is a failure, not an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation, Quirks

Credential = Mapping[str, Any]  # the integration's credential fields, as stored in Vault


class AdapterCall(msgspec.Struct, frozen=True):
    """One attempt as an adapter sees it: no ids, no timing, no transport."""

    operation: Operation
    dialect: Dialect
    model: str  # as the upstream knows it
    body: bytes  # the client's JSON body
    stream: bool
    base_url: str  # the custom host, else the provider's default
    quirks: Quirks = Quirks()
    custom_headers: Mapping[str, str] = {}
    access_token: str = ""  # a short-lived token the runner exchanged the credential for (Vertex's OAuth2)


class UpstreamRequest(msgspec.Struct):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    client_wants_usage: bool = False  # false: usage was asked for by us, not forwarded to the client
    # What this request addressed, as the integration's credentials chose it (Azure: the resource,
    # the deployment and the model slug mapped to it). `classify_error` sees only the response, so
    # the runner adds this to a MODEL_ACCESS failure: "not found" then says what was not found.
    not_found_hint: str = ""


class ParsedResponse(msgspec.Struct):
    body: bytes  # in the client's dialect
    usage: Usage | None
    error: UpstreamError | None = None  # a 200 that is a failure (a blocked prompt): no body for the client


class UpstreamError(msgspec.Struct):
    """What the upstream said, classified; the runner adds the slug and scrubs secrets."""

    failure_class: FailureClass
    message: str
    upstream_status: int = 0
    provider_code: str = ""
    retry_after_s: float = 0.0
    param: str | None = None  # the request field a refusal before any HTTP call is about


class UntranslatableRequest(Exception):
    """Raised inside an adapter's translation: the call cannot be said in the upstream's wire format.
    The adapter's `build_request` returns it as the UpstreamError of a refusal.

    CALLER_ERROR when the request itself is malformed (no target would take it), UNSUPPORTED when
    only this format lacks the feature (another target may serve it). Messages name fields, never values.
    """

    def __init__(
        self, message: str, param: str | None = None, failure_class: FailureClass = FailureClass.CALLER_ERROR
    ) -> None:
        super().__init__(message)
        self.param = param
        self.failure_class = failure_class


class StreamStep(msgspec.Struct):
    """The translation of one upstream event."""

    frames: list[bytes] = []  # `data:` payloads for the client, in its dialect
    content: bool = False  # content (text, tool call) arrived: the stream's commit point
    error: UpstreamError | None = None  # an in-band upstream error: the stream ends here
    done: bool = False  # the upstream's terminal event


class StreamTranslator(Protocol):
    usage: Usage | None

    def feed(self, event: str, data: bytes) -> StreamStep:
        """One SSE event (its `event:` name, "" when none, and its data)."""
        ...

    def finish(self) -> UpstreamError | None:
        """The upstream body ended: a failure when the terminal event never came."""
        ...


class Adapter(Protocol):
    name: str
    dialects: frozenset[Dialect]  # client dialects it answers in
    operations: frozenset[Operation]

    def build_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
        """The upstream request, or why this call cannot be sent as the integration is configured
        (e.g. no Azure deployment mapped for the model): then no HTTP request is made."""
        ...

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        """The client's answer; its `error` is set when a 2xx body reports a failure (a blocked
        prompt, Cohere's finish_reason ERROR), with the usage that was still spent."""
        ...

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> StreamTranslator: ...

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError: ...


class AccessToken(msgspec.Struct, frozen=True):
    value: str
    expires_in_s: float  # lifetime from when the token endpoint answered


@runtime_checkable
class TokenExchanger(Protocol):
    """An adapter whose upstream takes a short-lived token obtained with the credential, not the
    credential itself (Vertex: a signed JWT exchanged for an OAuth2 access token). The runner does
    the exchange's HTTP, caches the token per credential version and puts it in `AdapterCall`;
    on a 401 from the upstream it drops the token and exchanges once more."""

    def token_request(self, credential: Credential, now_s: float) -> UpstreamRequest | UpstreamError:
        """The token endpoint's request (`now_s` is wall-clock time: JWTs carry it)."""
        ...

    def parse_token_response(self, status: int, body: bytes) -> AccessToken | UpstreamError: ...
