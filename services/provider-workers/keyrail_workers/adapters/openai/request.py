"""OpenAI requests: the client's body with the upstream model name. Chat completions also get the
provider's quirks applied (rejected parameters dropped, temperature clamped into its range) and
usage requested on streams.

The payload and the headers are built apart so that Azure (OpenAI's body, its own URL and auth
header) composes them."""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.registry import Quirks
from keyrail_workers.adapters.base import AdapterCall, Credential, UpstreamRequest

_json_decode = msgspec.json.decode
_json_encode = msgspec.json.Encoder().encode


def chat_payload(call: AdapterCall) -> tuple[dict[str, Any], bool]:
    """The upstream body as a dict, and whether the client itself asked for stream usage."""
    quirks = call.quirks
    payload: dict[str, Any] = _json_decode(call.body)
    payload["model"] = call.model
    for param in quirks.drop_params:
        payload.pop(param, None)
    for prefix, params in quirks.model_drop_params.items():
        if call.model.startswith(prefix):
            for param in params:
                payload.pop(param, None)
    if quirks.temperature_range is not None:
        temperature = payload.get("temperature")
        if isinstance(temperature, int | float):
            low, high = quirks.temperature_range
            payload["temperature"] = min(max(temperature, low), high)
    if quirks.drop_message_fields:
        for message in payload.get("messages", ()):
            for field in quirks.drop_message_fields:
                message.pop(field, None)
    client_wants_usage = False
    if call.stream:
        options = payload.get("stream_options") or {}
        client_wants_usage = bool(options.get("include_usage"))
        if quirks.stream_usage:
            # Always ask for usage so the activity log has token counts for every stream.
            payload["stream_options"] = {**options, "include_usage": True}
    return payload, client_wants_usage


def chat_headers(call: AdapterCall, credential: Credential, quirks: Quirks) -> dict[str, str]:
    headers = dict(call.custom_headers)
    api_key = credential.get("api_key")
    if isinstance(api_key, str) and api_key:
        headers[quirks.auth_header] = quirks.auth_scheme + api_key
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "text/event-stream" if call.stream else "application/json"
    return headers


def _url(call: AdapterCall, path: str) -> str:
    return call.base_url.rstrip("/") + path


def build_chat_request(call: AdapterCall, credential: Credential) -> UpstreamRequest:
    payload, client_wants_usage = chat_payload(call)
    return UpstreamRequest(
        method="POST",
        url=_url(call, "/chat/completions"),
        headers=chat_headers(call, credential, call.quirks),
        body=_json_encode(payload),
        client_wants_usage=client_wants_usage,
    )
