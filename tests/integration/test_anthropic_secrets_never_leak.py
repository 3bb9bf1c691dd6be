"""An Anthropic upstream that echoes the credential and the custom auth header back, in an error
response and inside a 200 stream: neither reaches an error body, an activity row, the SQL
view, an admin response or the `keyrail up` log.

The upstream here is a small Anthropic-format server in the test process that repeats what it
was sent, so the checks can fail: it first proves it really received both secrets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.integration.anthropic_support import MODEL, Project, add_anthropic_integration, new_project
from tests.support.stack import KeyrailStack

pytestmark = pytest.mark.integration

SECRET_KEY = "sk-ant-api03-ECHOED-7d1c9b2a4f6e8d0c"
SECRET_HEADER = "org-hdr-ECHOED-91a3c5e7b9d2f4a6"
SLUG = "anthropic-echo"


@dataclass
class Received:
    headers: list[dict[str, str]] = field(default_factory=list)


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


class _EchoingAnthropic(BaseHTTPRequestHandler):
    """401 for a plain request; for a stream, an in-band error before or after a text delta. Every
    message repeats the presented key and custom header, as careless upstreams do."""

    protocol_version = "HTTP/1.1"
    received: Received

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.received.headers.append({name.lower(): value for name, value in self.headers.items()})
        said = (
            f"rejected x-api-key {self.headers['x-api-key']} with X-Org-Token {self.headers['x-org-token']}"
        )
        if not body.get("stream"):
            error = {"type": "error", "error": {"type": "authentication_error", "message": said}}
            self._send(401, "application/json", json.dumps(error).encode())
            return
        start = {
            "message": {"id": "msg_echo", "model": MODEL, "usage": {"input_tokens": 3, "output_tokens": 1}}
        }
        events = [_event("message_start", start)]
        if body["messages"][-1]["content"] == "after":
            events.append(
                _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            )
            events.append(
                _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
            )
        events.append(_event("error", {"error": {"type": "api_error", "message": said}}))
        self._send(200, "text/event-stream", b"".join(events))

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[tuple[str, Received]]:
    received = Received()
    handler = type("Handler", (_EchoingAnthropic,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echoed(stack: KeyrailStack, echo_upstream: tuple[str, Received]) -> Project:
    project = new_project(stack, "anthropic echo")
    add_anthropic_integration(
        stack,
        project,
        SLUG,
        echo_upstream[0],
        credentials={"api_key": SECRET_KEY},
        custom_auth_headers={"X-Org-Token": SECRET_HEADER},
    )
    return project


def _chat(stack: KeyrailStack, project: Project, content: str, stream: bool) -> httpx.Response:
    body = {"model": f"{SLUG}/{MODEL}", "messages": [{"role": "user", "content": content}], "stream": stream}
    headers = {"Authorization": f"Bearer {project.api_key}"}
    return httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def test_no_echoed_anthropic_secret_reaches_errors_rows_admin_or_logs(
    stack: KeyrailStack, echoed: Project, echo_upstream: tuple[str, Received]
) -> None:
    secrets = (SECRET_KEY, SECRET_HEADER)
    rejected = _chat(stack, echoed, "plain", stream=False)
    before = _chat(stack, echoed, "before", stream=True)
    after = _chat(stack, echoed, "after", stream=True)

    # The upstream really got both secrets and really said them back.
    received = echo_upstream[1].headers
    assert len(received) == 3
    assert all(h["x-api-key"] == SECRET_KEY and h["x-org-token"] == SECRET_HEADER for h in received)
    assert rejected.status_code == 502 and "rejected the stored credential" in rejected.text
    assert before.status_code == 502 and "failed mid-stream" in before.text  # api_error before content
    assert after.status_code == 200 and '"error"' in after.text and "Hi" in after.text  # after content
    texts = [rejected.text, before.text, after.text]

    for response in (rejected, before, after):
        rows = stack.activity_rows(response.headers["x-keyrail-request-id"])
        assert any("rejected x-api-key" in row["error_message"] for row in rows)  # the message is kept...
        texts.append(json.dumps(rows))  # ...without what it echoed
    sql = stack.admin(
        "POST", "/admin/v1/sql", {"sql": f"SELECT * FROM keyrail.activity WHERE provider_slug = '{SLUG}'"}
    )
    assert sql.status_code == 200 and len(sql.json()["rows"]) >= 6
    texts.append(sql.text)
    integrations = stack.admin("GET", "/admin/v1/integrations")
    assert SLUG in integrations.text
    texts.append(integrations.text)

    for text in texts:
        for secret in secrets:
            assert secret not in text
    log = stack.log_path.read_bytes()
    assert SLUG.encode() in log  # the log has this traffic's lines...
    for secret in secrets:
        assert secret.encode() not in log  # ...and none carries a secret
