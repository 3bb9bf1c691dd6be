"""Azure OpenAI request (reference §7): OpenAI's chat (or embeddings: embeddings.py) body, sent to
a deployment of the customer's resource with an `api-key` header.

The integration's credentials name the resource, the api-version and the deployment that serves
each model slug (`deployments`). Two URL shapes:

- deployment API: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version={v}`;
  the path names the deployment, so the body carries no `model`;
- v1 API (`api_version` is `v1`): `{endpoint}/openai/v1/chat/completions`, `"model": <deployment>`.

`{endpoint}` is `https://{resource}.openai.azure.com`, or the integration's custom host (a Foundry
endpoint, a gateway in front of Azure, a test server).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import AdapterCall, Credential, UpstreamError, UpstreamRequest
from keyrail_workers.adapters.openai.request import chat_headers, chat_payload

V1 = "v1"
# Azure resource names: letters, digits and hyphens. Anything else could move the host elsewhere.
_RESOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_json_encode = msgspec.json.Encoder().encode


def _refused(message: str, code: str) -> UpstreamError:
    return UpstreamError(FailureClass.MODEL_ACCESS, message, provider_code=code)


def _deployment(call: AdapterCall, resource: str, deployments: object) -> str | UpstreamError:
    mapping = deployments if isinstance(deployments, Mapping) else {}
    deployment = mapping.get(call.model)
    if isinstance(deployment, str) and deployment:
        return deployment
    mapped = ", ".join(f"'{slug}'" for slug in sorted(mapping)) or "no model"
    return _refused(
        f"Azure resource '{resource}' has no deployment mapped for model '{call.model}' (the "
        f"integration's credentials.deployments maps {mapped}). Add one, e.g. "
        f'"deployments": {{"{call.model}": "<deployment name>"}}, and rotate the credentials',
        "deployment_not_mapped",
    )


def build_azure_request(call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
    payload, client_wants_usage = chat_payload(call)
    return azure_request(call, credential, "chat/completions", payload, client_wants_usage)


def azure_request(
    call: AdapterCall,
    credential: Credential,
    path: str,
    payload: dict[str, Any],
    client_wants_usage: bool = False,
) -> UpstreamRequest | UpstreamError:
    """The request for `path` (`chat/completions`, `embeddings`) at the deployment the credentials
    map the model to, or why there is none."""
    resource = credential.get("resource_name")
    if not isinstance(resource, str) or not _RESOURCE_NAME.fullmatch(resource):
        return _refused(
            "credentials.resource_name is not an Azure resource name (letters, digits and hyphens: "
            "the <resource> of https://<resource>.openai.azure.com)",
            "invalid_resource_name",
        )
    api_version = credential.get("api_version")
    if not isinstance(api_version, str) or not api_version.strip():
        return _refused("credentials.api_version is missing (e.g. 2024-10-21, or v1)", "missing_api_version")
    deployment = _deployment(call, resource, credential.get("deployments"))
    if isinstance(deployment, UpstreamError):
        return deployment

    base = (call.base_url.rstrip("/") or f"https://{resource}.openai.azure.com") + "/openai"
    if api_version == V1:
        payload["model"] = deployment
        url = f"{base}/v1/{path}"
    else:
        payload.pop("model", None)
        url = (
            f"{base}/deployments/{quote(deployment, safe='')}/{path}"
            f"?api-version={quote(api_version, safe='')}"
        )
    quirks = msgspec.structs.replace(call.quirks, auth_header="api-key", auth_scheme="")
    return UpstreamRequest(
        method="POST",
        url=url,
        headers=chat_headers(call, credential, quirks),
        body=_json_encode(payload),
        client_wants_usage=client_wants_usage,
        not_found_hint=(
            f"The request addressed deployment '{deployment}' of Azure resource '{resource}' "
            f"(api-version {api_version}), which credentials.deployments maps model '{call.model}' to: "
            "check that this deployment exists there, or map the model to one that does"
        ),
    )
