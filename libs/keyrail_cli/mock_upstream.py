"""Local upstream with fault injection: OpenAI's wire format here, the others in mock_formats/.

Operators point a Keyrail provider at it to rehearse fallback chains, integration tests use it as a
deterministic provider, and benchmarks use it as an upstream that must never be the bottleneck: no
access log, no per-request logging, and JSON built with msgspec from precomputed fragments.

Faults come from the run defaults (CLI flags), overridden per request by the ``x-mock-fault`` header
(``status=503;delay_ms=20``) and then by a ``"mock": {...}`` body field (openai SDK ``extra_body``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import hmac
import itertools
import re
import secrets
import ssl
import time
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

DEFAULT_REPLY = "Hello from the Keyrail mock upstream"
MODEL_IDS = ("gpt-4o-mini", "gpt-4o", "gpt-5-mini")
DROP_MODES = ("", "before", "midstream")
INBAND_ERROR_MODES = ("", "before", "after")


class FaultPlan(msgspec.Struct, forbid_unknown_fields=True):
    """What to do to one request. Unknown keys are rejected so a typo in a rehearsal is not a no-op."""

    status: int = 0  # 0 = no fault, else answer this HTTP status with an OpenAI-shaped error
    delay_ms: int = 0  # sleep before answering (before response headers)
    drop: str = ""  # "before": close without a response; "midstream": two stream events, then close
    chunk_delay_ms: int = 0  # sleep between stream events
    reply: str = ""  # override the reply text
    retry_after: int = 0  # with an error status: send `Retry-After: <seconds>`
    blocked: str = ""  # formats with a prompt filter (Gemini): answer "prompt blocked" with this reason
    # Formats with in-band stream errors (mock_formats/): an error event inside the 200 stream,
    # "before" any content or "after" the first content delta.
    inband_error: str = ""
    # OpenAI-format chat: with `times` > 0, `status` hits only the first `times` requests that carry
    # the same `key`, later ones are answered (an upstream that recovers, for retry rehearsals).
    times: int = 0
    key: str = ""
    no_usage: bool = False  # answer without `usage`, as some OpenAI-compatible hosts do

    def __post_init__(self) -> None:
        if self.status != 0 and not 400 <= self.status <= 599:
            raise ValueError("status must be 0 or an HTTP error status (400-599)")
        if self.delay_ms < 0 or self.chunk_delay_ms < 0 or self.retry_after < 0 or self.times < 0:
            raise ValueError("delays must be >= 0")
        if self.drop not in DROP_MODES:
            raise ValueError("drop must be one of '', 'before', 'midstream'")
        if self.inband_error not in INBAND_ERROR_MODES:
            raise ValueError("inband_error must be one of '', 'before', 'after'")


# Only the request fields the mock reads; msgspec skips everything else without building objects.
class _Part(msgspec.Struct):
    text: Any = None


class _Message(msgspec.Struct):
    content: str | list[_Part] | None = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = False


class _ChatRequest(msgspec.Struct):
    messages: list[_Message]
    model: str = "gpt-4o-mini"
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    mock: dict[str, Any] | None = None


class _EmbeddingsRequest(msgspec.Struct):
    input: str | list[Any]
    model: str = "text-embedding-3-small"
    mock: dict[str, Any] | None = None


def mock_embedding(text: str, dimensions: int = 8) -> list[float]:
    """A deterministic unit-free vector per text: equal inputs give equal embeddings."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255 - 0.5, 6) for byte in digest[:dimensions]]


_encode = msgspec.json.Encoder().encode
_decode_chat = msgspec.json.Decoder(_ChatRequest).decode
_decode_embeddings = msgspec.json.Decoder(_EmbeddingsRequest).decode
_FAULT_SPLIT = re.compile(r"[;,]")
_WORD = re.compile(r"\s*\S+")  # a word with its leading whitespace, so pieces concatenate to the reply
_JSON = "application/json"

_MODELS_BODY = _encode(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "keyrail-mock"} for m in MODEL_IDS
        ],
    }
)
_ROLE_DELTA = b'{"role":"assistant","content":"","refusal":null}'
_CHOICE_TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'
_STOP_EVENT_TAIL = b'{},"logprobs":null,"finish_reason":"stop"}]}\n\n'
_DONE = b"data: [DONE]\n\n"


def _error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return _encode({"error": {"message": message, "type": type_, "param": param, "code": code}})


def _error(status: int, body: bytes, request_id: str, retry_after: int = 0) -> web.Response:
    headers = {"Content-Type": _JSON, "x-request-id": request_id}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return web.Response(status=status, body=body, headers=headers)


