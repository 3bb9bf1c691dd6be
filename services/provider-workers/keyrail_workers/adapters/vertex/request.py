"""Vertex AI requests (provider reference §6.1, §6.2): where a model lives and what it is sent.

The project comes from the service account, the location from the integration's `region`, the
API base from the location, or from the target's base URL: the integration's `custom_host` (a
Private Service Connect endpoint, an egress proxy) or the registry's base URL an operator's override
set. That base URL stands for Google's host: `/v1` is appended unless its path already ends in an
API version (`/v1`, `/v1beta1`), so `https://psc.example` and `https://proxy.example/vertex/v1`
both work. (The token endpoint is the key file's `token_uri` either way.) A model is Google's (Gemini:
`publishers/google/models/{model}:generateContent`, the Gemini adapter's body) or Anthropic's
(Claude: `publishers/anthropic/models/{model}:rawPredict`, the Anthropic adapter's body without
`model` and with `anthropic_version` in it). `publisher/model` names the publisher explicitly; a
bare id starting with `claude` is Anthropic's, any other Google's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.registry import Operation
from keyrail_common.service_account import ServiceAccountError, check_location, vertex_base_url
from keyrail_workers.adapters.anthropic.request import client_wants_usage, translate
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    UntranslatableRequest,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.gemini import GeminiAdapter
from keyrail_workers.adapters.vertex.embeddings import embeddings_request

GOOGLE = "google"
ANTHROPIC = "anthropic"
PUBLISHERS = (GOOGLE, ANTHROPIC)
ANTHROPIC_VERSION = "vertex-2023-10-16"  # Claude on Vertex: in the body, not a header (§6.2)
_GEMINI = GeminiAdapter()
_json_decode = msgspec.json.decode
_json_encode = msgspec.json.Encoder().encode
_API_VERSION = re.compile(r"/v\d+(?:(?:alpha|beta)\d*)?$")


def publisher_of(model: str) -> tuple[str, str]:
    """(publisher, model id) of a Vertex model string."""
    publisher, _, name = model.rpartition("/")
    if publisher:
        return publisher, name
    return (ANTHROPIC if model.startswith("claude") else GOOGLE), model


@functools.lru_cache(maxsize=256)  # per request, yet one value per integration: parsed once
def api_root(base_url: str, location: str) -> str:
    """The API base, `{host}/v1`: Google's for the location, else the base URL's (see the top)."""
    base = base_url.rstrip("/")
    if not base:
        return vertex_base_url(location)
    return base if _API_VERSION.search(urlsplit(base).path) else f"{base}/v1"


def _refused(
    message: str, code: str, failure_class: FailureClass = FailureClass.MODEL_ACCESS
) -> UpstreamError:
    return UpstreamError(failure_class, message, provider_code=code)


class Address(msgspec.Struct, frozen=True):
    project: str
    location: str
    base: str  # `{api base}/projects/{project}/locations/{location}/publishers/{publisher}`


def publisher_base(call: AdapterCall, credential: Credential, publisher: str) -> Address | UpstreamError:
    """Where the publisher's models of this project and location are."""
    account = credential.get("service_account_json")
    project = account.get("project_id") if isinstance(account, Mapping) else None
    if not isinstance(project, str) or not project:
        return _refused(
            "credentials.service_account_json has no project_id",
            "invalid_service_account",
            FailureClass.CREDENTIAL,
        )
    try:  # the location becomes part of a host name: only a well-formed one is used
        location = check_location(credential.get("region"), "credentials.region")
    except ServiceAccountError as exc:
        return _refused(str(exc), "invalid_region")
    root = api_root(call.base_url, location)
    base = f"{root}/projects/{quote(project, safe=':')}/locations/{location}/publishers/{publisher}"
    return Address(project, location, base)


def bearer_headers(call: AdapterCall) -> dict[str, str]:
    """The custom headers (but none that would double ours), then the token."""
    ours = {"authorization", "content-type", "accept"}
    headers = {name: value for name, value in call.custom_headers.items() if name.lower() not in ours}
    headers["Authorization"] = f"Bearer {call.access_token}"
    return headers


def gemini_request(call: AdapterCall, base: str) -> UpstreamRequest | UpstreamError:
    """The Gemini adapter's request, addressed to the Vertex publisher path with the bearer token.
    The Gemini adapter appends `/models/{model}:generateContent` to the base it is given."""
    vertex_call = msgspec.structs.replace(call, base_url=base, custom_headers={})
    request = _GEMINI.build_request(vertex_call, {})  # no api_key: no x-goog-api-key header
    if isinstance(request, UpstreamError):
        return request
    request.headers.update(bearer_headers(call))
    return request


def claude_request(call: AdapterCall, base: str, model: str) -> UpstreamRequest:
    body: dict[str, Any] = _json_decode(call.body)
    payload = translate(body, model, call.stream)
    del payload["model"]  # the URL names it
    payload["anthropic_version"] = ANTHROPIC_VERSION
    method = "streamRawPredict" if call.stream else "rawPredict"
    headers = bearer_headers(call)
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "text/event-stream" if call.stream else "application/json"
    return UpstreamRequest(
        method="POST",
        url=f"{base}/models/{quote(model, safe='@')}:{method}",
        headers=headers,
        body=_json_encode(payload),
        client_wants_usage=client_wants_usage(body, call.stream),
    )


def _embeddings_request(
    call: AdapterCall, base: str, publisher: str, model: str
) -> UpstreamRequest | UpstreamError:
    if publisher != GOOGLE:
        return _refused(
            f"Vertex AI serves embeddings of Google's models only, not {publisher} model '{model}'",
            "unsupported_operation",
            FailureClass.UNSUPPORTED,
        )
    try:
        return embeddings_request(call, base, model, bearer_headers(call))
    except UntranslatableRequest as exc:
        return UpstreamError(
            exc.failure_class, str(exc), provider_code="untranslatable_request", param=exc.param
        )


def build_vertex_request(call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
    publisher, model = publisher_of(call.model)
    if publisher not in PUBLISHERS:
        return _refused(
            f"Vertex AI publisher '{publisher}' is not served by this version "
            "(only google and anthropic models)",
            "unsupported_publisher",
            FailureClass.UNSUPPORTED,
        )
    address = publisher_base(call, credential, publisher)
    if isinstance(address, UpstreamError):
        return address
    if call.operation is Operation.EMBEDDINGS:
        built = _embeddings_request(call, address.base, publisher, model)
    elif publisher == ANTHROPIC:
        built = claude_request(call, address.base, model)
    else:
        built = gemini_request(msgspec.structs.replace(call, model=model), address.base)
    if isinstance(built, UpstreamError):
        return built
    request = built
    request.not_found_hint = (
        f"The request addressed {publisher} model '{model}' of project '{address.project}' in location "
        f"{address.location} (the service account's project_id and credentials.region): check that the "
        "model is offered there and enabled for the project"
    )
    return request
