"""Google Vertex AI for the mock upstream (provider reference §6): the OAuth2 token endpoint and
the Gemini and Claude model endpoints behind it.

- `POST /token`: the JWT-bearer grant of §6.3. The assertion must be an RS256 JWT whose
  signature verifies with `--vertex-public-key` (when given), whose `aud` is this endpoint's URL,
  `scope` cloud-platform, and whose `iat`/`exp` are current and at most an hour apart; otherwise
  Google's 400 `invalid_grant`. A good assertion gets a fresh `ya29.mock-...` token (3599 s).
- `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent` (and
  `:streamGenerateContent?alt=sse`): the Gemini mock's answers; `.../publishers/anthropic/models/
  {m}:rawPredict` / `:streamRawPredict`: the Anthropic mock's, for a body without `model` and with
  `anthropic_version: vertex-2023-10-16`; `.../publishers/google/models/{m}:predict`: the text
  embeddings API, `{"instances": [{"content": <text>, "task_type"?}], "parameters":
  {"outputDimensionality"?}}` answered with one `mock_embedding` per instance (of that many
  dimensions), a token per word in its `statistics.token_count`. Each needs `Authorization: Bearer
  <a token issued here and not revoked>`, else Google's 401 UNAUTHENTICATED (`ACCESS_TOKEN_EXPIRED`).
  The model routes are served under one leading path segment too (`/{prefix}/v1/projects/...`),
  as a proxy or Private Service Connect endpoint a `custom_host` names would be.
- `GET /vertex/stats`: how many token exchanges and model calls (and refused tokens) it saw;
  `GET /vertex/requests`: the last 100 model calls (path and JSON body), to check what was sent;
  `GET /vertex/tokens`: every token it issued (a leak test searches for them);
  `POST /vertex/revoke`: every token issued so far is refused from now on (an expired token,
  on demand: the gateway must fetch a new one once).

Faults as in the Gemini and Anthropic formats. Neither the token nor the assertion is ever echoed.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from keyrail_cli.mock_formats.anthropic import messages_answer
from keyrail_cli.mock_formats.gemini import fault_body, generate_answer
from keyrail_cli.mock_upstream import mock_embedding

if TYPE_CHECKING:
    from keyrail_cli.mock_upstream import MockContext

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ANTHROPIC_VERSION = "vertex-2023-10-16"
TOKEN_LIFETIME_S = 3599
_SKEW_S = 300
_JSON = "application/json"
_encode = msgspec.json.Encoder().encode
_UNAUTHENTICATED = _encode(
    {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "status": "UNAUTHENTICATED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_EXPIRED",
                    "domain": "googleapis.com",
                }
            ],
        }
    }
)
_BAD_SIGNATURE = "Invalid JWT Signature."
_CLOCK_SKEW = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


class _Claims(msgspec.Struct):
    iss: str = ""
    scope: str = ""
    aud: str = ""
    iat: int = 0
    exp: int = 0


class _Header(msgspec.Struct):
    alg: str = ""


class _ClaudeBody(msgspec.Struct):
    anthropic_version: str = ""
    model: str | None = None


class _Instance(msgspec.Struct, forbid_unknown_fields=True):
    content: str
    task_type: str | None = None
    title: str | None = None


class _PredictParameters(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    output_dimensionality: int | None = None
    auto_truncate: bool | None = None


class _PredictBody(msgspec.Struct, forbid_unknown_fields=True):
    instances: list[_Instance]
    parameters: _PredictParameters | None = None
    mock: dict[str, Any] | None = None


_decode_predict = msgspec.json.Decoder(_PredictBody).decode


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json(status: int, body: Any) -> web.Response:
    return web.Response(
        status=status, body=body if isinstance(body, bytes) else _encode(body), content_type=_JSON
    )


def _invalid_argument(message: str) -> web.Response:
    return _json(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def _invalid_grant(description: str) -> web.Response:
    return _json(400, {"error": "invalid_grant", "error_description": description})


class _Verifier:
    def __init__(self, public_key_pem: str) -> None:
        self._key: Any = None
        if public_key_pem:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._key = load_pem_public_key(public_key_pem.encode())

    def problem(self, assertion: str, audience: str) -> str:
        """Why Google would refuse this assertion, "" when it would not."""
        try:
            header_part, claims_part, signature = assertion.split(".")
            header = msgspec.json.decode(_b64decode(header_part), type=_Header)
            claims = msgspec.json.decode(_b64decode(claims_part), type=_Claims)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            return "Invalid JWT: not a JSON Web Token."
        if header.alg != "RS256":
            return _BAD_SIGNATURE
        if self._key is not None:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            try:
                signing_input = f"{header_part}.{claims_part}".encode()
                self._key.verify(_b64decode(signature), signing_input, padding.PKCS1v15(), hashes.SHA256())
            except (InvalidSignature, ValueError):
                return _BAD_SIGNATURE
        now = time.time()
        if not (claims.iat - _SKEW_S <= now < claims.exp + _SKEW_S) or claims.exp - claims.iat > 3600:
            return _CLOCK_SKEW
        if claims.aud != audience:
            return "Invalid JWT: audience is not this token endpoint."
        if claims.scope != SCOPE or not claims.iss:
            return "Invalid JWT: scope or issuer missing."
        return ""


def add_routes(app: web.Application, mock: MockContext) -> None:
    verifier = _Verifier(mock.vertex_public_key)
    issued: set[str] = set()
    ever_issued: list[str] = []
    stats = {"token_requests": 0, "model_requests": 0, "refused_tokens": 0}
    recent: deque[dict[str, Any]] = deque(maxlen=100)
    generate = generate_answer(mock)
    messages = messages_answer(mock)

    async def token(request: web.Request) -> web.Response:
        stats["token_requests"] += 1
        form = await request.post()
        if form.get("grant_type") != GRANT_TYPE:
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
        assertion = form.get("assertion")
        problem = (
            verifier.problem(assertion, str(request.url)) if isinstance(assertion, str) else "no assertion"
        )
        if problem:
            return _invalid_grant(problem)
        access_token = f"ya29.mock-{secrets.token_urlsafe(24)}"
        issued.add(access_token)
        ever_issued.append(access_token)
        return _json(
            200, {"access_token": access_token, "expires_in": TOKEN_LIFETIME_S, "token_type": "Bearer"}
        )

    async def unauthorised(request: web.Request) -> web.Response | None:
        stats["model_requests"] += 1
        try:
            recent.append({"path": request.path_qs, "body": msgspec.json.decode(await request.read())})
        except msgspec.DecodeError:
            recent.append({"path": request.path_qs, "body": None})
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if any(hmac.compare_digest(presented, known) for known in issued):
            return None
        stats["refused_tokens"] += 1
        return _json(401, _UNAUTHENTICATED)

    async def predict(request: web.Request) -> web.Response:
        try:
            body = _decode_predict(await request.read())
            plan = mock.plan(request.headers.get("x-mock-fault"), body.mock)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return _invalid_argument(f"Invalid JSON payload received. {exc}")
        if not body.instances:
            return _invalid_argument("instances must not be empty.")
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if plan.status:
            return _json(plan.status, fault_body(plan.status, plan.retry_after))
        dimensions = body.parameters.output_dimensionality if body.parameters else None
        answer = {
            "predictions": [
                {
                    "embeddings": {
                        "values": mock_embedding(i.content, dimensions or 8),
                        "statistics": {"token_count": len(i.content.split()), "truncated": False},
                    }
                }
                for i in body.instances
            ],
            "metadata": {"billableCharacterCount": sum(len(i.content) for i in body.instances)},
        }
        return _json(200, answer)

    async def gemini(request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method not in ("generateContent", "streamGenerateContent", "predict"):
            return _json(404, {"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}})
        if (refused := await unauthorised(request)) is not None:
            return refused
        if method == "predict":
            return await predict(request)
        return await generate(request, method == "streamGenerateContent")

    async def claude(request: web.Request) -> web.StreamResponse:
        if request.match_info["method"] not in ("rawPredict", "streamRawPredict"):
            return _json(404, {"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}})
        if (refused := await unauthorised(request)) is not None:
            return refused
        try:
            body = msgspec.json.decode(await request.read(), type=_ClaudeBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _json(
                400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(exc)}}
            )
        if body.anthropic_version != ANTHROPIC_VERSION or body.model is not None:
            message = f"anthropic_version must be {ANTHROPIC_VERSION} and model must not be set on Vertex"
            return _json(
                400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
            )
        return await messages(request, request.match_info["model"])

    async def show_stats(request: web.Request) -> web.Response:
        return _json(200, stats)

    async def requests(request: web.Request) -> web.Response:
        return _json(200, {"requests": list(recent)})

    async def tokens(request: web.Request) -> web.Response:
        return _json(200, {"tokens": ever_issued})

    async def revoke(request: web.Request) -> web.Response:
        issued.clear()
        return _json(200, {"revoked": True})

    app.router.add_post("/token", token)
    for prefix in ("", "/{prefix}"):
        models = prefix + "/v1/projects/{project}/locations/{location}/publishers"
        app.router.add_post(models + "/google/models/{model}:{method}", gemini)
        app.router.add_post(models + "/anthropic/models/{model}:{method}", claude)
    app.router.add_get("/vertex/stats", show_stats)
    app.router.add_get("/vertex/requests", requests)
    app.router.add_get("/vertex/tokens", tokens)
    app.router.add_post("/vertex/revoke", revoke)
