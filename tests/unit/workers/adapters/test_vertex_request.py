"""The Vertex adapter's requests and error mapping: the URL from region and project, the bearer
token, the Gemini body for Google's models and the Anthropic body (no `model`, `anthropic_version`
in it) for Claude, against the reference's Vertex fixtures; errors through the failure vocabulary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall, UpstreamError, UpstreamRequest
from tests.support.contracts import FIXTURES

ADAPTER = ADAPTERS["vertex"]
VERTEX = FIXTURES / "vertex"
TOKEN = "ya29.c.unit-test-access-token-0123456789"
PROJECT = "fixture-project-000000"
ROOT = "https://us-central1-aiplatform.googleapis.com/v1"


def credential(region: str = "us-central1", project: str = PROJECT) -> dict[str, Any]:
    return {"service_account_json": {"type": "service_account", "project_id": project}, "region": region}


def call(body: dict[str, Any], model: str, stream: bool = False, **extra: Any) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=model,
        body=json.dumps({"model": f"vertex-prod/{model}", **body}).encode(),
        stream=stream,
        base_url=extra.pop("base_url", ""),
        access_token=TOKEN,
        **extra,
    )


def build(c: AdapterCall, region: str = "us-central1") -> UpstreamRequest:
    request = ADAPTER.build_request(c, credential(region))
    assert isinstance(request, UpstreamRequest), request
    return request


GEMINI_CHAT = {
    "messages": [
        {"role": "system", "content": "Answer in one sentence."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image."},
                {"type": "image_url", "image_url": {"url": "gs://fixture-bucket/images/cat.jpg"}},
            ],
        },
    ],
    "max_tokens": 256,
    "temperature": 0.4,
}
CLAUDE_CHAT = {
    "messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Say hello in French."},
    ],
    "max_tokens": 512,
}


def test_a_gemini_model_gets_the_fixture_body_at_the_regional_generate_content_url() -> None:
    request = build(call(GEMINI_CHAT, "gemini-2.5-flash"))

    assert request.url == (
        f"{ROOT}/projects/{PROJECT}/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert json.loads(request.body) == json.loads(
        (VERTEX / "gemini_generate_content_request.json").read_text()
    )
    assert request.headers == {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def test_a_gemini_stream_goes_to_stream_generate_content_with_alt_sse() -> None:
    request = build(call(GEMINI_CHAT, "gemini-2.5-flash", stream=True))

    assert request.url.endswith("/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert request.headers["Accept"] == "text/event-stream"


def test_a_claude_model_gets_the_raw_predict_fixture_body_without_model() -> None:
    request = build(call(CLAUDE_CHAT, "claude-sonnet-4-5@20250929"), region="us-east5")
    body = json.loads(request.body)
    expected = json.loads((VERTEX / "anthropic_rawpredict_request.json").read_text())

    assert request.url == (
        "https://us-east5-aiplatform.googleapis.com/v1/projects/fixture-project-000000/locations/us-east5"
        "/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    )
    assert "model" not in body
    # The adapter sends the system prompt as one text block (Anthropic's other accepted shape).
    assert body.pop("system") == [{"type": "text", "text": expected.pop("system")}]
    assert body == expected
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "anthropic-version" not in {name.lower() for name in request.headers}
    assert "x-api-key" not in {name.lower() for name in request.headers}


def test_a_claude_stream_goes_to_stream_raw_predict() -> None:
    chat = {**CLAUDE_CHAT, "stream_options": {"include_usage": True}}
    request = build(call(chat, "claude-haiku-4-5@20251001", stream=True))

    assert request.url.endswith("/publishers/anthropic/models/claude-haiku-4-5@20251001:streamRawPredict")
    assert json.loads(request.body)["stream"] is True
    assert request.client_wants_usage is True


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("google/gemini-2.5-pro", "publishers/google/models/gemini-2.5-pro:generateContent"),
        (
            "anthropic/claude-opus-4-1@20250805",
            "publishers/anthropic/models/claude-opus-4-1@20250805:rawPredict",
        ),
        ("claude-opus-5-5", "publishers/anthropic/models/claude-opus-5-5:rawPredict"),
    ],
)
def test_a_publisher_prefix_or_a_claude_id_chooses_the_publisher(model: str, path: str) -> None:
    assert build(call(CLAUDE_CHAT, model)).url == f"{ROOT}/projects/{PROJECT}/locations/us-central1/{path}"


@pytest.mark.parametrize(
    ("region", "root"),
    [
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com/v1"),
        ("global", "https://aiplatform.googleapis.com/v1"),
        ("us", "https://aiplatform.us.rep.googleapis.com/v1"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com/v1"),
    ],
)
def test_the_api_host_follows_the_location(region: str, root: str) -> None:
    request = build(call(CLAUDE_CHAT, "gemini-2.5-flash"), region=region)

    assert request.url.startswith(f"{root}/projects/{PROJECT}/locations/{region}/publishers/google/")


def test_a_base_url_from_the_registry_or_an_override_replaces_the_google_host() -> None:
    request = build(call(CLAUDE_CHAT, "gemini-2.5-flash", base_url="http://127.0.0.1:9900/v1/"))

    assert request.url == (
        f"http://127.0.0.1:9900/v1/projects/{PROJECT}/locations/us-central1"
        "/publishers/google/models/gemini-2.5-flash:generateContent"
    )


@pytest.mark.parametrize(
    ("custom_host", "root"),
    [
        # A host stands for Google's: the API version is appended.
        (
            "https://us-central1-aiplatform-psc.p.googleapis.com",
            "https://us-central1-aiplatform-psc.p.googleapis.com/v1",
        ),
        ("https://psc.example.internal:8443/", "https://psc.example.internal:8443/v1"),
        (
            "https://proxy.example.internal/vertex",
            "https://proxy.example.internal/vertex/v1",
        ),  # a proxy's prefix
        # A path ending in an API version is the API base as given.
        ("https://proxy.example.internal/vertex/v1", "https://proxy.example.internal/vertex/v1"),
        ("https://proxy.example.internal/v1beta1/", "https://proxy.example.internal/v1beta1"),
        ("https://proxy.example.internal/v1x", "https://proxy.example.internal/v1x/v1"),  # not a version
    ],
)
def test_a_custom_host_is_the_api_host_and_v1_is_added_unless_its_path_names_a_version(
    custom_host: str, root: str
) -> None:
    for model, path in (
        ("gemini-2.5-flash", "google/models/gemini-2.5-flash:generateContent"),
        ("claude-sonnet-4-5@20250929", "anthropic/models/claude-sonnet-4-5@20250929:rawPredict"),
    ):
        request = build(call(CLAUDE_CHAT, model, base_url=custom_host), region="europe-west4")

        assert request.url == f"{root}/projects/{PROJECT}/locations/europe-west4/publishers/{path}"


def test_a_not_found_names_the_model_the_project_and_the_location_addressed() -> None:
    request = build(call(CLAUDE_CHAT, "claude-opus-4-1@20250805"), region="europe-west1")

    assert request.not_found_hint.startswith(
        f"The request addressed anthropic model 'claude-opus-4-1@20250805' of project '{PROJECT}' "
        "in location europe-west1 (the service account's project_id and credentials.region)"
    )


def test_custom_headers_are_sent_but_cannot_replace_the_bearer_token() -> None:
    headers = {"X-Org-Token": "org-1", "authorization": "Bearer not-ours"}
    for model in ("gemini-2.5-flash", "claude-sonnet-4-5@20250929"):
        request = build(call(CLAUDE_CHAT, model, custom_headers=headers))

        assert request.headers["X-Org-Token"] == "org-1"
        assert [v for k, v in request.headers.items() if k.lower() == "authorization"] == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("region", ["us-central1.evil.example", "US-CENTRAL1", "", None, "us-central1/x"])
def test_a_region_that_is_not_a_location_is_refused_before_any_request(region: object) -> None:
    refused = ADAPTER.build_request(call(CLAUDE_CHAT, "gemini-2.5-flash"), credential(region))  # type: ignore[arg-type]

    assert isinstance(refused, UpstreamError)
    assert refused.failure_class is FailureClass.MODEL_ACCESS
    assert "credentials.region" in refused.message


def test_another_publisher_is_unsupported_so_another_target_may_serve_it() -> None:
    refused = ADAPTER.build_request(call(CLAUDE_CHAT, "meta/llama-4"), credential())

    assert isinstance(refused, UpstreamError)
    assert refused.failure_class is FailureClass.UNSUPPORTED
    assert "'meta'" in refused.message


@pytest.mark.parametrize(
    ("fixture", "status", "failure_class", "code"),
    [
        ("error_401_unauthenticated.json", 401, FailureClass.CREDENTIAL, "ACCESS_TOKEN_EXPIRED"),
        ("error_403_permission_denied.json", 403, FailureClass.CREDENTIAL, "IAM_PERMISSION_DENIED"),
        ("error_404_model_not_found.json", 404, FailureClass.MODEL_ACCESS, "NOT_FOUND"),
        ("error_429_resource_exhausted.json", 429, FailureClass.RATE_LIMIT, "RESOURCE_EXHAUSTED"),
    ],
)
def test_vertex_errors_map_through_the_failure_vocabulary(
    fixture: str, status: int, failure_class: FailureClass, code: str
) -> None:
    body = (VERTEX / fixture).read_bytes()

    error = ADAPTER.classify_error(status, {}, body)

    assert (error.failure_class, error.upstream_status, error.provider_code) == (failure_class, status, code)
    assert error.message == json.loads(body)["error"]["message"]


def test_claude_s_own_errors_are_read_as_anthropic_s() -> None:
    body = (FIXTURES / "anthropic" / "error_overloaded.json").read_bytes()

    error = ADAPTER.classify_error(529, {}, body)

    assert (error.failure_class, error.provider_code) == (FailureClass.OVERLOADED, "overloaded_error")


def test_a_claude_answer_is_parsed_by_the_anthropic_adapter() -> None:
    body = (FIXTURES / "anthropic" / "messages_response.json").read_bytes()

    parsed = ADAPTER.parse_response(call(CLAUDE_CHAT, "claude-sonnet-4-5@20250929"), body)
    direct = ADAPTERS["anthropic"].parse_response(call(CLAUDE_CHAT, "claude-sonnet-4-5@20250929"), body)

    answer, expected = json.loads(parsed.body), json.loads(direct.body)
    answer.pop("created"), expected.pop("created")
    assert (answer, parsed.usage) == (expected, direct.usage)
    assert answer["object"] == "chat.completion"


def test_a_gemini_answer_is_parsed_by_the_gemini_adapter() -> None:
    body = (FIXTURES / "gemini" / "generate_content_response.json").read_bytes()

    parsed = ADAPTER.parse_response(call(CLAUDE_CHAT, "gemini-2.5-flash"), body)

    assert (
        parsed.usage == ADAPTERS["gemini"].parse_response(call(CLAUDE_CHAT, "gemini-2.5-flash"), body).usage
    )
    assert json.loads(parsed.body)["choices"][0]["message"]["content"]
