"""The data plane's operations in the OpenAPI document: chat completions, embeddings, models.

The request heads are the Structs the fast path decodes (chat.ChatRequestHead,
embeddings.EmbeddingsRequestHead); the upstream's answers are described by the Structs below,
which tests decode real answers with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from keyrail_ingress.chat import ChatRequestHead
from keyrail_ingress.embeddings import EmbeddingsRequestHead
from keyrail_ingress.models import Model, ModelList
from keyrail_ingress.openapi_parts import Content, Operation, Reply, error_example, error_reply, json_reply

OPENAI_CHAT_DOCS = "https://platform.openai.com/docs/api-reference/chat/create"


class ChatCompletion(msgspec.Struct):
    """OpenAI's CreateChatCompletionResponse: the provider's answer, in OpenAI's format whatever
    the provider's own wire format is. Only its head is listed here; the full schema is
    OpenAI's."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ChatCompletionChunk(msgspec.Struct):
    """OpenAI's CreateChatCompletionStreamResponse: one server-sent event of a stream, sent as
    `data: <chunk JSON>`; the stream ends with `data: [DONE]`. With
    `stream_options.include_usage` the last chunk has empty `choices` and the `usage`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


EXAMPLE_CHAT_REQUEST = {
    "model": "openai-dev-mock/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hello"}],
    "temperature": 0.2,
}
EXAMPLE_COMPLETION = {
    "id": "chatcmpl-AbC123",
    "object": "chat.completion",
    "created": 1764618065,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
}
EXAMPLE_STREAM = (
    'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1764618065,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant",'
    '"content":"Hello"},"finish_reason":null}]}\n\n'
    'data: {"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1764618065,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)

ROUTED_HEADERS = (
    "x-keyrail-request-id",
    "x-keyrail-provider-slug",
    "x-keyrail-model",
    "x-keyrail-attempts",
    "x-keyrail-overhead-ms",
)
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "x-keyrail-request-id": {
        "description": "The request's id in the activity log (`GET /admin/v1/activity?request_id=…`). "
        "On every data-plane answer, errors included.",
        "schema": {"type": "string"},
        "example": "req_6f1d0c2b3a4e5f60718293a4",
    },
    "x-keyrail-provider-slug": {
        "description": "The integration that answered (after any fallback).",
        "schema": {"type": "string"},
        "example": "openai-dev-mock",
    },
    "x-keyrail-model": {
        "description": "The model the upstream was asked for.",
        "schema": {"type": "string"},
        "example": "gpt-4o-mini",
    },
    "x-keyrail-attempts": {
        "description": "How many upstream calls were made (more than 1 after a fallback).",
        "schema": {"type": "integer"},
        "example": 1,
    },
    "x-keyrail-overhead-ms": {
        "description": "Milliseconds Keyrail added on top of the upstream's own time (for a stream: "
        "until the first byte). On every data-plane answer.",
        "schema": {"type": "number"},
        "example": 0.912,
    },
}


def _chat_error(description: str, example: Any) -> Reply:
    return error_reply(description, example, ROUTED_HEADERS)


_NO_GATEWAY_KEY = "No gateway key, or an unknown or revoked one."
_NO_GATEWAY_KEY_BODY = error_example(
    401, "Invalid or missing API key. Send 'Authorization: Bearer kr-…'.", "invalid_api_key"
)
GATEWAY_401 = _chat_error(_NO_GATEWAY_KEY, _NO_GATEWAY_KEY_BODY)  # with the request-id headers

CHAT_DESCRIPTION = f"""\
OpenAI's chat completions API: the official `openai` SDKs work unchanged with
`base_url="http://<host>:<port>/v1"` and a gateway key as `api_key`.

Keyrail reads only the head of the body (`ChatRequestHead`: `model`, `messages`, `stream`,
`stream_options`, `metadata`); every other field of OpenAI's CreateChatCompletionRequest passes
through to the provider untouched, and the answer is OpenAI's CreateChatCompletionResponse, or
with `"stream": true` server-sent events of CreateChatCompletionStreamResponse chunks ending
with `data: [DONE]` ({OPENAI_CHAT_DOCS}). Providers with another wire format are translated.

