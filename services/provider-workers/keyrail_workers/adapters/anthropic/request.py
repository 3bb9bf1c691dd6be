"""OpenAI chat-completions request → Anthropic Messages request (`POST {base}/v1/messages`, §4, §4.1).

Only what Anthropic has is sent: the messages (messages.py), the token limit, sampling, stop
sequences, the end-user id, tools, structured output and thinking. OpenAI parameters Anthropic
lacks (`seed`, `logprobs`, `top_logprobs`, penalties, `logit_bias`, `store`, `modalities`,
`stream_options`, ...) are dropped (§10.3); so is `n` of 1. `n` > 1 is sent on, so that
Anthropic refuses it (400) instead of the client silently getting one choice for several.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from keyrail_workers.adapters.anthropic.messages import Block, conversation
from keyrail_workers.adapters.base import AdapterCall, Credential, UpstreamRequest

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` when the client sets no limit: Anthropic requires one, OpenAI does not. 4096 is
within the output limit of every Claude model in the catalog and long enough for a usual answer;
a client that wants more says so (`max_completion_tokens`)."""

MIN_THINKING_BUDGET = 1024  # Anthropic's floor for `thinking.budget_tokens`
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
"""`reasoning_effort` → thinking budget. `none` and `minimal` ask for (next to) no reasoning:
thinking stays off, Anthropic's default."""

JSON_OBJECT_INSTRUCTION = "Respond with a single JSON object and nothing else."
"""`response_format: json_object` has no Anthropic equivalent: it is asked for in `system` (§4.1)."""

# Model-specific constraints (§4.1), by model-id prefix (dated and `@` snapshots included).
_NO_SAMPLING_PARAMS = ("claude-haiku-5-5",)  # "Omit temperature, top_p, and top_k": some values 400
_NO_FORCED_TOOL_USE = ("claude-opus-5-5", "claude-fable-5-1")  # `tool_choice` any/tool returns an error
_SAMPLING = ("temperature", "top_p", "top_k")
_SERVICE_TIERS = {"auto": "auto", "default": "standard_only"}
_OWN_HEADERS = frozenset({"x-api-key", "content-type", "accept"})

T = TypeVar("T")
_json_decode = msgspec.json.decode
_json_encode = msgspec.json.Encoder().encode


def build_messages_request(call: AdapterCall, credential: Credential) -> UpstreamRequest:
    body: dict[str, Any] = _json_decode(call.body)
    # Header names are case-insensitive: one spelling each, so a custom header cannot double ours.
    # A custom `anthropic-version`, `anthropic-beta` or OAuth `authorization` is kept.
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    headers.update({name.lower(): value for name, value in call.custom_headers.items()})
    for name in _OWN_HEADERS:
        headers.pop(name, None)
    api_key = credential.get("api_key")
    if isinstance(api_key, str) and api_key:
        headers["x-api-key"] = api_key
    headers["content-type"] = "application/json"
    headers["accept"] = "text/event-stream" if call.stream else "application/json"
    # The Anthropic base URL has no `/v1`; one given anyway is not doubled.
    base = call.base_url.rstrip("/").removesuffix("/v1")
    return UpstreamRequest(
        method="POST",
        url=f"{base}/v1/messages",
        headers=headers,
        body=_json_encode(translate(body, call.model, call.stream)),
        client_wants_usage=client_wants_usage(body, call.stream),
    )


def client_wants_usage(body: dict[str, Any], stream: bool) -> bool:
    """The client asked for the usage chunk (`stream_options.include_usage`) of its stream."""
    options = body.get("stream_options")
    return stream and isinstance(options, dict) and bool(options.get("include_usage"))


