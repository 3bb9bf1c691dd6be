"""`decode_or_refuse`: what a rolling upgrade may put on the bus is served, or refused and counted."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY

from keyrail_common.messages import (
    MESSAGE_VERSION,
    Dialect,
    ProviderCall,
    RouteRequest,
    Target,
    encode,
    provider_call_decoder,
    route_request_decoder,
)
from keyrail_common.registry import Operation
from keyrail_common.wire import decode_or_refuse

_subjects = itertools.count()

V1_ROUTE_REQUEST: dict[str, Any] = {
    "request_id": "req_1",
    "org_id": "org_1",
    "project_id": "proj_a",
    "model": "openai-prod/gpt-4.1-mini",
    "body": b'{"model": "openai-prod/gpt-4.1-mini", "messages": []}',
    "received_ns": 1_700_000_000_000_000_000,
    "min_config_seq": 12,
    "stream": True,
    "stream_inbox": "_INBOX.abc",
    "tags": ["batch"],
}

# A version-1 ProviderCall: its target named the worker pool `family`, and it had no deadlines.
V1_PROVIDER_CALL: dict[str, Any] = {
    "request_id": "req_1",
    "org_id": "org_1",
    "project_id": "proj_a",
    "attempt": 1,
    "fallback_position": 0,
    "target": {
        "integration_id": "int_1",
        "provider": "openai",
        "provider_slug": "openai-prod",
        "family": "openai",
        "model": "gpt-4.1-mini",
        "catalog_id": "openai/gpt-4.1-mini",
        "base_url": "",
        "credential_ref": "integrations/org_1/openai-prod",
        "credential_version": 1,
    },
    "body": b"{}",
    "received_ns": 1,
    "routed_ns": 2,
    "v": 1,
}


def subject() -> str:
    """A subject of its own per test, so counter samples do not depend on test order."""
    return f"keyrail.test.wire.{next(_subjects)}"


def refused(subject: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "keyrail_bus_messages_refused_total", {"subject": subject, "reason": reason}
    )
    return value or 0.0


def current_call(**changes: Any) -> ProviderCall:
    call = ProviderCall(
        request_id="req_1",
        org_id="org_1",
        project_id="proj_a",
        attempt=1,
        fallback_position=0,
        target=Target(
            integration_id="int_1",
            provider="openai",
            provider_slug="openai-prod",
            adapter="openai",
            model="gpt-4.1-mini",
            catalog_id="openai/gpt-4.1-mini",
            base_url="https://api.openai.com/v1",
            credential_ref="integrations/org_1/openai-prod",
            credential_version=1,
        ),
        body=b"{}",
        received_ns=1,
        routed_ns=2,
        deadline_ns=3,
        attempt_deadline_ns=3,
    )
    return msgspec.structs.replace(call, **changes)


@pytest.mark.parametrize("with_v", [True, False], ids=["v=1", "v-omitted"])
def test_a_version_1_route_request_decodes_with_the_defaults_of_the_new_fields(with_v: bool) -> None:
    # Version 1 encoded with omit_defaults, so `v: 1` was often not on the wire at all.
    payload = {**V1_ROUTE_REQUEST, **({"v": 1} if with_v else {})}
    name = subject()

    request = decode_or_refuse(route_request_decoder, msgspec.msgpack.encode(payload), name)

    assert isinstance(request, RouteRequest)
    assert (request.request_id, request.model, request.stream, request.tags) == (
        "req_1",
        "openai-prod/gpt-4.1-mini",
        True,
        ["batch"],
    )
    assert request.operation is Operation.CHAT
    assert request.dialect is Dialect.OPENAI
    assert request.deadline_ns == 0  # the router applies its own request timeout
    assert refused(name, "undecodable") == 0 and refused(name, "newer_version") == 0


def test_a_current_message_round_trips() -> None:
    call = current_call(operation=Operation.CHAT, dialect=Dialect.ANTHROPIC, stream=True)

    decoded = decode_or_refuse(provider_call_decoder, encode(call), subject())

    assert decoded == call
    assert isinstance(decoded, ProviderCall) and decoded.v == MESSAGE_VERSION


def test_a_version_1_provider_call_is_refused_with_a_sentence_and_counted() -> None:
    name = subject()

    answer = decode_or_refuse(provider_call_decoder, msgspec.msgpack.encode(V1_PROVIDER_CALL), name)

    assert isinstance(answer, str)
    assert name in answer
    assert "could not be decoded by this version of Keyrail" in answer
    assert "adapter" in answer  # says what is missing
    assert refused(name, "undecodable") == 1
    assert refused(name, "newer_version") == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"not msgpack at all",
        msgspec.msgpack.encode([1, 2, 3]),
        msgspec.msgpack.encode({"v": 2}),
    ],
    ids=["empty", "reserved-byte", "text", "array", "missing-fields"],
)
def test_garbage_is_refused_and_counted(data: bytes) -> None:
    name = subject()

    answer = decode_or_refuse(route_request_decoder, data, name)

    assert isinstance(answer, str) and "could not be decoded" in answer
    assert refused(name, "undecodable") == 1


def test_a_newer_version_is_refused_with_advice_and_counted() -> None:
    name = subject()
    data = msgspec.msgpack.encode({**V1_ROUTE_REQUEST, "v": 99, "a_field_from_the_future": 1})

    answer = decode_or_refuse(route_request_decoder, data, name)

    assert isinstance(answer, str)
    assert "version-99" in answer and f"up to version {MESSAGE_VERSION}" in answer
    assert "upgrade every service" in answer
    assert refused(name, "newer_version") == 1
    assert refused(name, "undecodable") == 0


def test_the_current_version_is_accepted_and_the_next_is_not() -> None:
    name = subject()
    at_version = msgspec.msgpack.encode({**V1_ROUTE_REQUEST, "v": MESSAGE_VERSION})
    next_version = msgspec.msgpack.encode({**V1_ROUTE_REQUEST, "v": MESSAGE_VERSION + 1})

    assert isinstance(decode_or_refuse(route_request_decoder, at_version, name), RouteRequest)
    assert isinstance(decode_or_refuse(route_request_decoder, next_version, name), str)


def test_each_refusal_increments_the_counter() -> None:
    name = subject()

    for _ in range(3):
        decode_or_refuse(route_request_decoder, b"garbage", name)
    decode_or_refuse(route_request_decoder, msgspec.msgpack.encode({**V1_ROUTE_REQUEST, "v": 7}), name)

    assert refused(name, "undecodable") == 3
    assert refused(name, "newer_version") == 1
