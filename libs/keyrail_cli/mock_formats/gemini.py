"""Google AI Studio's Gemini API for the mock upstream (provider reference §5).

`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` answer with
the reply text, or with a function call when the request declares tools (and the last turn is
not already a tool result), `usageMetadata` always (the mock "thinks" a fixed THOUGHT_TOKENS).
The key is read from `x-goog-api-key` only: a `?key=` in the URL is refused outright, since a
gateway must never put a credential where access logs keep it. Like Gemini 3, a replayed
function call without its `thoughtSignature` is a 400. Faults as for OpenAI (status, delay, drop,
chunk delay, reply), errors in Google's `google.rpc.Status` shape, plus `blocked=<reason>`: a
200 without candidates whose `promptFeedback.blockReason` is that reason.

`:embedContent` and `:batchEmbedContents` answer one `mock_embedding` per text (each request must
name the URL's model, as Gemini checks), with no token counts, as AI Studio answers.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import itertools
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from keyrail_cli.mock_upstream import mock_embedding

if TYPE_CHECKING:
    from keyrail_cli.mock_upstream import FaultPlan, MockContext

THOUGHT_TOKENS = 4
SIGNATURE = "bW9jay10aG91Z2h0LXNpZ25hdHVyZQ=="  # base64 of "mock-thought-signature"
_WORD = re.compile(r"\s*\S+")
_JSON = "application/json"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_PLACEHOLDERS: dict[str, Any] = {
    "string": "mock",
    "integer": 1,
    "number": 1,
    "boolean": True,
    "array": [],
    "object": {},
}


class _Part(msgspec.Struct, rename="camel"):
    text: Any = None
    function_call: dict[str, Any] | None = None
    function_response: dict[str, Any] | None = None
    thought_signature: str | None = None


class _Content(msgspec.Struct):
    role: str = "user"
    parts: list[_Part] = []


class _Declaration(msgspec.Struct, rename="camel"):
    name: str
    parameters_json_schema: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct, rename="camel"):
    function_declarations: list[_Declaration] = []


class _CallingConfig(msgspec.Struct, rename="camel"):
    mode: str = "AUTO"
    allowed_function_names: list[str] = []


class _ToolConfig(msgspec.Struct, rename="camel"):
    function_calling_config: _CallingConfig | None = None


class _Request(msgspec.Struct, rename="camel"):
    contents: list[_Content] = []
    system_instruction: _Content | None = None
    tools: list[_Tool] = []
    tool_config: _ToolConfig | None = None
    mock: dict[str, Any] | None = None


class _EmbedRequest(msgspec.Struct, rename="camel"):
    model: str = ""
    content: _Content | None = None
    output_dimensionality: int | None = None
    mock: dict[str, Any] | None = None


class _BatchEmbedRequest(msgspec.Struct):
    requests: list[_EmbedRequest]
    mock: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(_Request).decode
_decode_embed = msgspec.json.Decoder(_EmbedRequest).decode
_decode_batch_embed = msgspec.json.Decoder(_BatchEmbedRequest).decode
_encode = msgspec.json.Encoder().encode


def _status_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    status = _STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return _encode({"error": error})


def _error(code: int, body: bytes) -> web.Response:
    return web.Response(status=code, body=body, headers={"Content-Type": _JSON})


@functools.cache
def fault_body(code: int, retry_after: int) -> bytes:
    note = f"(status {code} injected by the Keyrail mock upstream)"
    if code == 429:
        retry = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}]
        return _status_body(429, f"You exceeded your current quota {note}", retry if retry_after else None)
    if code == 503:
        return _status_body(503, f"The model is overloaded. Please try again later. {note}")
    return _status_body(code, f"Request failed {note}")


_NO_KEY = _status_body(
    403,
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
)
# Never echo the presented key.
_WRONG_KEY = _status_body(
    400,
    "API key not valid. Please pass a valid API key.",
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
    ],
)
_KEY_IN_URL = _status_body(400, "The Keyrail mock refuses API keys in the URL: send x-goog-api-key.")
_UNSIGNED_CALL = _status_body(400, "Function call is missing a thought_signature in functionCall parts.")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _prompt_tokens(request: _Request) -> int:
    contents = [*request.contents, *([request.system_instruction] if request.system_instruction else [])]
    return sum(len(p.text.split()) for c in contents for p in c.parts if isinstance(p.text, str))


def _function_call(request: _Request) -> dict[str, Any] | None:
    """The call the mock makes: to the first allowed declared function, unless tools are off or
    the last turn already answers a call."""
    declarations = [d for tool in request.tools for d in tool.function_declarations]
    config = request.tool_config.function_calling_config if request.tool_config else None
    if config and config.allowed_function_names:
        declarations = [d for d in declarations if d.name in config.allowed_function_names]
    last = request.contents[-1] if request.contents else None
    answered = last is not None and any(p.function_response is not None for p in last.parts)
    if not declarations or answered or (config is not None and config.mode == "NONE"):
        return None
    declaration = declarations[0]
    schema = declaration.parameters_json_schema or declaration.parameters or {}
    properties = schema.get("properties") or {}
    args = {}
    for name in schema.get("required") or ():
        spec = properties.get(name) or {}
        args[name] = (
            spec["enum"][0] if spec.get("enum") else _PLACEHOLDERS.get(spec.get("type", "string"), "mock")
        )
    return {"name": declaration.name, "args": args}


def _usage(prompt: int, candidates: int, final: bool) -> dict[str, Any]:
    if not final:
        return {"promptTokenCount": prompt, "totalTokenCount": prompt}
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": THOUGHT_TOKENS,
        "totalTokenCount": prompt + candidates + THOUGHT_TOKENS,
    }


def _response(
    parts: list[dict[str, Any]], usage: dict[str, Any], model: str, response_id: str, finish: bool
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def _blocked(reason: str, prompt: int, model: str, response_id: str) -> dict[str, Any]:
    return {
        "promptFeedback": {"blockReason": reason},
        "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
        "modelVersion": model,
        "responseId": response_id,
    }


def _answers(request: _Request, reply: str, model: str, response_id: str) -> list[dict[str, Any]]:
    """The answer as stream chunks (the last one carries finishReason and the full usage)."""
    prompt = _prompt_tokens(request)
    call = _function_call(request)
    if call is not None:
        part = {"functionCall": call, "thoughtSignature": SIGNATURE}
        return [_response([part], _usage(prompt, 1 + len(call["args"]), True), model, response_id, True)]
    pieces = _words(reply) or [reply]
    last = len(pieces) - 1
    return [
        _response([{"text": piece}], _usage(prompt, len(pieces), i == last), model, response_id, i == last)
        for i, piece in enumerate(pieces)
    ]


def _whole(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streaming answer: every chunk's parts in one candidate, the last chunk's rest."""
    answer = chunks[-1]
    if "candidates" not in answer:  # a blocked prompt
        return answer
    text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"] if "text" in p)
    if text:
        answer["candidates"][0]["content"]["parts"] = [{"text": text}]
    return answer


