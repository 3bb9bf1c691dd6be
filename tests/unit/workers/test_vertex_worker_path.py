"""Vertex on the real worker path: `AttemptRunner` with a real `UpstreamPool` against the mock
upstream's Vertex format (in this process), whose token endpoint verifies every JWT with the
service account's public key and whose model endpoints take only the tokens it issued.

What is checked: one token exchange for fifty concurrent first requests, one (and only one) new
exchange after a 401, a clear credential failure naming the integration when the key is wrong,
neither the key nor a token in any error, embeddings through `:predict` (the exact path and body
the mock received, OpenAI's answer with the token counts), and an integration's custom host
(a path prefix, `/v1` added) addressed for model calls while the token still comes from the
key file's token_uri.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from keyrail_cli.mock_upstream import DEFAULT_REPLY, FaultPlan, build_app, mock_embedding
from keyrail_common.failures import FailureClass
from keyrail_common.messages import ProviderCall, Usage
from keyrail_common.registry import Operation
from tests.support.openai_schema import validate_component
from tests.support.vertex import REGION, private_pem, public_pem, rsa_key, service_account
from tests.support.worker_path import Outcome, WorkerPath, provider_call

GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
PROMPT: dict[str, Any] = {"messages": [{"role": "user", "content": "Say hello to the mock"}]}
PROJECT = service_account()["project_id"]


@contextlib.asynccontextmanager
async def vertex_mock() -> AsyncIterator[str]:
    app = build_app(FaultPlan(), vertex_public_key=public_pem(rsa_key()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def stats(root: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"{root}/vertex/stats") as response:
        counts: dict[str, int] = await response.json()
        return counts


async def revoke(root: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{root}/vertex/revoke") as response:
        assert response.status == 200


def secret(root: str, headers: dict[str, str] | None = None, **changes: Any) -> dict[str, object]:
    changes.setdefault("token_uri", f"{root}/token")
    stored: dict[str, object] = {"service_account_json": service_account(**changes), "region": REGION}
    if headers:
        stored["custom_auth_headers"] = headers
    return stored


def call(root: str, model: str = GEMINI, stream: bool = False, **body: Any) -> ProviderCall:
    return provider_call("vertex", "vertex", model, {**PROMPT, **body}, f"{root}/v1", stream=stream)


@contextlib.asynccontextmanager
async def worker(
    root: str, headers: dict[str, str] | None = None, **changes: Any
) -> AsyncIterator[WorkerPath]:
    path = WorkerPath(secret(root, headers, **changes))
    try:
        yield path
    finally:
        path.close()


def answer(outcome: Outcome) -> dict[str, Any]:
    (result,) = outcome.replies
    assert result.ok, result.error
    loaded: dict[str, Any] = json.loads(result.body)
    return loaded


@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
async def test_a_completion_exchanges_one_token_and_answers_in_openai_format(model: str) -> None:
    async with vertex_mock() as root, worker(root) as path:
        first, second = await path.run(call(root, model)), await path.run(call(root, model))

        assert answer(first)["choices"][0]["message"]["content"] == DEFAULT_REPLY
        assert answer(second)["object"] == "chat.completion"
        assert await stats(root) == {"token_requests": 1, "model_requests": 2, "refused_tokens": 0}


@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
async def test_a_stream_is_translated_by_the_model_s_own_adapter(model: str) -> None:
    async with vertex_mock() as root, worker(root) as path:
        outcome = await path.run(call(root, model, stream=True))

        assert outcome.replies[0].ok, outcome.replies[0].error
        deltas = [
            json.loads(c)["choices"][0]["delta"].get("content") or ""
            for c in outcome.chunks
            if c != b"[DONE]"
        ]
        assert "".join(d for d in deltas) == DEFAULT_REPLY
        assert outcome.end is not None and outcome.end.error is None


async def test_fifty_concurrent_first_requests_make_one_token_request() -> None:
    async with vertex_mock() as root, worker(root) as path:
        outcomes = await asyncio.gather(*(path.run(call(root)) for _ in range(50)))

        assert all(answer(o)["choices"][0]["message"]["content"] == DEFAULT_REPLY for o in outcomes)
        assert (await stats(root))["token_requests"] == 1


async def test_a_401_drops_the_token_and_makes_exactly_one_new_exchange() -> None:
    async with vertex_mock() as root, worker(root) as path:
        answer(await path.run(call(root)))
        await revoke(root)  # the cached token is now refused, as an expired one is

        outcomes = await asyncio.gather(*(path.run(call(root, CLAUDE)) for _ in range(10)))

        assert all(answer(o)["object"] == "chat.completion" for o in outcomes)
        counts = await stats(root)
        assert counts["token_requests"] == 2
        assert counts["refused_tokens"] == 10  # each request once, with the revoked token


async def test_a_second_401_is_the_answer_a_credential_failure_after_one_refresh() -> None:
    async with vertex_mock() as root, worker(root, {"x-mock-fault": "status=401"}) as path:
        outcome = await path.run(call(root))

        (result,) = outcome.replies
        assert result.error is not None
        assert result.error.error_class is FailureClass.CREDENTIAL
        assert (await stats(root))["token_requests"] == 2


async def test_a_key_the_token_endpoint_refuses_is_a_credential_failure_naming_the_integration() -> None:
    other_key = private_pem(rsa_key("not-the-service-account-key"))
    async with vertex_mock() as root, worker(root, private_key=other_key) as path:
        outcome = await path.run(call(root))

        (result,) = outcome.replies
        assert result.error is not None
        assert result.error.error_class is FailureClass.CREDENTIAL
        message = result.error.message
        assert "'vertex-test'" in message and "Invalid JWT Signature." in message
        assert "PUT /admin/v1/integrations/vertex-test/credentials" in message
        assert other_key not in message and "PRIVATE KEY" not in message
        assert await stats(root) == {"token_requests": 1, "model_requests": 0, "refused_tokens": 0}


async def sent(root: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{root}/vertex/requests") as response:
        recorded: list[dict[str, Any]] = (await response.json())["requests"]
        return recorded


def embeddings_call(base_url: str, body: dict[str, Any], model: str = "text-embedding-005") -> ProviderCall:
    return provider_call("vertex", "vertex", model, body, base_url, operation=Operation.EMBEDDINGS)


async def test_embeddings_go_to_predict_and_come_back_as_openais_with_the_token_counts() -> None:
    texts = ["the first text", "another one"]
    body = {"input": texts, "dimensions": 4, "encoding_format": "float", "task_type": "RETRIEVAL_DOCUMENT"}
    async with vertex_mock() as root, worker(root) as path:
        outcome = await path.run(embeddings_call(f"{root}/v1", body))

        [request] = await sent(root)
        assert request == {
            "path": f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/"
            "text-embedding-005:predict",
            "body": {
                "instances": [{"content": t, "task_type": "RETRIEVAL_DOCUMENT"} for t in texts],
                "parameters": {"outputDimensionality": 4},
            },
        }
        reply = answer(outcome)
        validate_component("CreateEmbeddingResponse", reply)
        assert [d["embedding"] for d in reply["data"]] == [mock_embedding(t, 4) for t in texts]
        assert reply["usage"] == {"prompt_tokens": 5, "total_tokens": 5}  # a token per word
        assert outcome.replies[0].usage == Usage(prompt_tokens=5)
        assert await stats(root) == {"token_requests": 1, "model_requests": 1, "refused_tokens": 0}


@pytest.mark.parametrize("operation", [Operation.CHAT, Operation.EMBEDDINGS])
async def test_a_custom_host_gets_the_model_calls_and_the_token_uri_the_token_exchange(
    operation: Operation,
) -> None:
    async with vertex_mock() as root, worker(root) as path:
        custom_host = f"{root}/psc-endpoint"  # a host with a proxy's prefix: /v1 is appended
        if operation is Operation.EMBEDDINGS:
            outcome = await path.run(embeddings_call(custom_host, {"input": "hello"}))
            assert answer(outcome)["object"] == "list"
        else:
            chat = provider_call("vertex", "vertex", CLAUDE, PROMPT, custom_host)
            assert answer(await path.run(chat))["choices"][0]["message"]["content"] == DEFAULT_REPLY

        [request] = await sent(root)
        method = "text-embedding-005:predict" if operation is Operation.EMBEDDINGS else f"{CLAUDE}:rawPredict"
        publisher = "google" if operation is Operation.EMBEDDINGS else "anthropic"
        assert request["path"] == (
            f"/psc-endpoint/v1/projects/{PROJECT}/locations/{REGION}/publishers/{publisher}/models/{method}"
        )
        assert await stats(root) == {"token_requests": 1, "model_requests": 1, "refused_tokens": 0}


async def test_a_token_endpoint_that_cannot_be_reached_is_a_connection_failure() -> None:
    async with vertex_mock() as root, worker(root, token_uri="http://127.0.0.1:9/token") as path:
        outcome = await path.run(call(root))

        (result,) = outcome.replies
        assert result.error is not None
        assert result.error.error_class is FailureClass.CONNECTION


async def test_an_upstream_that_echoes_the_token_or_the_key_has_them_scrubbed_from_the_error() -> None:
    token = "ya29.echoed-access-token-0123456789"
    key = private_pem(rsa_key())

    async def issue(request: web.Request) -> web.Response:
        return web.json_response({"access_token": token, "expires_in": 3599})

    async def echo(request: web.Request) -> web.Response:
        said = f"bad request with {request.headers['Authorization']} and {key}"
        return web.json_response(
            {"error": {"code": 400, "message": said, "status": "INVALID_ARGUMENT"}}, status=400
        )

    app = web.Application()
    app.router.add_post("/token", issue)
    app.router.add_post("/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    root = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with worker(root) as path:
            outcome = await path.run(call(root))
    finally:
        await runner.cleanup()

    (result,) = outcome.replies
    assert result.error is not None
    assert "Bearer [redacted]" in result.error.message
    assert token not in result.error.message and "PRIVATE KEY" not in result.error.message
