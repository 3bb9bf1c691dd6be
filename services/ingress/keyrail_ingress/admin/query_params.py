"""Query-string parameters of the admin API's read routes: times, bounded limits, opaque cursors.

Each parser raises `BadParam` naming the parameter and what would be accepted; the route answers
it as a 400 (`bad_param`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import msgspec
from starlette.responses import Response

from keyrail_ingress.responses import error

MAX_LIMIT = 1000
T = TypeVar("T")


class BadParam(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def bad_param(exc: BadParam) -> Response:
    return error(400, exc.message, "invalid_value", exc.param)


def parse_time(raw: str) -> float | None:
    """Unix seconds, or ISO 8601 (UTC unless it names a zone)."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def time_ms(params: Mapping[str, str], name: str) -> int:
    """A time parameter in Unix milliseconds; 0 when it is absent."""
    raw = params.get(name, "")
    if not raw:
        return 0
    seconds = parse_time(raw)
    if seconds is None or seconds <= 0:
        example = "2026-12-01T19:30:00Z"
        raise BadParam(name, f"'{name}' must be ISO 8601 ({example}) or Unix seconds; got {raw!r}.")
    return int(seconds * 1000)


def limit(params: Mapping[str, str], default: int = 100) -> int:
    raw = params.get("limit", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise BadParam("limit", f"'limit' must be an integer from 1 to {MAX_LIMIT}; got {raw!r}.")
    return value


def one_of(params: Mapping[str, str], name: str, allowed: Iterable[str]) -> str:
    raw = params.get(name, "")
    choices = sorted(allowed)
    if raw and raw not in choices:
        raise BadParam(name, f"'{name}' must be one of {', '.join(choices)}; got {raw!r}.")
    return raw


def only_known(params: Mapping[str, str], known: Iterable[str]) -> None:
    """Refuse a parameter the route does not take: a typo must not silently widen the answer."""
    names = set(known)
    for name in params:
        if name not in names:
            raise BadParam(name, f"Unknown parameter '{name}'; this route takes {', '.join(sorted(names))}.")


def encode_cursor(position: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(position)).decode().rstrip("=")


def decode_cursor(raw: str, kind: type[T]) -> T:
    """The position an earlier page's `next_cursor` names; anything else is a 400."""
    try:
        return msgspec.msgpack.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise BadParam("cursor", "'cursor' must be the next_cursor of an earlier page, unchanged.") from None
