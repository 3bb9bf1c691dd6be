"""OpenAI chat request → Gemini `generateContent` body (§5.1, §10): a pure function of the client's JSON.

Vertex AI takes the same body for Gemini models (§6.1); only the URL and the auth differ, and
those belong to the adapter (`__init__.py`), not here. Roles are only `user` and `model`, so
system messages become `systemInstruction`, tool results `functionResponse` parts of a user turn
(named after the call they answer: Gemini matches by name), and consecutive turns of one role
merge into one.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import UntranslatableRequest
from keyrail_workers.adapters.gemini.parts import Content, content_parts, text_of
from keyrail_workers.adapters.gemini.tool_ids import thought_signature


class _CalledFunction(msgspec.Struct):
    name: str
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    function: _CalledFunction
    id: str = ""


class _Message(msgspec.Struct):
    role: str
    content: Content = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class _Function(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct):
    type: str
    function: _Function | None = None


class _ChosenName(msgspec.Struct):
    name: str


class _ToolChoice(msgspec.Struct):
    type: str
    function: _ChosenName | None = None


class _JsonSchema(msgspec.Struct):
    schema: dict[str, Any] | None = None


class _ResponseFormat(msgspec.Struct):
    type: str
    json_schema: _JsonSchema | None = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _ChatRequest(msgspec.Struct):
    messages: list[_Message]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: _ResponseFormat | None = None
    reasoning_effort: str | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | _ToolChoice | None = None
    stream_options: _StreamOptions | None = None


class GeminiChat(msgspec.Struct):
    body: bytes  # the generateContent body
    client_wants_usage: bool  # stream_options.include_usage (Gemini always reports usage)
    candidates: int  # n


_decode_chat = msgspec.json.Decoder(_ChatRequest).decode
_encode = msgspec.json.Encoder().encode
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# Google's own OpenAI-compatible endpoint maps low / medium / high to these budgets (Gemini 2.5).
_BUDGETS = {
    "none": 0,
    "minimal": 1024,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
_LEVELS = {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH"}
_LEVELS |= {"xhigh": "HIGH", "max": "HIGH"}


def _arguments(text: str, where: str) -> dict[str, Any]:
    try:
        args = msgspec.json.decode(text) if text.strip() else {}
    except msgspec.DecodeError:
        args = None
    if not isinstance(args, dict):
        raise UntranslatableRequest(f"{where} must be a JSON object", where)
    return args


def _model_parts(message: _Message, where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    text = text_of(message.content, f"{where}.content")
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for j, call in enumerate(message.tool_calls or ()):
        args = _arguments(call.function.arguments, f"{where}.tool_calls[{j}].function.arguments")
        part: dict[str, Any] = {"functionCall": {"name": call.function.name, "args": args}}
        if signature := thought_signature(call.id):
            part["thoughtSignature"] = signature  # replayed verbatim, or Gemini 3 rejects the turn
        parts.append(part)
        names[call.id] = call.function.name
    return parts


def _function_response(message: _Message, where: str, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(message.tool_call_id or "") or message.name
    if not name:
        raise UntranslatableRequest(
            f"{where}.tool_call_id matches no tool call of an earlier assistant message",
            f"{where}.tool_call_id",
        )
    text = text_of(message.content, f"{where}.content")
    try:
        result = msgspec.json.decode(text)
    except msgspec.DecodeError:
        result = None
    return {
        "functionResponse": {
            "name": name,
            "response": result if isinstance(result, dict) else {"result": text},
        }
    }


def _contents(messages: list[_Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents)."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id → function name, from the assistant turns so far
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if message.role in ("system", "developer"):
            if text := text_of(message.content, f"{where}.content"):
                system.append({"text": text})
            continue
        if message.role == "user":
            role, parts = "user", content_parts(message.content, f"{where}.content")
        elif message.role == "assistant":
            role, parts = "model", _model_parts(message, where, names)
        elif message.role in ("tool", "function"):
            role, parts = "user", [_function_response(message, where, names)]
        else:
            raise UntranslatableRequest(
                f"{where}.role must be system, developer, user, assistant or tool", f"{where}.role"
            )
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _response_format(response_format: _ResponseFormat) -> dict[str, Any]:
    if response_format.type == "text":
        return {}
    if response_format.type == "json_object":
        return {"responseMimeType": "application/json"}
    if response_format.type == "json_schema" and response_format.json_schema is not None:
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if response_format.json_schema.schema is not None:
            config["responseJsonSchema"] = response_format.json_schema.schema
        return config
    raise UntranslatableRequest(
        "response_format.type must be text, json_object or json_schema", "response_format"
    )


def _thinking(effort: str, model: str) -> dict[str, Any]:
    """Gemini 2.5 takes a token budget, Gemini 3 and later a level (§5.1)."""
    table: dict[str, Any] = _BUDGETS if model.removeprefix("models/").startswith("gemini-2") else _LEVELS
    if effort not in table:
        raise UntranslatableRequest(f"reasoning_effort must be one of {', '.join(table)}", "reasoning_effort")
    return {"thinkingBudget" if table is _BUDGETS else "thinkingLevel": table[effort]}


def _generation_config(request: _ChatRequest, model: str) -> dict[str, Any]:
    max_tokens = (
        request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    )
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    given = {
        "temperature": request.temperature,
        "topP": request.top_p,
        "maxOutputTokens": max_tokens,
        "stopSequences": stop or None,
        "candidateCount": request.n,
        "seed": request.seed,
        "presencePenalty": request.presence_penalty,
        "frequencyPenalty": request.frequency_penalty,
    }
    config: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
    if request.response_format is not None:
        config |= _response_format(request.response_format)
    if request.reasoning_effort is not None:
        config["thinkingConfig"] = _thinking(request.reasoning_effort, model)
    return config


def _function_declarations(tools: list[_Tool]) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if tool.type != "function" or tool.function is None:
            raise UntranslatableRequest(
                f"tools[{i}]: Gemini takes function tools only", f"tools[{i}].type", FailureClass.UNSUPPORTED
            )
        declaration: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description is not None:
            declaration["description"] = tool.function.description
        if tool.function.parameters is not None:
            declaration["parametersJsonSchema"] = tool.function.parameters  # full JSON Schema, not the subset
        declarations.append(declaration)
    return declarations


def _tool_config(choice: str | _ToolChoice) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _MODES:
        return {"functionCallingConfig": {"mode": _MODES[choice]}}
    if isinstance(choice, _ToolChoice) and choice.type == "function" and choice.function is not None:
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}}
    raise UntranslatableRequest("tool_choice must be auto, none, required or a named function", "tool_choice")


def _param(exc: msgspec.ValidationError) -> str | None:
    """`Expected ... - at `$.messages[0].role`` → `messages[0].role`."""
    text = str(exc)
    return text.rsplit(" at `$.", 1)[1].rstrip("`") if " at `$." in text else None


def translate_chat(body: bytes, model: str) -> GeminiChat:
    try:
        request = _decode_chat(body)
    except msgspec.ValidationError as exc:
        raise UntranslatableRequest(f"Invalid request body: {exc}", _param(exc)) from exc
    except msgspec.DecodeError as exc:
        raise UntranslatableRequest("Request body is not valid JSON") from exc
    system, contents = _contents(request.messages)
    payload: dict[str, Any] = {}
    if system:
        payload["systemInstruction"] = {"parts": system}
    payload["contents"] = contents
    if config := _generation_config(request, model):
        payload["generationConfig"] = config
    if request.tools:
        payload["tools"] = [{"functionDeclarations": _function_declarations(request.tools)}]
    if request.tool_choice is not None:
        payload["toolConfig"] = _tool_config(request.tool_choice)
    options = request.stream_options
    return GeminiChat(
        body=_encode(payload),
        client_wants_usage=bool(options and options.include_usage),
        candidates=request.n or 1,
    )