async def _stream(request: web.Request, plan: FaultPlan, events: list[dict[str, Any]]) -> web.StreamResponse:
    if plan.drop == "midstream":
        events = events[:1]  # never the chunk with finishReason
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        for index, event in enumerate(events):
            if index and plan.chunk_delay_ms:
                await asyncio.sleep(plan.chunk_delay_ms / 1000)
            await response.write(b"data: " + _encode(event) + b"\r\n\r\n")  # CRLF, as Gemini sends
    except ConnectionResetError:
        return response
    if plan.drop == "midstream" and request.transport is not None:
        request.transport.close()
    return response


GenerateAnswer = Callable[[web.Request, bool], Awaitable[web.StreamResponse]]


def generate_answer(mock: MockContext) -> GenerateAnswer:
    """The answer to an (authorised) generateContent request, streamed or whole: AI Studio's and
    Vertex's (same bodies, §6.1)."""
    counter = itertools.count(1)
    boot = secrets.token_hex(3)

    async def generate(request: web.Request, stream: bool) -> web.StreamResponse:
        try:
            body = _decode(await request.read())
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, _status_body(400, f"Invalid JSON payload received. {exc}"))
        if not body.contents:
            return _error(
                400, _status_body(400, "* GenerateContentRequest.contents: contents is not specified")
            )
        if any(
            p.function_call is not None and not p.thought_signature for c in body.contents for p in c.parts
        ):
            return _error(400, _UNSIGNED_CALL)
        try:
            plan = mock.plan(request.headers.get("x-mock-fault"), body.mock)
        except ValueError as exc:
            return _error(400, _status_body(400, f"Invalid mock fault: {exc}"))
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if plan.drop == "before":
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        if plan.status:
            return _error(plan.status, fault_body(plan.status, plan.retry_after))
        model = request.match_info["model"]
        response_id = f"mock-{boot}-{next(counter)}"
        if plan.blocked:
            chunks = [_blocked(plan.blocked, _prompt_tokens(body), model, response_id)]
        else:
            chunks = _answers(body, plan.reply or mock.reply, model, response_id)
        if stream:
            if request.query.get("alt") != "sse":  # without alt=sse Gemini streams one JSON array
                return _error(400, _status_body(400, "The Keyrail mock streams only with alt=sse."))
            return await _stream(request, plan, chunks)
        return web.Response(body=_encode(_whole(chunks)), headers={"Content-Type": _JSON})

    return generate


