"""The mock upstream's Anthropic Messages API: `POST /v1/messages`, plain and streaming (§4).

It answers as Anthropic does: a `Message` (or the named-event stream) with usage, a `tool_use`
block when the request has tools (text when its last turn answers a tool, or tool_choice is
`none`), Anthropic-shaped errors, `x-api-key` checked against `--require-key`, and a required
`anthropic-version` header. Faults are the shared ones (status, delay_ms, drop, chunk_delay_ms,
reply, retry_after) plus `inband_error`: `event: error` with `overloaded_error` inside the 200
stream, "before" any content or "after" the first text delta.

Usage: every word of the system prompt and of the text blocks is an input token; words of blocks
marked `cache_control` are reported as cache reads (a warm cache), so a client sees the cached
token accounting; every word of the reply, and every fragment of a tool call's input, is an
output token.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from keyrail_cli.mock_upstream import _WORD, FaultPlan, close_connection

if TYPE_CHECKING:
    from keyrail_cli.mock_upstream import MockContext

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_SAMPLE_VALUES: dict[str, Any] = {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
_JSON_FRAGMENT = 8  # characters of tool input per input_json_delta
_JSON = "application/json"


class _Block(msgspec.Struct):
    type: str = "text"
    text: Any = None
    cache_control: Any = None


class _Message(msgspec.Struct):
    role: str
    content: str | list[_Block]


class _Tool(msgspec.Struct):
    name: str
    input_schema: dict[str, Any] = {}


class _ToolChoice(msgspec.Struct):
    type: str = "auto"
    name: str = ""


class _Request(msgspec.Struct):
    messages: list[_Message]
    max_tokens: int
    model: str = ""  # Claude on Vertex: in the URL
    system: str | list[_Block] | None = None
    stream: bool = False
    tools: list[_Tool] | None = None
    tool_choice: _ToolChoice | None = None
    mock: dict[str, Any] | None = None


_decode_request = msgspec.json.Decoder(_Request).decode
_encode = msgspec.json.Encoder().encode


def error_body(status: int, message: str, request_id: str) -> bytes:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return _encode({"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id})


def _error(status: int, message: str, request_id: str, retry_after: int = 0) -> web.Response:
    headers = {"Content-Type": _JSON, "request-id": request_id}
    if retry_after:
        headers["retry-after"] = str(retry_after)
    return web.Response(status=status, body=error_body(status, message, request_id), headers=headers)


def _words(blocks: str | list[_Block] | None) -> tuple[int, int]:
    """(uncached, cached) words of a system prompt or a message's content."""
    if isinstance(blocks, str):
        return len(blocks.split()), 0
    uncached = cached = 0
    for block in blocks or ():
        if isinstance(block.text, str):
            count = len(block.text.split())
            cached, uncached = (
                (cached + count, uncached) if block.cache_control else (cached, uncached + count)
            )
    return uncached, cached


def _tool_to_call(request: _Request) -> _Tool | None:
    """The tool this reply calls: none when tools are off or the last turn answers a tool."""
    choice = request.tool_choice or _ToolChoice()
    if not request.tools or choice.type == "none":
        return None
    last = request.messages[-1].content
    if isinstance(last, list) and any(block.type == "tool_result" for block in last):
        return None
    named = [tool for tool in request.tools if tool.name == choice.name] if choice.type == "tool" else []
    return (named or request.tools)[0]