An error before the stream starts is an ordinary JSON error answer; an error mid-stream is sent
as a last `data:` event with the same error body."""

CHAT_PARAMETERS: tuple[Mapping[str, Any], ...] = (
    {
        "name": "x-keyrail-provider",
        "in": "header",
        "required": False,
        "description": "Pin one integration by its provider slug; the body's `model` may then be "
        "`<model>`, `<provider-slug>/<model>` or `<provider>/<model>`.",
        "schema": {"type": "string"},
        "example": "openai-dev-mock",
    },
    {
        "name": "x-keyrail-tags",
        "in": "header",
        "required": False,
        "description": "Comma-separated tags recorded on the request's activity rows (added to "
        "`metadata.tags`, if any).",
        "schema": {"type": "string"},
        "example": "batch-eval,team-search",
    },
    {
        "name": "x-keyrail-timeout-ms",
        "in": "header",
        "required": False,
        "description": "This request's budget in milliseconds, streams included (at most the "
        "deployment's KEYRAIL_REQUEST_TIMEOUT_S, 600 s by default). When a target hangs, the next one "
        "is tried within the budget: attempts without their own timeout share what is left of it.",
        "schema": {"type": "integer", "minimum": 1},
        "example": 30000,
    },
)


def _chat_operation(path: str, operation_id: str, summary: str, description: str) -> Operation:
    return Operation(
        method="POST",
        path=path,
        operation_id=operation_id,
        tag="Chat",
        summary=summary,
        description=description,
        auth="gateway",
        parameters=CHAT_PARAMETERS,
        request=Content(EXAMPLE_CHAT_REQUEST, ChatRequestHead),
        request_description="OpenAI's CreateChatCompletionRequest; Keyrail reads the fields listed.",
        external_docs=OPENAI_CHAT_DOCS,
        extra_types=(ChatCompletionChunk,),
        responses={
            200: Reply(
                "The completion (`application/json`), or with `stream: true` the stream of chunks "
                "(`text/event-stream`, see ChatCompletionChunk).",
                (
                    Content(EXAMPLE_COMPLETION, ChatCompletion),
                    Content(
                        EXAMPLE_STREAM,
                        schema={
                            "type": "string",
                            "description": "Server-sent events: `data: <ChatCompletionChunk JSON>` "
                            "per chunk, then `data: [DONE]`.",
                        },
                        media_type="text/event-stream",
                    ),
                ),
                ROUTED_HEADERS,
            ),
            400: _chat_error(
                "The body is not JSON, a field has the wrong type or `messages` is empty (`param` "
                "names the field), or the upstream rejected the body (`upstream_400`, its message).",
                error_example(400, "'messages' must contain at least one message.", param="messages"),
            ),
            401: GATEWAY_401,
            403: _chat_error(
                "The model is in the catalog but no integration in the key's project scope serves it "
                "(or the integration is out of scope, the model not enabled, the key's project "
                "archived: `project_archived`).",
                error_example(
                    403,
                    "'openai/gpt-4o-mini' is in the catalog, but no integration in this project's scope "
                    "serves it. Create an integration for provider 'openai' with this model enabled, "
                    "or widen its project_scope.",
                    "no_integration_in_scope",
                    "model",
                ),
            ),
            404: _chat_error(
                "Unknown model string or provider slug (the message says how to register it), or a "
                "disabled integration (`integration_disabled`).",
                error_example(
                    404,
                    "No integration with provider slug 'nobody'.",
                    "provider_not_found",
                    "x-keyrail-provider",
                ),
            ),
            413: _chat_error(
                "The body is larger than the bus accepts (NATS max_payload less the envelope).",
                error_example(
                    413,
                    "Request body is 1048600 bytes; this deployment accepts at most 983040 (the NATS "
                    "max_payload less the envelope). Raise max_payload on the NATS servers.",
                    "request_too_large",
                ),
            ),
            422: _chat_error(
                "The upstream could not process the body (its own message).",
                error_example(
                    422, "Upstream 'openai-dev-mock' answered HTTP 422: Invalid 'tools'.", "upstream_422"
                ),
            ),
            429: _chat_error(
                "The upstream rate-limited the request or its quota is used up (its own message).",
                error_example(
                    429,
                    "Upstream 'openai-dev-mock' answered HTTP 429: Rate limit reached for gpt-4o-mini.",
                    "upstream_429",
                ),
            ),
            500: _chat_error(
                "Keyrail itself failed; the error is logged.",
                error_example(
                    500, "Keyrail failed to handle this request; the error is logged.", "internal_error"
                ),
            ),
            502: _chat_error(
                "Every upstream attempt failed: unreachable, upstream 5xx, the upstream refused "
                "the integration's credentials (`upstream_401`), or they could not be read from Vault.",
                error_example(
                    502, "Could not reach upstream 'openai-dev-mock': ConnectError", "upstream_unreachable"
                ),
            ),
            503: _chat_error(
                "No router, or no worker of the target's pool, is running (answered at once, naming "
                "the pool); or the upstream is overloaded (its 503/529).",
                error_example(
                    503,
                    "No 'openai' provider worker is running for 'openai-dev-mock'. "
                    "Start one with: keyrail worker --providers openai",
                    "worker_pool_unavailable",
                ),
            ),
            504: _chat_error(
                "The upstream, or the gateway as a whole, did not answer within the timeout.",
                error_example(
                    504,
                    "Upstream 'openai-dev-mock' did not answer within 30.0s (this attempt's share of the "
                    "request's deadline).",
                    "upstream_timeout",
                ),
            ),
        },
    )


class Embeddings(msgspec.Struct):
    """OpenAI's CreateEmbeddingResponse, as the provider answered it. Only its head is listed here;
    the full schema is OpenAI's."""

    object: Literal["list"]
    data: list[dict[str, Any]]
    model: str
    usage: dict[str, Any]