@functools.cache
def _fault_body(status: int) -> bytes:
    """OpenAI's error taxonomy: 429 is a rate limit, 5xx a server error, other 4xx a bad request."""
    note = f"(status {status} injected by the Keyrail mock upstream)"
    if status == 429:
        return _error_body(f"Rate limit reached for requests {note}", "requests", "rate_limit_exceeded")
    if status >= 500:
        return _error_body(
            f"The server had an error while processing your request {note}", "server_error", "server_error"
        )
    codes = {401: "invalid_api_key", 403: "unsupported_country_region_territory", 404: "model_not_found"}
    return _error_body(
        f"Invalid request {note}", "invalid_request_error", codes.get(status, "invalid_request")
    )


@functools.lru_cache(maxsize=256)
def _reply_deltas(reply: str) -> tuple[tuple[bytes, ...], int]:
    """Encoded ``delta`` objects, one per word, and the completion token count; cached per reply text."""
    pieces = _WORD.findall(reply)
    return tuple(_encode({"content": piece}) for piece in pieces), len(pieces)


def _prompt_tokens(messages: list[_Message]) -> int:
    count = 0
    for message in messages:
        if isinstance(message.content, str):
            count += len(message.content.split())
        elif message.content is not None:
            count += sum(len(part.text.split()) for part in message.content if isinstance(part.text, str))
    return count


_PROMPT_DETAILS = {"cached_tokens": 0, "audio_tokens": 0}
_COMPLETION_DETAILS = dict.fromkeys(
    ("reasoning_tokens", "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"), 0
)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": _PROMPT_DETAILS,
        "completion_tokens_details": _COMPLETION_DETAILS,
    }


