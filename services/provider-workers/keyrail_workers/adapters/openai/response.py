"""OpenAI responses (chat completions, embeddings): forwarded byte for byte to an OpenAI-dialect
client; only the usage is read out of them."""

from __future__ import annotations

import msgspec

from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import AdapterCall, ParsedResponse
from keyrail_workers.adapters.openai.usage import WireUsage


class _UsageOnly(msgspec.Struct):
    usage: WireUsage | None = None


_usage_decoder = msgspec.json.Decoder(_UsageOnly)


def response_usage(body: bytes) -> Usage | None:
    try:
        wire = _usage_decoder.decode(body).usage
    except msgspec.DecodeError:
        return None
    return wire.to_usage() if wire else None


def parse_chat_response(call: AdapterCall, body: bytes) -> ParsedResponse:
    return ParsedResponse(body=body, usage=response_usage(body))
