"""The OpenAI adapter's upstream request: the client's body with the upstream model and the provider's
quirks (from the registry) applied, usage always requested on streams, the credential as auth header."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation, Quirks, load_registry
from keyrail_workers.adapters.base import AdapterCall, UpstreamRequest
from keyrail_workers.adapters.openai import OpenAIAdapter
from tests.support.adapters import expected_openai_body as expected_body
from tests.support.contracts import FIXTURES

REGISTRY = load_registry()
ADAPTER = OpenAIAdapter()  # the concrete type: its build and parse never fail
OPENAI = FIXTURES / "openai"
API_KEY = "sk-test-0123456789abcdefghij"
OPENAI_COMPATIBLE = sorted(e.name for e in REGISTRY.entries() if e.adapter == "openai")
REQUEST_FIXTURES = sorted(
    [*OPENAI.glob("*_request.json"), *(FIXTURES / "openai_compatible").glob("*_request.json")]
)


def quirks_of(provider: str) -> Quirks:
    entry = REGISTRY.get(provider)
    return entry.quirks if entry else Quirks()  # as the runner does for a provider it does not know


def base_url_of(provider: str) -> str:
    entry = REGISTRY.get(provider)
    return entry.base_url if entry else ""


def adapter_call(
    provider: str,
    body: bytes,
    *,
    model: str = "gpt-4.1-mini",
    stream: bool = False,
    base_url: str | None = None,
    custom_headers: Mapping[str, str] | None = None,
    quirks: Quirks | None = None,
) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=model,
        body=body,
        stream=stream,
        base_url=base_url_of(provider) if base_url is None else base_url,
        quirks=quirks_of(provider) if quirks is None else quirks,
        custom_headers=custom_headers or {},
    )


def build(
    provider: str = "openai",
    body: dict[str, Any] | None = None,
    *,
    credential: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[UpstreamRequest, dict[str, Any]]:
    payload = body if body is not None else {"model": "openai-prod/gpt-4.1-mini", "messages": []}
    call = adapter_call(provider, json.dumps(payload).encode(), **options)
    request = ADAPTER.build_request(call, {"api_key": API_KEY} if credential is None else credential)
    return request, json.loads(request.body)


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OPENAI / name).read_bytes())
    return loaded


# --- the contract, over every fixture request and every OpenAI-compatible provider --------------


def test_there_are_fixture_requests_and_openai_compatible_providers() -> None:
    assert len(REQUEST_FIXTURES) >= 3
    assert {"openai", "groq", "perplexity", "together"} <= set(OPENAI_COMPATIBLE)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", OPENAI_COMPATIBLE)
@pytest.mark.parametrize("path", REQUEST_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_requests_for_every_openai_compatible_provider(
    path: Path, provider: str, stream: bool
) -> None:
    original: dict[str, Any] = {**json.loads(path.read_bytes()), "stream": stream}
    original["model"] = f"{provider}-prod/some-model"  # what the client sent: the gateway's model string
    quirks = quirks_of(provider)
    call = adapter_call(
        provider,
        json.dumps(original).encode(),
        model="upstream-model-id",
        stream=stream,
        custom_headers={"X-Org-Token": "org-token-1"},
    )

    request = ADAPTER.build_request(call, {"api_key": API_KEY})
    sent = json.loads(request.body)

    assert request.method == "POST"
    assert request.url == base_url_of(provider).rstrip("/") + "/chat/completions"
    assert sent == expected_body(original, quirks, "upstream-model-id", stream)
    assert request.headers[quirks.auth_header] == quirks.auth_scheme + API_KEY
    assert request.headers["X-Org-Token"] == "org-token-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == ("text/event-stream" if stream else "application/json")
    client_asked = bool((original.get("stream_options") or {}).get("include_usage"))
    assert request.client_wants_usage is (stream and client_asked)


# --- what the contract means, spelled out -----------------------------------------------------------


def test_non_streaming_request_replaces_only_the_model_and_keeps_every_other_field() -> None:
    original = fixture("chat_request.json")
    original["model"] = "openai-prod-chat/gpt-4.1-mini"

    request, sent = build("openai", dict(original), model="gpt-4.1-mini")

    assert sent == {**original, "model": "gpt-4.1-mini"}
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers == {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    assert request.client_wants_usage is False
    assert "stream_options" not in sent


def test_unknown_fields_pass_through_to_openai_family_upstreams() -> None:
    body = {
        "model": "x",
        "messages": [{"role": "user", "content": "hi", "name": "alice"}],
        "reasoning_effort": "low",
        "verbosity": "high",
        "some_vendor_extension": {"nested": [1, 2]},
        "logprobs": True,
    }

    _, sent = build("openai", dict(body), model="gpt-5")

    assert sent == {**body, "model": "gpt-5"}


def test_groq_drops_the_parameters_it_rejects_and_keeps_the_rest() -> None:
    body = {
        "model": "groq-prod/llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "hi"}],
        "logprobs": True,
        "top_logprobs": 3,
        "logit_bias": {"1234": -100},
        "temperature": 0.3,
        "seed": 7,
    }

    request, sent = build("groq", body, model="llama-3.3-70b-versatile")

    assert sent == {
        "model": "llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "seed": 7,
    }
    assert request.url == "https://api.groq.com/openai/v1/chat/completions"


def test_groq_drops_message_names_it_rejects() -> None:
    body = {"model": "x", "messages": [{"role": "user", "content": "hi", "name": "alice"}]}

    _, sent = build("groq", body, model="llama-3.3-70b-versatile")

    assert sent["messages"] == [{"role": "user", "content": "hi"}]


def test_perplexity_drops_tools_and_tool_choice() -> None:
    body = fixture("tool_calls_request.json")

    request, sent = build("perplexity", body, model="sonar")

    assert "tools" not in sent and "tool_choice" not in sent
    assert sent["parallel_tool_calls"] is True
    assert sent["messages"] == body["messages"]
    assert request.url == "https://api.perplexity.ai/chat/completions"


REASONING_REJECTS = {"presence_penalty": 0.5, "frequency_penalty": 0.5, "stop": ["END"]}


@pytest.mark.parametrize(
    ("model", "dropped"),
    [
        ("grok-4-1-fast-reasoning", {"presence_penalty", "frequency_penalty", "stop"}),
        ("grok-4.20-0309-reasoning", {"presence_penalty", "frequency_penalty", "stop", "reasoning_effort"}),
        ("grok-4.20-0309-non-reasoning", {"reasoning_effort"}),
        ("grok-4-1-fast-non-reasoning", set()),  # not a prefix match of the reasoning variant
        ("grok-4.5", set()),
    ],
)
def test_xai_drops_what_only_some_of_its_models_reject(model: str, dropped: set[str]) -> None:
    body = {"model": "x", "messages": [], "reasoning_effort": "low", **REASONING_REJECTS}

    _, sent = build("xai", dict(body), model=model)

    assert sent == {k: v for k, v in {**body, "model": model}.items() if k not in dropped}


@pytest.mark.parametrize(
    ("temperature", "sent_temperature"), [(0, 0.01), (0.0, 0.01), (0.7, 0.7), (1, 1), (1.6, 1.0), (2, 1.0)]
)
def test_minimax_temperature_is_clamped_into_its_range_and_n_dropped(
    temperature: float, sent_temperature: float
) -> None:
    body = {"model": "x", "messages": [], "temperature": temperature, "n": 1}

    _, sent = build("minimax", body, model="MiniMax-M2.7")

    assert sent == {"model": "MiniMax-M2.7", "messages": [], "temperature": sent_temperature}


def test_a_temperature_that_is_not_a_number_is_left_for_the_upstream_to_refuse() -> None:
    _, sent = build("minimax", {"model": "x", "messages": [], "temperature": "hot"}, model="MiniMax-M2.7")

    assert sent["temperature"] == "hot"


def test_openai_keeps_parameters_groq_would_drop() -> None:
    body = {"model": "x", "messages": [], "logprobs": True, "top_logprobs": 2, "logit_bias": {"1": 1}}

    _, sent = build("openai", dict(body), model="gpt-4.1")

    assert sent == {**body, "model": "gpt-4.1"}


def test_an_overridden_registry_entry_changes_what_is_dropped() -> None:
    quirks = Quirks(drop_params=frozenset({"seed"}), drop_message_fields=frozenset({"name"}))
    body = {"model": "x", "messages": [{"role": "user", "content": "hi", "name": "a"}], "seed": 1, "n": 1}

    _, sent = build("together", body, model="m", quirks=quirks)

    assert sent == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1}


def test_stream_without_stream_options_asks_for_usage_but_client_did_not() -> None:
    request, sent = build("openai", {"model": "x", "messages": [], "stream": True}, stream=True)

    assert sent["stream_options"] == {"include_usage": True}
    assert request.client_wants_usage is False
    assert request.headers["Accept"] == "text/event-stream"
    assert sent["stream"] is True


@pytest.mark.parametrize(
    ("stream_options", "client_wants_usage", "expected_options"),
    [
        (None, False, {"include_usage": True}),
        ({}, False, {"include_usage": True}),
        ({"include_usage": False}, False, {"include_usage": True}),
        ({"include_usage": True}, True, {"include_usage": True}),
        (
            {"include_usage": False, "include_obfuscation": False},
            False,
            {"include_usage": True, "include_obfuscation": False},
        ),
        ({"include_obfuscation": False}, False, {"include_usage": True, "include_obfuscation": False}),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "groq", "together"])
def test_stream_forces_include_usage_while_remembering_what_the_client_asked(
    provider: str, stream_options: Any, client_wants_usage: bool, expected_options: dict[str, Any]
) -> None:
    body = {"model": "x", "messages": [], "stream": True, "stream_options": stream_options}

    request, sent = build(provider, body, stream=True)

    assert request.client_wants_usage is client_wants_usage
    assert sent["stream_options"] == expected_options


def test_a_provider_without_stream_usage_is_not_asked_for_it() -> None:
    quirks = Quirks(stream_usage=False)

    request, sent = build(
        "openai", {"model": "x", "messages": [], "stream": True}, stream=True, quirks=quirks
    )
    asked, asked_sent = build(
        "openai",
        {"model": "x", "messages": [], "stream": True, "stream_options": {"include_usage": True}},
        stream=True,
        quirks=quirks,
    )

    assert "stream_options" not in sent and request.client_wants_usage is False
    assert asked_sent["stream_options"] == {"include_usage": True}  # the client's own, untouched
    assert asked.client_wants_usage is True


@pytest.mark.parametrize("provider", OPENAI_COMPATIBLE)
def test_default_url_is_the_registry_base_url_plus_chat_completions(provider: str) -> None:
    request, _ = build(provider)

    assert request.url == base_url_of(provider).rstrip("/") + "/chat/completions"
    assert request.url.count("//") == 1  # no doubled slash (Nebius's base URL ends with one)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://llm.example.com/v1", "https://llm.example.com/v1/chat/completions"),
        ("https://llm.example.com/v1/", "https://llm.example.com/v1/chat/completions"),
        ("http://127.0.0.1:8080/openai/v1", "http://127.0.0.1:8080/openai/v1/chat/completions"),
        ("https://vllm.internal:8443/v1//", "https://vllm.internal:8443/v1/chat/completions"),
    ],
)
def test_the_calls_base_url_is_the_one_used(base_url: str, expected: str) -> None:
    # The router puts the custom host (or the registry's default) in the target; the adapter uses it.
    request, _ = build("groq", base_url=base_url)

    assert request.url == expected


def test_unknown_provider_uses_the_generic_bearer_quirks() -> None:
    assert quirks_of("my-vllm") == Quirks()
    assert Quirks().drop_params == frozenset()

    request, sent = build(
        "my-vllm",
        {"model": "x", "messages": [], "logprobs": True},
        base_url="https://vllm.example.com/v1",
    )

    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent["logprobs"] is True


def test_the_auth_header_and_scheme_come_from_the_quirks() -> None:
    quirks = Quirks(auth_header="api-key", auth_scheme="")

    request, _ = build("openai", quirks=quirks)

    assert request.headers["api-key"] == API_KEY
    assert "Authorization" not in request.headers


@pytest.mark.parametrize("credential", [{}, {"api_key": ""}, {"api_key": None}])
def test_no_api_key_means_no_auth_header(credential: dict[str, Any]) -> None:
    # A custom host without a key (e.g. a local vLLM); its custom headers may carry the auth.
    request, _ = build("openai", credential=credential, custom_headers={"X-Gateway-Token": "gw-123"})

    assert "Authorization" not in request.headers
    assert request.headers["X-Gateway-Token"] == "gw-123"


def test_custom_auth_headers_are_forwarded() -> None:
    request, _ = build(
        "openai",
        {"model": "x", "messages": []},
        base_url="https://gw.example.com/v1",
        model="gpt-4.1",
        custom_headers={"x-gateway-token": "gw-123", "x-team": "ml"},
    )

    assert request.headers == {
        "x-gateway-token": "gw-123",
        "x-team": "ml",
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def test_custom_headers_do_not_override_auth_content_type_or_accept() -> None:
    custom = {"Authorization": "Bearer attacker", "Content-Type": "text/plain", "Accept": "*/*"}

    request, _ = build("groq", model="llama", stream=True, custom_headers=custom)

    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"


def test_no_custom_headers_means_only_the_standard_three() -> None:
    request, _ = build("openai", {"messages": []}, model="m")

    assert set(request.headers) == {"Authorization", "Content-Type", "Accept"}


def test_the_adapter_answers_chat_in_the_openai_dialect() -> None:
    assert ADAPTER.name == "openai"
    assert Dialect.OPENAI in ADAPTER.dialects
    assert Operation.CHAT in ADAPTER.operations
