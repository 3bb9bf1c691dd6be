"""`provider/model` strings route through every in-scope integration, in order, falling back."""

from __future__ import annotations

import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import MODEL, provision
from tests.support.stack import KeyrailStack, MockUpstream, free_port_block

pytestmark = pytest.mark.integration


def test_catalog_model_falls_back_from_an_unreachable_integration(
    stack: KeyrailStack, upstream: MockUpstream
) -> None:
    # "openai-fallback-b" serves the mock; "openai-fallback-a" (tried first, slug order) is a closed port.
    tenant = provision(stack, upstream, "openai-fallback-b")
    dead = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": "dead",
            "provider": "openai",
            "provider_slug": "openai-fallback-a",
            "project_scope": [tenant.project_id],
            "credentials": {"api_key": "sk-dead"},
            "custom_host": f"http://127.0.0.1:{free_port_block(1)}/v1",
            "allow_http": True,
            "enabled_models": [MODEL],
        },
    )
    assert dead.status_code == 201, dead.text
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=f"openai/{MODEL}", messages=[{"role": "user", "content": "two words"}]
    )
    assert raw.parse().choices[0].message.content == DEFAULT_REPLY
    assert raw.headers["x-keyrail-provider-slug"] == "openai-fallback-b"
    assert raw.headers["x-keyrail-attempts"] == "2"
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"], expected=3)
    attempts = sorted((r for r in rows if r["kind"] == "attempt"), key=lambda r: r["attempt"])
    assert [(r["provider_slug"], r["status"], r["fallback_position"]) for r in attempts] == [
        ("openai-fallback-a", "error", 0),
        ("openai-fallback-b", "ok", 1),
    ]
    assert attempts[0]["error_class"] == "connection"
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    assert request_row["provider_slug"] == "openai-fallback-b" and request_row["attempt"] == 2
