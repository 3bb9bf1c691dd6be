"""OpenAI tool-call ids for Gemini function calls, which carry none.

An id must be stable (the same call of the same response gets the same id, streamed or not) and
must carry what the next request needs to send the call back: Gemini 3 and later reject a
replayed `functionCall` part without its `thoughtSignature` (§5.1), and a side store would not
survive another worker serving the next turn. So the signature travels inside the id, after a
`~` (which base64 never contains): `call_<24 hex>` or `call_<24 hex>~<thoughtSignature>`.
"""

from __future__ import annotations

import hashlib

SEPARATOR = "~"


def tool_call_id(
    response_id: str, candidate: int, ordinal: int, arguments: str, signature: str | None
) -> str:
    """The id of a response's `ordinal`-th call in candidate `candidate`; `arguments` keeps ids
    apart across responses that have no `responseId`."""
    seed = f"{response_id}\0{candidate}\0{ordinal}\0{arguments}".encode()
    base = "call_" + hashlib.blake2b(seed, digest_size=12).hexdigest()
    return f"{base}{SEPARATOR}{signature}" if signature else base


def thought_signature(call_id: str) -> str | None:
    """The signature a tool-call id carries, if it is one of ours and the call had one."""
    _, separator, signature = call_id.partition(SEPARATOR)
    return signature if separator and signature else None
