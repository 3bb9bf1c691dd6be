"""Azure OpenAI (reference §7): OpenAI's chat answer at a resource's deployments.

- `POST /openai/deployments/{deployment}/chat/completions?api-version=...` (deployment API) and
  `POST /openai/v1/chat/completions` with `"model": <deployment>` (v1 API); OpenAI's embeddings
  answer at `POST /openai/deployments/{deployment}/embeddings?api-version=...`;
- the key in the `api-key` header (checked against `--require-key`), Azure's 401 body otherwise;
- the deployment API without `api-version` is Azure's 404 "Resource not found";
- the known deployments are `DEPLOYMENTS` (fixed names, so a test or a rehearsal can address a
  wrong one on purpose): any other name is Azure's 404 `DeploymentNotFound`;
- answers report the deployment's model, and a stream starts with Azure's `prompt_filter_results`
  chunk (empty `choices`, id and model) that adapters must skip.

Faults (`x-mock-fault`, a `"mock"` body field) work as on the OpenAI routes: the answer is theirs.
"""

from __future__ import annotations

import hmac
import itertools
import secrets

import msgspec
from aiohttp import web

from keyrail_cli.mock_upstream import MockContext, chat_answer, embeddings_answer

# deployment name → the model it runs (what Azure reports in `model`)
DEPLOYMENTS = {
    "my-deployment": "gpt-4o-mini-2024-07-18",
    "prod-gpt4o-mini": "gpt-4o-mini-2024-07-18",
    "prod-embed-small": "text-embedding-3-small",
}

_encode = msgspec.json.Encoder().encode
_SAFE = {"filtered": False, "severity": "safe"}
_PROMPT_FILTER_CHUNK = (
    b"data: "
    + _encode(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {
                    "prompt_index": 0,
                    "content_filter_results": {
                        "hate": _SAFE,
                        "self_harm": _SAFE,
                        "sexual": _SAFE,
                        "violence": _SAFE,
                        "jailbreak": {"filtered": False, "detected": False},
                    },
                }
            ],
        }
    )
    + b"\n\n"
)
_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)
_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again."
)


class _ModelOnly(msgspec.Struct):
    model: str = ""


def _azure_error(status: int, code: str, message: str, request_id: str) -> web.Response:
    return web.Response(
        status=status,
        body=_encode({"error": {"code": code, "message": message}}),
        headers={"Content-Type": "application/json", "apim-request-id": request_id},
    )


def add_routes(app: web.Application, mock: MockContext) -> None:
    counter = itertools.count(1)
    boot = secrets.token_hex(3)
    expected_key = mock.require_key.encode() if mock.require_key is not None else None

    def refused(request: web.Request, request_id: str) -> web.Response | None:
        if expected_key is None:
            return None
        presented = request.headers.get("api-key", "").encode("utf-8", "surrogateescape")
        if presented and hmac.compare_digest(presented, expected_key):
            return None
        return _azure_error(401, "401", _ACCESS_DENIED, request_id)

    async def answer(
        request: web.Request, deployment: str, body: bytes, request_id: str
    ) -> web.StreamResponse:
        model = DEPLOYMENTS.get(deployment)
        if model is None:
            return _azure_error(404, "DeploymentNotFound", _NO_DEPLOYMENT, request_id)
        return await chat_answer(request, mock, body, request_id, model=model, preamble=_PROMPT_FILTER_CHUNK)

    async def deployment_chat(request: web.Request) -> web.StreamResponse:
        request_id = f"chatcmpl-azure-mock-{boot}-{next(counter)}"
        if (denied := refused(request, request_id)) is not None:
            return denied
        if not request.query.get("api-version"):
            return _azure_error(404, "404", "Resource not found", request_id)
        return await answer(request, request.match_info["deployment"], await request.read(), request_id)

    async def v1_chat(request: web.Request) -> web.StreamResponse:
        request_id = f"chatcmpl-azure-mock-{boot}-{next(counter)}"
        if (denied := refused(request, request_id)) is not None:
            return denied
        body = await request.read()
        try:
            deployment = msgspec.json.decode(body, type=_ModelOnly).model
        except (msgspec.DecodeError, msgspec.ValidationError):
            return await chat_answer(request, mock, body, request_id)  # its 400 names what is wrong
        return await answer(request, deployment, body, request_id)

    async def deployment_embeddings(request: web.Request) -> web.Response:
        request_id = f"azure-embeddings-mock-{boot}-{next(counter)}"
        if (denied := refused(request, request_id)) is not None:
            return denied
        if not request.query.get("api-version"):
            return _azure_error(404, "404", "Resource not found", request_id)
        model = DEPLOYMENTS.get(request.match_info["deployment"])
        if model is None:
            return _azure_error(404, "DeploymentNotFound", _NO_DEPLOYMENT, request_id)
        return await embeddings_answer(request, mock, await request.read(), request_id, model=model)

    app.router.add_post("/openai/deployments/{deployment}/chat/completions", deployment_chat)
    app.router.add_post("/openai/v1/chat/completions", v1_chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", deployment_embeddings)