def translate(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """The Anthropic Messages body of an OpenAI chat-completions body."""
    system, messages = conversation(body.get("messages") or [])
    payload: dict[str, Any] = {"model": model, "messages": messages}
    requested = _positive_int(body.get("max_completion_tokens")) or _positive_int(body.get("max_tokens"))
    thinking = _thinking(body, requested) or {}
    payload["max_tokens"] = requested or DEFAULT_MAX_TOKENS + (
        _positive_int(thinking.get("budget_tokens")) or 0
    )
    if thinking:
        payload["thinking"] = thinking
    # With thinking on, Anthropic accepts no temperature, top_k, nor a low top_p: all are left out.
    if thinking.get("type", "disabled") == "disabled" and not model.startswith(_NO_SAMPLING_PARAMS):
        _add_sampling(payload, body)
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        payload["metadata"] = {"user_id": user}
    _add_tools(payload, body, system)
    _add_response_format(payload, body.get("response_format"), system)
    if system:
        payload["system"] = system
    tier = _lookup(_SERVICE_TIERS, body.get("service_tier"))
    if tier is not None:
        payload["service_tier"] = tier
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        payload["n"] = n
    payload["stream"] = stream
    return payload


def _add_sampling(payload: dict[str, Any], body: dict[str, Any]) -> None:
    for name in _SAMPLING:
        if body.get(name) is not None:
            payload[name] = body[name]
    if isinstance(payload.get("temperature"), int | float):
        payload["temperature"] = min(max(payload["temperature"], 0.0), 1.0)  # OpenAI's range is 0-2


def _lookup(table: dict[str, T], key: Any) -> T | None:
    return table.get(key) if isinstance(key, str) else None


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _thinking(body: dict[str, Any], requested: int | None) -> dict[str, Any] | None:
    """Anthropic's `thinking`: as a client that knows it sent it, else from `reasoning_effort`.

    The budget counts toward `max_tokens`, as OpenAI's reasoning tokens count toward
    `max_completion_tokens`: under a client's limit it may take at most half of it (the answer
    keeps the rest), and thinking stays off when that is under Anthropic's minimum budget.
    Without a client limit the answer keeps DEFAULT_MAX_TOKENS on top of the budget.
    """
    own = body.get("thinking")
    if isinstance(own, dict):
        return own
    budget = _lookup(THINKING_BUDGETS, body.get("reasoning_effort"))
    if budget is None:
        return None
    if requested is not None:
        budget = min(budget, requested // 2)
        if budget < MIN_THINKING_BUDGET:
            return None
    return {"type": "enabled", "budget_tokens": budget}


def _add_tools(payload: dict[str, Any], body: dict[str, Any], system: list[Block]) -> None:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return  # a tool_choice without tools means nothing to Anthropic (and it refuses it)
    payload["tools"] = [_tool(tool) for tool in tools]
    choice = _tool_choice(body.get("tool_choice"))
    if choice is None:
        if body.get("parallel_tool_calls") is None:
            return
        choice = {"type": "auto"}
    if choice["type"] in ("any", "tool") and payload["model"].startswith(_NO_FORCED_TOOL_USE):
        # These models refuse forced tool use: ask for it in words, let the model choose (§4.1).
        named = f"the tool `{choice['name']}`" if choice["type"] == "tool" else "one of the tools"
        system.append({"type": "text", "text": f"You must call {named} in your answer."})
        choice = {"type": "auto"}
    parallel = body.get("parallel_tool_calls")
    if isinstance(parallel, bool) and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = not parallel
    payload["tool_choice"] = choice


def _tool(tool: Any) -> Any:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        return tool  # not an OpenAI function tool: Anthropic's own tool types pass as they are
    converted: dict[str, Any] = {
        "name": function.get("name"),
        # Anthropic requires a schema of type object; a function without parameters takes none.
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    if isinstance(function.get("strict"), bool):
        converted["strict"] = function["strict"]
    return converted


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return None


def _add_response_format(payload: dict[str, Any], response_format: Any, system: list[Block]) -> None:
    if not isinstance(response_format, dict):
        return
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), dict):
        schema = response_format["json_schema"].get("schema") or {"type": "object"}
        payload["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