def _resolve_plan(defaults: FaultPlan, header: str | None, body_mock: dict[str, Any] | None) -> FaultPlan:
    """Defaults, then header pairs, then body ``mock``; only the keys given override. Raises ValueError."""
    if not header and not body_mock:
        return defaults  # the benchmark fast path: no conversion at all
    merged: dict[str, Any] = msgspec.structs.asdict(defaults)
    for pair in _FAULT_SPLIT.split(header or ""):
        if pair.strip():
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"x-mock-fault entry {pair.strip()!r} is not key=value")
            merged[key.strip()] = value.strip()
    merged.update(body_mock or {})
    try:  # strict=False so header strings like "503" become ints
        return msgspec.convert(merged, FaultPlan, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from exc


def close_connection(request: web.Request) -> web.Response:
    """Close the TCP connection. aiohttp's later write of the returned response hits the closed
    transport and is swallowed as a client disconnect, so nothing reaches the client and nothing is logged."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()


async def send_events(
    request: web.Request, plan: FaultPlan, events: list[bytes], request_id: str
) -> web.StreamResponse:
    """An SSE body, one write per event (so chunk timing is real on the wire), with the plan's
    chunk delay; a ``midstream`` drop sends two events, then closes without the rest."""
    if plan.drop == "midstream":
        events = events[:2]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": request_id}
    )
    try:
        await response.prepare(request)
        for index, event in enumerate(events):
            if index and plan.chunk_delay_ms:
                await asyncio.sleep(plan.chunk_delay_ms / 1000)
            await response.write(event)
    except ConnectionResetError:
        return response  # client went away; not worth a log line
    if plan.drop == "midstream":
        close_connection(request)  # no terminating event: an incomplete body
    return response


async def _stream(
    request: web.Request, plan: FaultPlan, chat: _ChatRequest, reply: str, chat_id: str, preamble: bytes
) -> web.StreamResponse:
    include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
    head: dict[str, Any] = {
        "id": chat_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": chat.model,
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    }
    if include_usage:
        head["usage"] = None
    # Every chunk shares this prefix; only the delta and finish_reason differ, so encode it once.
    prefix = b"data: " + _encode(head)[:-1] + b',"choices":[{"index":0,"delta":'
    deltas, completion_tokens = _reply_deltas(reply)
    events = [preamble] if preamble else []
    events.append(prefix + _ROLE_DELTA + _CHOICE_TAIL)
    events.extend(prefix + delta + _CHOICE_TAIL for delta in deltas)
    events.append(prefix + _STOP_EVENT_TAIL)
    if include_usage:
        usage_chunk = {
            **head,
            "choices": [],
            "usage": _usage(_prompt_tokens(chat.messages), completion_tokens),
        }
        events.append(b"data: " + _encode(usage_chunk) + b"\n\n")
    events.append(_DONE)
    return await send_events(request, plan, events, chat_id)


class MockContext(msgspec.Struct, frozen=True):
    """What every wire format's mock routes share: the run's faults, key and reply text."""

    defaults: FaultPlan
    require_key: str | None
    reply: str
    vertex_public_key: str = ""  # PEM: the Vertex token endpoint verifies assertions with it
    faults_by_key: dict[str, int] = msgspec.field(default_factory=dict)  # `times` faults served

    def plan(self, header: str | None, body_mock: dict[str, Any] | None) -> FaultPlan:
        """This request's faults (raises ValueError on a bad one)."""
        return _resolve_plan(self.defaults, header, body_mock)

    def status_due(self, plan: FaultPlan) -> bool:
        """Whether this request gets the plan's error status (counting `times` faults per key)."""
        if not plan.status:
            return False
        if not plan.times:
            return True
        served = self.faults_by_key.get(plan.key, 0)
        self.faults_by_key[plan.key] = served + 1
        return served < plan.times


def _bad_request(message: str, code: str | None, param: str | None, request_id: str) -> web.Response:
    return _error(400, _error_body(message, "invalid_request_error", code, param), request_id)


async def chat_answer(
    request: web.Request, mock: MockContext, body: bytes, chat_id: str, model: str = "", preamble: bytes = b""
) -> web.StreamResponse:
    """OpenAI's answer to a chat-completions body, faults applied: the OpenAI routes' and every
    other format that speaks OpenAI's body (Azure). `model` replaces the body's in the answer (Azure
    answers with the deployment's model); `preamble` is an SSE event sent before the first chunk."""
    try:
        chat = _decode_chat(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _bad_request(f"Invalid request body: {exc}", None, None, chat_id)
    if not chat.messages:
        message = "Invalid 'messages': empty array. Expected an array with minimum length 1."
        return _bad_request(message, "empty_array", "messages", chat_id)
    try:
        plan = mock.plan(request.headers.get("x-mock-fault"), chat.mock)
    except ValueError as exc:
        return _bad_request(f"Invalid mock fault: {exc}", "invalid_mock_fault", "mock", chat_id)

    if plan.delay_ms:
        await asyncio.sleep(plan.delay_ms / 1000)
    if plan.drop == "before":
        return close_connection(request)
    if mock.status_due(plan):
        return _error(plan.status, _fault_body(plan.status), chat_id, plan.retry_after)
    if model:
        chat.model = model
    text = plan.reply or mock.reply
    if chat.stream:
        return await _stream(request, plan, chat, text, chat_id, preamble)

    prompt_tokens = _prompt_tokens(chat.messages)
    answer = {
        "id": chat_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(prompt_tokens, _reply_deltas(text)[1]),
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    }
    if plan.no_usage:
        del answer["usage"]
    return web.Response(body=_encode(answer), headers={"Content-Type": _JSON, "x-request-id": chat_id})


@web.middleware
async def _client_certificate_required(request: web.Request, handler: Any) -> web.StreamResponse:
    """With --tls-client-ca (only then is this installed): no client certificate, no answer."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if request.path != "/healthz" and (ssl_object is None or not ssl_object.getpeercert()):
        body = _error_body("This mock requires a client certificate (mutual TLS).", "permission_error", None)
        return _error(403, body, "req_mock_no_client_certificate")
    response: web.StreamResponse = await handler(request)
    return response


async def embeddings_answer(
    request: web.Request, mock: MockContext, body: bytes, request_id: str, model: str = ""
) -> web.Response:
    """OpenAI's answer to an embeddings body, faults applied (the OpenAI routes' and Azure's): one
    `mock_embedding` per input, a token per word. `model` replaces the body's in the answer."""
    try:
        embed = _decode_embeddings(body)
        plan = mock.plan(request.headers.get("x-mock-fault"), embed.mock)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        return _bad_request(f"Invalid request body: {exc}", None, None, request_id)
    if plan.delay_ms:
        await asyncio.sleep(plan.delay_ms / 1000)
    if plan.status:
        return _error(plan.status, _fault_body(plan.status), request_id, plan.retry_after)
    inputs = [embed.input] if isinstance(embed.input, str) else embed.input
    tokens = sum(len(str(text).split()) for text in inputs)
    answer = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": mock_embedding(str(text))}
            for i, text in enumerate(inputs)
        ],
        "model": model or embed.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return web.Response(body=_encode(answer), headers={"Content-Type": _JSON, "x-request-id": request_id})


def build_app(
    defaults: FaultPlan,
    require_key: str | None = None,
    reply: str = DEFAULT_REPLY,
    vertex_public_key: str = "",
    client_certificates: bool = False,
) -> web.Application:
    mock = MockContext(defaults, require_key, reply, vertex_public_key)
    counter = itertools.count(1)
    boot = secrets.token_hex(3)  # keeps ids unique across several mock processes
    expected_auth = f"Bearer {require_key}".encode() if require_key is not None else None
    missing_key = _error_body(
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        "invalid_request_error",
        "invalid_api_key",
    )
    # Never echo the presented key, unlike OpenAI's masked "Incorrect API key provided: sk-...abcd".
    wrong_key = _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    def auth_error(request: web.Request, request_id: str) -> web.Response | None:
        if expected_auth is None:
            return None
        presented = request.headers.get("Authorization")
        if not presented:
            return _error(401, missing_key, request_id)
        if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected_auth):
            return _error(401, wrong_key, request_id)
        return None

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        chat_id = f"chatcmpl-mock-{boot}-{next(counter)}"
        if (denied := auth_error(request, chat_id)) is not None:
            return denied
        return await chat_answer(request, mock, await request.read(), chat_id)

    async def embeddings(request: web.Request) -> web.Response:
        request_id = f"req_mock_{boot}_{next(counter)}"
        if (denied := auth_error(request, request_id)) is not None:
            return denied
        return await embeddings_answer(request, mock, await request.read(), request_id)

    async def list_models(request: web.Request) -> web.Response:
        request_id = f"req_mock_{boot}_{next(counter)}"
        if (denied := auth_error(request, request_id)) is not None:
            return denied
        return web.Response(body=_MODELS_BODY, headers={"Content-Type": _JSON, "x-request-id": request_id})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # Large client_max_size: long-context benchmark prompts must not hit aiohttp's 1 MiB default.
    app = web.Application(
        client_max_size=64 * 1024 * 1024,
        middlewares=[_client_certificate_required] if client_certificates else [],
    )
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/embeddings", embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/models", list_models)
    app.router.add_get("/healthz", healthz)
    from keyrail_cli.mock_formats import add_all_routes

    add_all_routes(app, mock)
    return app


