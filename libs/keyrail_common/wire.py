"""Decoding hot-path messages from the bus, refusing what this version cannot read.

During a rolling upgrade a service may receive a message of another version. What still decodes
(older messages whose new fields have defaults) is served; anything else is refused: logged,
counted in `keyrail_bus_messages_refused_total`, and answered with an error by the caller of
`decode_or_refuse`, so the sender never waits for a reply that will not come.
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeVar

import msgspec
from prometheus_client import Counter

from keyrail_common.messages import MESSAGE_VERSION

log = logging.getLogger("keyrail.wire")

REFUSED = Counter(
    "keyrail_bus_messages_refused_total",
    "Bus messages this version could not read (undecodable, or from a newer version)",
    ["subject", "reason"],
)


class Versioned(Protocol):
    v: int


M = TypeVar("M", bound=Versioned)


def decode_or_refuse(decoder: msgspec.msgpack.Decoder[M], data: bytes, subject: str) -> M | str:
    """The message, or why it was refused (a sentence for the error reply)."""
    try:
        message = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        REFUSED.labels(subject, "undecodable").inc()
        log.error("refused an undecodable message on %s: %s", subject, exc)
        return f"a message on {subject} could not be decoded by this version of Keyrail ({exc})"
    if message.v > MESSAGE_VERSION:
        REFUSED.labels(subject, "newer_version").inc()
        log.error(
            "refused a version-%d message on %s (this service reads up to %d)",
            message.v,
            subject,
            MESSAGE_VERSION,
        )
        return (
            f"a version-{message.v} message on {subject} reached a service that reads up to version "
            f"{MESSAGE_VERSION}: upgrade every service to the same release"
        )
    return message