def add_routes(app: web.Application, mock: MockContext) -> None:
    expected = mock.require_key.encode() if mock.require_key is not None else None
    generate = generate_answer(mock)

    def denied(request: web.Request) -> web.Response | None:
        if "key" in request.query:
            return _error(400, _KEY_IN_URL)
        if expected is None:
            return None
        presented = request.headers.get("x-goog-api-key")
        if not presented:
            return _error(403, _NO_KEY)
        if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected):
            return _error(400, _WRONG_KEY)
        return None

    async def generate_content(request: web.Request) -> web.StreamResponse:
        return denied(request) or await generate(request, False)

    async def stream_generate_content(request: web.Request) -> web.StreamResponse:
        return denied(request) or await generate(request, True)

    async def embed(request: web.Request, batch: bool) -> web.Response:
        if (refusal := denied(request)) is not None:
            return refusal
        url_model = f"models/{request.match_info['model']}"
        try:
            raw = await request.read()
            if batch:
                whole = _decode_batch_embed(raw)
                requests, body_mock = whole.requests, whole.mock
            else:
                one = _decode_embed(raw)
                requests, body_mock = [one], one.mock
            plan = mock.plan(request.headers.get("x-mock-fault"), body_mock)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _error(400, _status_body(400, f"Invalid JSON payload received. {exc}"))
        for index, item in enumerate(requests):
            if item.model != url_model:  # Gemini checks each request names the URL's model
                where = f"requests[{index}].model" if batch else "model"
                return _error(400, _status_body(400, f"* {where}: must be '{url_model}', not '{item.model}'"))
            if item.content is None or not item.content.parts:
                return _error(400, _status_body(400, "* content: content is not specified"))
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if plan.status:
            return _error(plan.status, fault_body(plan.status, plan.retry_after))
        vectors = [
            {
                "values": mock_embedding(
                    " ".join(str(p.text) for p in item.content.parts if p.text is not None)
                )
            }
            for item in requests
            if item.content is not None
        ]
        answer = {"embeddings": vectors} if batch else {"embedding": vectors[0]}
        return web.Response(body=_encode(answer), headers={"Content-Type": _JSON})

    async def embed_content(request: web.Request) -> web.Response:
        return await embed(request, batch=False)

    async def batch_embed_contents(request: web.Request) -> web.Response:
        return await embed(request, batch=True)

    app.router.add_post("/v1beta/models/{model}:embedContent", embed_content)
    app.router.add_post("/v1beta/models/{model}:batchEmbedContents", batch_embed_contents)
    app.router.add_post("/v1beta/models/{model}:generateContent", generate_content)
    app.router.add_post("/v1beta/models/{model}:streamGenerateContent", stream_generate_content)