async def serve(
    host: str,
    port: int,
    defaults: FaultPlan,
    require_key: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    vertex_public_key: str = "",
    client_certificates: bool = False,
) -> None:
    app = build_app(
        defaults, require_key, vertex_public_key=vertex_public_key, client_certificates=client_certificates
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=1024, ssl_context=ssl_context).start()
        bound_port = runner.addresses[0][1] if runner.addresses else port  # resolves --port 0
        scheme = "https" if ssl_context is not None else "http"
        print(f"mock-upstream listening on {scheme}://{host}:{bound_port}", flush=True)
        await asyncio.Event().wait()  # run until cancelled (Ctrl-C / SIGTERM)
    finally:
        await runner.cleanup()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9900)
    parser.add_argument(
        "--status", type=int, default=0, help="answer every chat request with this HTTP status"
    )
    parser.add_argument("--delay-ms", type=int, default=0, help="delay before response headers")
    parser.add_argument("--drop", choices=["before", "midstream"], default="", help="drop the connection")
    parser.add_argument("--chunk-delay-ms", type=int, default=0, help="delay between stream events")
    parser.add_argument("--reply", default="", help="reply text (default: a fixed greeting)")
    parser.add_argument("--require-key", default=None, help="require 'Authorization: Bearer <key>'")
    parser.add_argument(
        "--tls-cert", default=None, help="serve HTTPS with this PEM certificate (chain); needs --tls-key"
    )
    parser.add_argument("--tls-key", default=None, help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--tls-client-ca",
        default=None,
        help="with --tls-cert: ask for a client certificate issued by this PEM CA (mutual TLS); a "
        "request without one is answered 403 (except /healthz), one from another CA fails the handshake",
    )
    parser.add_argument(
        "--vertex-public-key",
        default=None,
        help="PEM public key of the service account whose signed JWTs the Vertex token endpoint "
        "(POST /token) accepts; without it the signature is not checked",
    )


def run(args: argparse.Namespace) -> None:
    defaults = FaultPlan(
        status=args.status,
        delay_ms=args.delay_ms,
        drop=args.drop or "",
        chunk_delay_ms=args.chunk_delay_ms,
        reply=getattr(args, "reply", "") or "",
    )
    ssl_context = None
    tls_cert, tls_key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise SystemExit("HTTPS needs both --tls-cert and --tls-key")
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(tls_cert, tls_key)
        client_ca = getattr(args, "tls_client_ca", None)
        if client_ca:
            ssl_context.load_verify_locations(client_ca)
            ssl_context.verify_mode = ssl.CERT_OPTIONAL  # so /healthz answers without one
    elif getattr(args, "tls_client_ca", None):
        raise SystemExit("--tls-client-ca needs --tls-cert and --tls-key")
    public_key_file = getattr(args, "vertex_public_key", None)
    try:
        public_key = Path(public_key_file).read_text() if public_key_file else ""
    except OSError as exc:
        raise SystemExit(f"cannot read --vertex-public-key: {exc.strerror}") from None
    coro = serve(
        args.host,
        args.port,
        defaults,
        args.require_key,
        ssl_context,
        public_key,
        client_certificates=bool(getattr(args, "tls_client_ca", None)),
    )
    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(coro)
        else:
            uvloop.run(coro)
    except KeyboardInterrupt:
        pass