EXAMPLE_EMBEDDINGS_REQUEST = {"model": "openai-dev-mock/text-embedding-3-small", "input": "Hello"}
EXAMPLE_EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093, 0.0158]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}


def _embeddings_operation(path: str, operation_id: str, summary: str, description: str) -> Operation:
    return Operation(
        method="POST",
        path=path,
        operation_id=operation_id,
        tag="Embeddings",
        summary=summary,
        description=description,
        auth="gateway",
        parameters=CHAT_PARAMETERS,
        request=Content(EXAMPLE_EMBEDDINGS_REQUEST, EmbeddingsRequestHead),
        request_description="OpenAI's CreateEmbeddingRequest; Keyrail reads the fields listed.",
        responses={
            200: Reply("The embeddings.", (Content(EXAMPLE_EMBEDDINGS, Embeddings),), ROUTED_HEADERS),
            400: _chat_error(
                "The body is not JSON, a field has the wrong type or `input` is empty (`param` names "
                "the field); the provider offers no embeddings; or the upstream rejected the body.",
                error_example(400, "'input' must not be empty.", param="input"),
            ),
            401: GATEWAY_401,
            404: _chat_error(
                "Unknown model string or provider slug.",
                error_example(404, "No integration with provider slug 'nobody'.", "provider_not_found"),
            ),
            502: _chat_error(
                "Every upstream attempt failed.",
                error_example(
                    502, "Could not reach upstream 'openai-dev-mock': ConnectError", "upstream_unreachable"
                ),
            ),
        },
    )


def _models_operation(path: str, operation_id: str, summary: str, description: str) -> Operation:
    example = ModelList(
        data=[
            Model(id="openai-dev-mock/gpt-4o-mini", owned_by="openai-dev-mock"),
            Model(id="openai/gpt-4o-mini", owned_by="openai"),
        ]
    )
    return Operation(
        method="GET",
        path=path,
        operation_id=operation_id,
        tag="Models",
        summary=summary,
        description=description,
        auth="gateway",
        responses={
            200: json_reply("Every model string the key's project can route.", ModelList, example),
            401: error_reply(_NO_GATEWAY_KEY, _NO_GATEWAY_KEY_BODY),
            403: error_reply(
                "The key's project is archived.",
                error_example(
                    403,
                    "This API key's project 'proj_3f2a9c1d5e6b7a80' is archived. An owner can restore it "
                    '(PATCH /admin/v1/projects/proj_3f2a9c1d5e6b7a80 with "archived": false).',
                    "project_archived",
                ),
            ),
        },
    )


DATA_PLANE_OPERATIONS: tuple[Operation, ...] = (
    _chat_operation(
        "/v1/chat/completions",
        "createChatCompletion",
        "Create a chat completion (OpenAI-compatible)",
        CHAT_DESCRIPTION,
    ),
    _chat_operation(
        "/api/v1/chat/completions",
        "createChatCompletionApiAlias",
        "Create a chat completion (alias)",
        "The same operation as `POST /v1/chat/completions`, for clients whose base URL ends in `/api/v1`.",
    ),
    _models_operation(
        "/v1/models",
        "listModels",
        "List the models this key can route (OpenAI-compatible)",
        "Every enabled catalog model of every integration in the key's project scope, as "
        "`<provider-slug>/<model>` (pins that integration), then every custom model of those "
        "integrations as `<provider-slug>/<model_slug>`, then once each as `<provider>/<model>` "
        "(any in-scope integration of that provider). The `openai` SDK's `client.models.list()` works.",
    ),
    _models_operation(
        "/api/v1/models",
        "listModelsApiAlias",
        "List the models this key can route (alias)",
        "The same operation as `GET /v1/models`, for clients whose base URL ends in `/api/v1`.",
    ),
    _embeddings_operation(
        "/v1/embeddings",
        "createEmbeddings",
        "Create embeddings (OpenAI-compatible)",
        "Routed like chat completions, to an integration whose provider offers embeddings; the "
        "answer is the provider's, with its usage and cost on the activity rows.",
    ),
    _embeddings_operation(
        "/api/v1/embeddings",
        "createEmbeddingsApiAlias",
        "Create embeddings (alias)",
        "The same operation as `POST /v1/embeddings`, for clients whose base URL ends in `/api/v1`.",
    ),
)