def _tool_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for every required property: its first enum value, else a sample of its type."""
    properties = schema.get("properties") or {}
    values: dict[str, Any] = {}
    for name in schema.get("required") or ():
        spec = properties.get(name) or {}
        enum = spec.get("enum")
        values[name] = enum[0] if enum else _SAMPLE_VALUES.get(str(spec.get("type")), "mock")
    return values


class _Reply(msgspec.Struct):
    message_id: str
    model: str
    text: str
    tool: _Tool | None
    tool_id: str
    input_tokens: int
    cached_tokens: int

    def tool_json(self) -> str:
        return _encode(_tool_input(self.tool.input_schema)).decode() if self.tool else ""

    def fragments(self) -> list[str]:
        raw = self.tool_json()
        return [raw[i : i + _JSON_FRAGMENT] for i in range(0, len(raw), _JSON_FRAGMENT)]

    def usage(self, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cached_tokens,
            "output_tokens": output_tokens,
        }

    def output_tokens(self) -> int:
        return len(_WORD.findall(self.text)) + len(self.fragments())

    def stop_reason(self) -> str:
        return "tool_use" if self.tool else "end_turn"

    def message(self) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": self.text}]
        if self.tool:
            tool_input = msgspec.json.decode(self.tool_json())
            content.append(
                {"type": "tool_use", "id": self.tool_id, "name": self.tool.name, "input": tool_input}
            )
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason(),
            "stop_sequence": None,
            "usage": self.usage(self.output_tokens()),
        }


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _encode({"type": kind, **payload}) + b"\n\n"


_OVERLOADED = _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})


def _events(reply: _Reply, plan: FaultPlan) -> list[bytes]:
    skeleton = {**reply.message(), "content": [], "stop_reason": None, "usage": reply.usage(1)}
    events = [_event("message_start", {"message": skeleton}), _event("ping", {})]
    if plan.inband_error == "before":
        return [*events, _OVERLOADED]
    events.append(_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
    for position, piece in enumerate(_WORD.findall(reply.text)):
        events.append(
            _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        )
        if position == 0 and plan.inband_error == "after":
            return [*events, _OVERLOADED]
        if position == 0 and plan.drop == "midstream":
            return events
    events.append(_event("content_block_stop", {"index": 0}))
    if reply.tool:
        block = {"type": "tool_use", "id": reply.tool_id, "name": reply.tool.name, "input": {}}
        events.append(_event("content_block_start", {"index": 1, "content_block": block}))
        for fragment in ["", *reply.fragments()]:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            events.append(_event("content_block_delta", {"index": 1, "delta": delta}))
        events.append(_event("content_block_stop", {"index": 1}))
    stop = {"stop_reason": reply.stop_reason(), "stop_sequence": None}
    events.append(_event("message_delta", {"delta": stop, "usage": {"output_tokens": reply.output_tokens()}}))
    events.append(_event("message_stop", {}))
    return events


async def _stream(
    request: web.Request, reply: _Reply, plan: FaultPlan, request_id: str
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "request-id": request_id}
    )
    try:
        await response.prepare(request)
        for index, event in enumerate(_events(reply, plan)):
            if index and plan.chunk_delay_ms:
                await asyncio.sleep(plan.chunk_delay_ms / 1000)
            await response.write(event)  # one write per event so chunk timing is real on the wire
    except ConnectionResetError:
        return response
    if plan.drop == "midstream":
        close_connection(request)  # no message_stop: an incomplete body
    return response


MessagesAnswer = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def messages_answer(mock: MockContext) -> MessagesAnswer:
    """The answer to an (authorised) Messages request; `model` is the URL's where the path names
    it (Claude on Vertex), else "" and the body's `model` is used."""
    counter = itertools.count(1)
    boot = secrets.token_hex(3)

    async def answer(request: web.Request, model: str) -> web.StreamResponse:
        number = next(counter)
        request_id = f"req_mock_{boot}_{number}"
        try:
            body = _decode_request(await request.read())
            plan = mock.plan(request.headers.get("x-mock-fault"), body.mock)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _error(400, f"Invalid request: {exc}", request_id)
        if not (model or body.model):
            return _error(400, "model: Field required", request_id)
        if not body.messages:
            return _error(400, "messages: at least one message is required", request_id)
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if plan.drop == "before":
            return close_connection(request)
        if plan.status:
            note = f"(status {plan.status} injected by the Keyrail mock upstream)"
            return _error(plan.status, f"Mock upstream error {note}", request_id, plan.retry_after)
        uncached, cached = _words(body.system)
        for message in body.messages:
            counts = _words(message.content)
            uncached, cached = uncached + counts[0], cached + counts[1]
        tool = _tool_to_call(body)
        reply = _Reply(
            message_id=f"msg_mock_{boot}_{number}",
            model=model or body.model,
            text=f"Let me call {tool.name}." if tool else plan.reply or mock.reply,
            tool=tool,
            tool_id=f"toolu_mock_{boot}_{number}",
            input_tokens=uncached,
            cached_tokens=cached,
        )
        if body.stream:
            return await _stream(request, reply, plan, request_id)
        return web.Response(
            body=_encode(reply.message()), headers={"Content-Type": _JSON, "request-id": request_id}
        )

    return answer


def add_routes(app: web.Application, mock: MockContext) -> None:
    expected_key = mock.require_key.encode() if mock.require_key is not None else None
    answer = messages_answer(mock)

    def denied(request: web.Request) -> web.Response | None:
        request_id = "req_mock_refused"
        if expected_key is not None:
            # Anthropic's key header; the API (and the newer official SDK) also take it as a bearer token.
            bearer = request.headers.get("authorization", "")
            presented = request.headers.get("x-api-key") or bearer.removeprefix("Bearer ")
            if not presented:
                return _error(401, "x-api-key header is required", request_id)
            # Never echo the presented key.
            if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected_key):
                return _error(401, "invalid x-api-key", request_id)
        if not request.headers.get("anthropic-version"):
            return _error(400, "anthropic-version: header is required", request_id)
        return None

    async def messages(request: web.Request) -> web.StreamResponse:
        if (refused := denied(request)) is not None:
            return refused
        return await answer(request, "")

    app.router.add_post("/v1/messages", messages)
