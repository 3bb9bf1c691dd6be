"""For every available adapter: an upstream that says the stored credential and the custom auth
header back, in an error, must not get them into an error body, an activity row, the SQL view,
an admin response, the JetStream streams or the `keyrail up` log.

The upstream here is a small server in the test process that repeats every header it was sent,
in one error body every format reads its message from (OpenAI's and Azure's `error.message`,
Anthropic's typed error, Google's `google.rpc.Status`, Cohere's top-level `message`), so the checks
can fail: it first proves it really received both secrets. Custom hosts (OpenAI, Anthropic,
Cohere formats) point at it directly; Gemini and Azure are reached at their registry base URL, which
conftest points at the stack's mocks, so for them the server stands in behind a custom host of the
OpenAI-format kind is not possible: they get a wrong stored key instead, which their mocks refuse.

Anthropic's in-band stream `error` inside a 200, before and after content, is echoed too.

Vertex's secrets are a service-account key and the access token exchanged for it: its key file's
`token_uri` and its `custom_host` both point at the echo server, which issues a token of its own
(a secret too) and then says it back on every model call; the key's lines are searched for as well.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from keyrail_common.catalog import Catalog
from keyrail_common.registry import Operation, load_registry
from tests.integration.anthropic_support import Project, new_project
from tests.integration.test_secrets_never_leak import stream_messages
from tests.support.stack import KeyrailStack, MockUpstream
from tests.support.vertex import REGION, private_pem, rsa_key, service_account

pytestmark = pytest.mark.integration

SECRET_KEY = "sk-ECHOED-7d1c9b2a4f6e8d0c5b3a"
SECRET_HEADER = "org-hdr-ECHOED-91a3c5e7b9d2f4a6"
SECRET_TOKEN = "ya29.ECHOED-3e5a7c9b1d2f4e6a8c0b"  # what the echo server's token endpoint issues
# The service-account key's lines (the short last one could match by chance).
KEY_LINES = tuple(
    line for line in private_pem(rsa_key()).splitlines() if "PRIVATE KEY" not in line and len(line) >= 32
)
SECRETS = (SECRET_KEY, SECRET_HEADER, SECRET_TOKEN, *KEY_LINES)
REGISTRY = load_registry()
AVAILABLE = REGISTRY.pools()  # every adapter a worker serves
ECHOED_FORMATS = [a for a in AVAILABLE if a in REGISTRY.custom_host_formats]  # reachable at a custom host


@dataclass
class Received:
    headers: list[dict[str, str]] = field(default_factory=list)


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


class _EchoingUpstream(BaseHTTPRequestHandler):
    """A 401 saying every presented header; for an Anthropic stream whose last message says
    "before" or "after", a 200 whose in-band error (before or after a text delta) says them."""

    protocol_version = "HTTP/1.1"
    received: Received

    def do_POST(self) -> None:
        if self.path == "/token":  # Vertex's token exchange (a form body): a token to say back later
            self.rfile.read(int(self.headers["content-length"]))
            token = {"access_token": SECRET_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
            self._send(200, "application/json", json.dumps(token).encode())
            return
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.received.headers.append(headers)
        said = "rejected " + " ".join(f"{name}={value}" for name, value in sorted(headers.items()))
        last = (body.get("messages") or [{}])[-1].get("content")
        if self.path.endswith("/v1/messages") and body.get("stream") and last in ("before", "after"):
            self._send(200, "text/event-stream", _anthropic_stream(said, content=last == "after"))
            return
        error = {
            "type": "error",
            "id": "echo",
            "message": said,
            "error": {
                "type": "authentication_error",
                "code": 401,
                "status": "UNAUTHENTICATED",
                "message": said,
            },
        }
        self._send(401, "application/json", json.dumps(error).encode())

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _anthropic_stream(said: str, content: bool) -> bytes:
    start = {"message": {"id": "msg_echo", "model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}}
    events = [_event("message_start", start)]
    if content:
        events.append(
            _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        )
        events.append(
            _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
        )
    events.append(_event("error", {"error": {"type": "api_error", "message": said}}))
    return b"".join(events)


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[tuple[str, Received]]:
    received = Received()
    handler = type("Handler", (_EchoingUpstream,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _chat_model(provider: str) -> str:
    return next(m.model for m in Catalog.load_default().models_of(provider) if m.operation is Operation.CHAT)


def _integration(adapter: str, echo_url: str, upstream: MockUpstream) -> tuple[str, dict[str, Any]]:
    """(model, integration fields) reaching the echo server, or (Gemini, Azure) the stack's mock."""
    if adapter in REGISTRY.custom_host_formats:
        provider = adapter if REGISTRY.get(adapter) is not None else "openai"
        base = echo_url + ("/v1" if adapter == "openai" else "")
        fields = {"provider": provider, "custom_host": base, "api_format": adapter, "allow_http": True}
        return _chat_model(provider), {**fields, "credentials": {"api_key": SECRET_KEY}}
    if adapter == "vertex":
        account = service_account(token_uri=f"{echo_url}/token")
        fields = {"provider": "vertex", "custom_host": echo_url, "allow_http": True}
        return _chat_model("vertex"), {
            **fields,
            "credentials": {"service_account_json": account, "region": REGION},
        }
    credentials: dict[str, Any] = {"api_key": SECRET_KEY}
    if adapter == "azure":
        deployments = {"gpt-4o-mini": "my-deployment"}
        credentials |= {
            "resource_name": "my-resource",
            "api_version": "2024-10-21",
            "deployments": deployments,
        }
        return "gpt-4o-mini", {"provider": "azure", "credentials": credentials}
    return _chat_model(adapter), {"provider": adapter, "credentials": credentials}


