"""OpenAI chat request → Cohere v2 `POST {base}/v2/chat` (reference §8).

Messages keep their roles (developer becomes system); tool calls are already OpenAI-shaped; a tool
result becomes a `document` (what Cohere cites). Sampling parameters are renamed (`top_p` → `p`,
`stop` → `stop_sequences`, the common `top_k` extension → `k`). What Cohere cannot do is refused
before any HTTP (UNSUPPORTED, so another target may still serve it): `n` > 1, audio and file
parts. Parameters without a Cohere meaning (`user`, `store`, `logprobs`, ...) are dropped.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import AdapterCall, Credential, UpstreamError, UpstreamRequest


class _Function(msgspec.Struct):
    name: str
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    id: str
    function: _Function


class _Message(msgspec.Struct):
    role: str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None


class _FunctionDef(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(msgspec.Struct):
    function: _FunctionDef


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _ChatRequest(msgspec.Struct):
    messages: list[_Message]
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    n: int | None = None
    reasoning_effort: str | None = None
    stream_options: _StreamOptions | None = None


_decode_request = msgspec.json.Decoder(_ChatRequest).decode
_json_encode = msgspec.json.Encoder().encode
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_RENAMED = (("temperature", "temperature"), ("top_p", "p"), ("top_k", "k"), ("seed", "seed"))
_PENALTIES = ("frequency_penalty", "presence_penalty")


class _Unsupported(Exception):
    """A request Cohere v2 chat cannot express; the message says what (no secrets in it)."""


class _Invalid(Exception):
    """A request no upstream would take (the caller's error); the message says why."""


def _text_parts(content: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url" and role == "user":
            parts.append({"type": "image_url", "image_url": part.get("image_url")})
        else:
            raise _Unsupported(f"Cohere v2 chat takes no '{kind}' content parts in {role} messages")
    return parts


def _joined_text(content: str | list[dict[str, Any]] | None, role: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part["text"] for part in _text_parts(content, role))


def _message(message: _Message) -> dict[str, Any]:
    role = _ROLES.get(message.role)
    if role is None:
        raise _Unsupported(f"Cohere v2 chat has no '{message.role}' role")
    content = message.content
    if role == "tool":
        # A document is what Cohere cites from a tool's result; its `data` is the result's text.
        result = _joined_text(content, role)
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": [_document(result)]}
    if role == "assistant" and message.tool_calls:
        out: dict[str, Any] = {"role": role}
        if plan := _joined_text(content, role):
            out["tool_plan"] = plan  # Cohere's name for what the model said before calling tools
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for c in message.tool_calls
        ]
        return out
    return {
        "role": role,
        "content": _text_parts(content, role) if isinstance(content, list) else content or "",
    }


def _document(data: str) -> dict[str, Any]:
    return {"type": "document", "document": {"data": data}}


def _tools(request: _ChatRequest, body: dict[str, Any]) -> None:
    if not request.tools:
        return
    tools = request.tools
    choice = request.tool_choice
    if isinstance(choice, dict):
        # No per-function forcing in Cohere: REQUIRED with only that tool (reference §8).
        name = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t.function.name == name]
        if not tools:
            raise _Invalid(f"tool_choice names the function '{name}', which is not in tools")
        body["tool_choice"] = "REQUIRED"
    elif choice in ("required", "none"):
        body["tool_choice"] = choice.upper()
    body["tools"] = [
        {
            "type": "function",
            "function": msgspec.to_builtins(msgspec.structs.replace(t.function, strict=None)),
        }
        for t in tools
    ]
    if any(t.function.strict for t in tools):
        body["strict_tools"] = True


def _response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "json_schema": schema} if schema else {"type": "json_object"}
    return {"type": "json_object"} if kind == "json_object" else {"type": "text"}


def cohere_body(call: AdapterCall) -> tuple[dict[str, Any], bool]:
    """The Cohere body, and whether the client asked for stream usage. Raises `_Unsupported`,
    `_Invalid`, msgspec.DecodeError or msgspec.ValidationError."""
    request = _decode_request(call.body)
    if request.n is not None and request.n > 1:
        raise _Unsupported(f"Cohere v2 chat returns one choice; n={request.n} is not supported")
    body: dict[str, Any] = {"model": call.model, "messages": [_message(m) for m in request.messages]}
    _tools(request, body)
    if request.response_format:
        body["response_format"] = _response_format(request.response_format)
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    for openai_name, cohere_name in _RENAMED:
        if (value := getattr(request, openai_name)) is not None:
            body[cohere_name] = value
    if request.stop is not None:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    for name in _PENALTIES:
        if (value := getattr(request, name)) is not None:
            body[name] = value
    if request.reasoning_effort is not None:
        body["thinking"] = {"type": "disabled" if request.reasoning_effort == "none" else "enabled"}
    body["stream"] = call.stream
    client_wants_usage = bool(call.stream and request.stream_options and request.stream_options.include_usage)
    return body, client_wants_usage


def build_cohere_request(call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
    try:
        body, client_wants_usage = cohere_body(call)
    except _Unsupported as exc:
        return UpstreamError(FailureClass.UNSUPPORTED, str(exc), provider_code="unsupported_for_cohere")
    except (msgspec.DecodeError, msgspec.ValidationError, _Invalid) as exc:
        return UpstreamError(
            FailureClass.CALLER_ERROR,
            f"the body is not an OpenAI chat request Cohere can take: {exc}",
            provider_code="invalid_request",
        )
    return UpstreamRequest(
        method="POST",
        url=call.base_url.rstrip("/") + "/v2/chat",
        headers=cohere_headers(call, credential),
        body=_json_encode(body),
        client_wants_usage=client_wants_usage,
    )


def cohere_headers(call: AdapterCall, credential: Credential) -> dict[str, str]:
    headers = dict(call.custom_headers)
    api_key = credential.get("api_key")
    if isinstance(api_key, str) and api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "text/event-stream" if call.stream else "application/json"
    return headers
