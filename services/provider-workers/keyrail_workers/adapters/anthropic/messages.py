"""OpenAI chat messages → Anthropic's top-level `system` blocks and its `messages` turns (§4.1).

Anthropic has no system role inside `messages`, wants the user and assistant turns to
alternate, tool calls as `tool_use` blocks of the assistant turn (with parsed `input`) and tool
answers as `tool_result` blocks at the head of the next user turn. So: system and developer
messages become `system` blocks; consecutive turns of one role (tool answers count as user) are
merged into one.

The ingress guarantees only a list of objects. Whatever has no Anthropic equivalent (an
`input_audio` part, a file id, a role Anthropic lacks, arguments that are not a JSON object) is
sent as it came: Anthropic's 400 then names the field to the client, which is better than a
guess or a silently dropped part.
"""

from __future__ import annotations

from typing import Any

import msgspec

Block = dict[str, Any]
Turn = dict[str, Any]

_json_decode = msgspec.json.decode
_SYSTEM_ROLES = frozenset({"system", "developer"})
_EMPTY_INPUT_ARGUMENTS = ("", None)  # a call without arguments: `input` {} (OpenAI clients send both)


def conversation(messages: list[Any]) -> tuple[list[Block], list[Turn]]:
    """(system blocks, alternating turns) of OpenAI chat messages."""
    system: list[Block] = []
    turns: list[Turn] = []
    for message in messages:
        if not isinstance(message, dict):
            turns.append(message)  # not a message at all: Anthropic says so
            continue
        role = message.get("role")
        content = message.get("content")
        if role in _SYSTEM_ROLES:
            system.extend(_as_blocks(_content(content)))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_content(content, message.get("tool_calls")))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message)])
        elif role == "user":
            _append(turns, "user", _content(content))
        else:
            turns.append({"role": role, "content": _content(content)})
    return system, turns


def _append(turns: list[Turn], role: str, content: str | list[Any]) -> None:
    if content in ("", []) and role == "assistant":
        return  # an empty assistant turn (a null content without calls) is not a turn for Anthropic
    last = turns[-1] if turns else None
    if last is None or last.get("role") != role:
        turns.append({"role": role, "content": content})
        return
    merged = _as_blocks(last["content"]) + _as_blocks(content)
    if role == "user":  # tool results first, in their order (sort is stable)
        merged.sort(key=lambda block: not _is_tool_result(block))
    last["content"] = merged


def _is_tool_result(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "tool_result"


def _as_blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return content
    return [] if content is None else [content]


def _content(content: Any) -> Any:
    """A string stays a string; parts become blocks; anything else goes as it came."""
    if isinstance(content, list):
        return [_block(part) for part in content]
    return "" if content is None else content


def _block(part: Any) -> Any:
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    block: Block
    if kind == "text":
        block = {"type": "text", "text": part.get("text")}
    elif kind == "refusal":  # an earlier assistant refusal, sent back as what it said
        block = {"type": "text", "text": part.get("refusal")}
    elif kind == "image_url":
        block = _image(part.get("image_url"))
    elif kind == "file" and isinstance(part.get("file"), dict) and part["file"].get("file_data"):
        block = _document(part["file"])
    else:
        return part  # no equivalent (input_audio, a file id), or already an Anthropic block
    if "cache_control" in part:  # the prompt-caching hint some OpenAI clients put on parts
        block["cache_control"] = part["cache_control"]
    return block


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of `data:<media type>;base64,<data>`."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    return head[len("data:") : -len(";base64")], data


def _image(image_url: Any) -> Block:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url  # `detail` has no equivalent
    inline = _data_url(url) if isinstance(url, str) else None
    if inline is not None:
        media_type, data = inline
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document(file: dict[str, Any]) -> Block:
    data = file["file_data"]
    inline = _data_url(data) if isinstance(data, str) else None
    media_type, data = inline or ("application/pdf", data)  # bare base64: OpenAI's file parts are PDFs
    block: Block = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant_content(content: Any, tool_calls: Any) -> str | list[Any]:
    text = _content(content)
    if not isinstance(tool_calls, list) or not tool_calls:
        return text
    return [*_as_blocks(text), *(_tool_use(call) for call in tool_calls)]


def _tool_use(call: Any) -> Any:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = call["function"]
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": _input(function)}


def _input(function: dict[str, Any]) -> Any:
    """The parsed `arguments`; arguments that are not a JSON object go as the string they are."""
    arguments = function.get("arguments")
    if arguments in _EMPTY_INPUT_ARGUMENTS:
        return {}
    if not isinstance(arguments, str):
        return arguments
    try:
        parsed = _json_decode(arguments)
    except msgspec.DecodeError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments


def _tool_result(message: dict[str, Any]) -> Block:
    content = _content(message.get("content"))
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": content}
