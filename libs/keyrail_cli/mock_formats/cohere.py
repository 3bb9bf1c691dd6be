"""Cohere v2 chat (reference §8) at `POST /v2/chat`, for Cohere-compatible custom hosts.

- Bearer auth checked against `--require-key`; Cohere's `{"id", "message"}` error bodies;
- a request with `tools` whose last message is not a tool result gets a call of its first tool
  (each required property set to `"mock"`), anything else the reply text, word by word on streams;
- usage reports `tokens` (the prompt's words plus `TEMPLATE_TOKENS` the model also read) and the
  smaller `billed_units` (the words only), as Cohere does;
- streams are Cohere's kebab-case events, `message-end` with usage, then `data: [DONE]`;
- `POST /v2/embed` (an `input_type` required, as embed v3+ models do) answers one
  `mock_embedding` per text as `embeddings.float`, billing a token per word.

Faults (`x-mock-fault`, a `"mock"` body field) work as on the OpenAI routes.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import re
import secrets
from typing import Any

import msgspec
from aiohttp import web

from keyrail_cli.mock_upstream import FaultPlan, MockContext, close_connection, mock_embedding, send_events

TEMPLATE_TOKENS = 7  # the chat template around the prompt: read by the model, not billed
TOOL_CALL_TOKENS = 10  # what a tool call's output counts, whatever its arguments
_WORD = re.compile(r"\s*\S+")
_encode = msgspec.json.Encoder().encode


class _Message(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]] | None = None


class _Function(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct):
    function: _Function


class _ChatRequest(msgspec.Struct):
    model: str
    messages: list[_Message]
    tools: list[_Tool] | None = None
    stream: bool = False
    mock: dict[str, Any] | None = None


class _EmbedRequest(msgspec.Struct):
    model: str
    texts: list[str]
    input_type: str
    embedding_types: list[str] | None = None  # Cohere's default: float
    mock: dict[str, Any] | None = None


_decode_chat = msgspec.json.Decoder(_ChatRequest).decode
_decode_embed = msgspec.json.Decoder(_EmbedRequest).decode


def _error(status: int, message: str, request_id: str, retry_after: int = 0) -> web.Response:
    headers = {"Content-Type": "application/json"}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return web.Response(status=status, body=_encode({"id": request_id, "message": message}), headers=headers)


def _words(messages: list[_Message]) -> int:
    count = 0
    for message in messages:
        if isinstance(message.content, str):
            count += len(message.content.split())
        elif message.content:
            count += sum(len(str(part.get("text", "")).split()) for part in message.content)
    return count


def _usage(prompt_words: int, output_words: int) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": prompt_words, "output_tokens": output_words},
        "tokens": {"input_tokens": prompt_words + TEMPLATE_TOKENS, "output_tokens": output_words},
        "cached_tokens": 0,
    }


def _tool_call(chat: _ChatRequest, call_id: str) -> dict[str, Any] | None:
    """A call of the first tool unless the conversation already ends with a tool result."""
    if not chat.tools or chat.messages[-1].role == "tool":
        return None
    function = chat.tools[0].function
    required = (function.parameters or {}).get("required") or []
    arguments = _encode({name: "mock" for name in required}).decode()
    return {
        "id": f"{function.name}_{call_id}",
        "type": "function",
        "function": {"name": function.name, "arguments": arguments},
    }


def _event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _encode({"type": kind, **fields}) + b"\n\n"


def _stream_events(
    request_id: str, text: str, call: dict[str, Any] | None, usage: dict[str, Any]
) -> list[bytes]:
    empty = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events = [_event("message-start", id=request_id, delta={"message": empty})]
    if call is None:
        events.append(
            _event("content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}})
        )
        for piece in _WORD.findall(text):
            events.append(_event("content-delta", index=0, delta={"message": {"content": {"text": piece}}}))
        events.append(_event("content-end", index=0))
        reason = "COMPLETE"
    else:
        events.append(_event("tool-plan-delta", delta={"message": {"tool_plan": "I will call a tool."}}))
        start = {**call, "function": {**call["function"], "arguments": ""}}
        events.append(_event("tool-call-start", index=0, delta={"message": {"tool_calls": start}}))
        arguments = call["function"]["arguments"]
        for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            events.append(
                _event(
                    "tool-call-delta",
                    index=0,
                    delta={"message": {"tool_calls": {"function": {"arguments": piece}}}},
                )
            )
        events.append(_event("tool-call-end", index=0))
        reason = "TOOL_CALL"
    events.append(_event("message-end", delta={"finish_reason": reason, "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


def _answer(request_id: str, text: str, call: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    if call is None:
        message: dict[str, Any] = {"role": "assistant", "content": [{"type": "text", "text": text}]}
        reason = "COMPLETE"
    else:
        message = {"role": "assistant", "tool_plan": "I will call a tool.", "tool_calls": [call]}
        reason = "TOOL_CALL"
    return {"id": request_id, "finish_reason": reason, "message": message, "usage": usage}


def add_routes(app: web.Application, mock: MockContext) -> None:
    counter = itertools.count(1)
    boot = secrets.token_hex(3)
    expected_auth = f"Bearer {mock.require_key}".encode() if mock.require_key is not None else None

    def refused(request: web.Request, request_id: str) -> web.Response | None:
        if expected_auth is None:
            return None
        presented = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if hmac.compare_digest(presented, expected_auth):
            return None
        return _error(401, "invalid api token", request_id)

    async def embed(request: web.Request) -> web.Response:
        request_id = f"cohere-embed-mock-{boot}-{next(counter)}"
        if (denied := refused(request, request_id)) is not None:
            return denied
        try:
            body = _decode_embed(await request.read())
            plan = mock.plan(request.headers.get("x-mock-fault"), body.mock)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _error(400, f"invalid request: {exc}", request_id)
        if body.embedding_types not in (None, ["float"]):
            return _error(400, "invalid request: the Keyrail mock embeds only as float.", request_id)
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if plan.status:
            note = f"status {plan.status} injected by the Keyrail mock upstream"
            return _error(plan.status, note, request_id, plan.retry_after)
        words = sum(len(text.split()) for text in body.texts)
        answer = {
            "id": request_id,
            "embeddings": {"float": [mock_embedding(text) for text in body.texts]},
            "texts": body.texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": words}},
            "response_type": "embeddings_by_type",
        }
        return web.Response(body=_encode(answer), headers={"Content-Type": "application/json"})

    async def chat(request: web.Request) -> web.StreamResponse:
        request_id = f"cohere-mock-{boot}-{next(counter)}"
        if (denied := refused(request, request_id)) is not None:
            return denied
        try:
            body = _decode_chat(await request.read())
            plan: FaultPlan = mock.plan(request.headers.get("x-mock-fault"), body.mock)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _error(400, f"invalid request: {exc}", request_id)
        if not body.messages:
            return _error(400, "invalid request: messages must not be empty.", request_id)
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if plan.drop == "before":
            return close_connection(request)
        if plan.status:
            note = f"status {plan.status} injected by the Keyrail mock upstream"
            return _error(plan.status, note, request_id, plan.retry_after)
        text = plan.reply or mock.reply
        call = _tool_call(body, secrets.token_hex(6))
        output_words = len(_WORD.findall(text)) if call is None else TOOL_CALL_TOKENS
        usage = _usage(_words(body.messages), output_words)
        if body.stream:
            return await send_events(request, plan, _stream_events(request_id, text, call, usage), request_id)
        return web.Response(
            body=_encode(_answer(request_id, text, call, usage)), headers={"Content-Type": "application/json"}
        )

    app.router.add_post("/v2/chat", chat)
    app.router.add_post("/v2/embed", embed)