def _chat(stack: KeyrailStack, project: Project, model: str, content: str, stream: bool) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
    headers = {"Authorization": f"Bearer {project.api_key}"}
    return httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def _no_secret_anywhere(stack: KeyrailStack, texts: list[str], slug: str) -> None:
    sql = stack.admin(
        "POST", "/admin/v1/sql", {"sql": f"SELECT * FROM keyrail.activity WHERE provider_slug = '{slug}'"}
    )
    assert sql.status_code == 200 and len(sql.json()["rows"]) >= 2
    integrations = stack.admin("GET", "/admin/v1/integrations")
    assert slug in integrations.text
    events = stack.admin("GET", f"/admin/v1/events?aggregate=integration/{slug}")
    assert events.status_code == 200 and "IntegrationCreated" in events.text
    for text in [*texts, sql.text, integrations.text, events.text]:
        for secret in SECRETS:
            assert secret not in text
    blob = b"\n".join(asyncio.run(stream_messages(stack.nats_url)))
    assert slug.encode() in blob  # the streams hold this integration's events...
    log = stack.log_path.read_bytes()
    assert slug.encode() in log  # ...and the log its traffic's lines...
    for secret in SECRETS:
        assert secret.encode() not in blob and secret.encode() not in log  # ...and neither a secret


@pytest.mark.parametrize("adapter", AVAILABLE)
def test_no_credential_or_custom_header_reaches_errors_rows_streams_admin_or_logs(
    stack: KeyrailStack, upstream: MockUpstream, echo_upstream: tuple[str, Received], adapter: str
) -> None:
    echo_url, received = echo_upstream
    project = new_project(stack, f"{adapter} echo")
    slug = f"{adapter}-echo"
    model, fields = _integration(adapter, echo_url, upstream)
    body = {
        "name": slug,
        "provider_slug": slug,
        "project_scope": [project.project_id],
        "enabled_models": [model],
        "custom_auth_headers": {"X-Org-Token": SECRET_HEADER},
        **fields,
    }
    created = stack.admin("POST", "/admin/v1/integrations", body)
    assert created.status_code == 201, created.text
    seen = len(received.headers)

    answers = [_chat(stack, project, f"{slug}/{model}", "plain", stream) for stream in (False, True)]

    if adapter in ECHOED_FORMATS:  # the upstream really got both secrets, and said them back
        assert [h["x-org-token"] for h in received.headers[seen:]] == [SECRET_HEADER] * 2
        assert all(SECRET_KEY in " ".join(h.values()) for h in received.headers[seen:])
    if adapter == "vertex":  # each model call carried the issued token (a 401 refreshes it once)
        calls = received.headers[seen:]
        assert len(calls) >= 2 and all(h["authorization"] == f"Bearer {SECRET_TOKEN}" for h in calls)
        assert all(h["x-org-token"] == SECRET_HEADER for h in calls)
    texts = [created.text]
    for answer in answers:
        assert answer.status_code == 502 and "rejected the stored credential" in answer.text, answer.text
        texts.append(answer.text)
        rows = stack.activity_rows(answer.headers["x-keyrail-request-id"])
        assert all(row["provider_slug"] == slug for row in rows)
        if adapter in ECHOED_FORMATS or adapter == "vertex":
            assert any("rejected " in row["error_message"] for row in rows)  # the message is kept...
        texts.append(json.dumps(rows))  # ...without what it echoed
    _no_secret_anywhere(stack, texts, slug)


@pytest.mark.parametrize(("content", "status"), [("before", 502), ("after", 200)])
def test_an_anthropic_in_band_stream_error_echoing_them_does_not_leak_them(
    stack: KeyrailStack,
    upstream: MockUpstream,
    echo_upstream: tuple[str, Received],
    content: str,
    status: int,
) -> None:
    project = new_project(stack, f"anthropic in-band echo {content}")
    slug = f"anthropic-inband-echo-{content}"
    model, fields = _integration("anthropic", echo_upstream[0], upstream)
    body = {
        "name": slug,
        "provider_slug": slug,
        "project_scope": [project.project_id],
        "enabled_models": [model],
        "custom_auth_headers": {"X-Org-Token": SECRET_HEADER},
        **fields,
    }
    assert stack.admin("POST", "/admin/v1/integrations", body).status_code == 201

    answer = _chat(stack, project, f"{slug}/{model}", content, stream=True)

    assert echo_upstream[1].headers[-1]["x-api-key"] == SECRET_KEY
    assert answer.status_code == status
    if content == "before":  # before any content: a failed attempt, answered as an error
        assert "failed mid-stream" in answer.text
    else:  # content reached the client, then the error event
        assert "Hi" in answer.text and '"error"' in answer.text
    rows = stack.activity_rows(answer.headers["x-keyrail-request-id"])
    assert any("rejected " in row["error_message"] for row in rows)
    _no_secret_anywhere(stack, [answer.text, json.dumps(rows)], slug)
