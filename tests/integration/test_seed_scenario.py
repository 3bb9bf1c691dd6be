"""The seed's promise end to end, with the official `openai` SDK, plain and streaming.

A fine-tuned custom model, registered on one integration with its base model's schema and its own
prices, is the first target of a fallback config behind a virtual model; the second target is a
catalog model on an Anthropic-format integration. With the fine-tune's endpoint down (its server
stopped), requests fall through to Anthropic and the activity log shows both attempts with their
provider slugs and the request row the slug that served it; with the endpoint back, traffic
returns to the custom model, priced with its own prices."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.integration.anthropic_support import ANTHROPIC_KEY, add_anthropic_integration, new_project
from tests.integration.anthropic_support import MODEL as CLAUDE
from tests.support.control_plane import created, integration
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

FINE_TUNE_KEY = "sk-ft-" + secrets.token_hex(12)
FT_SLUG, ANTHROPIC_SLUG = "openai-ft-classifier", "anthropic-prod-general"
FT_MODEL, ALIAS, CONFIG = "ft-classifier-v3", "classifier", "classifier-chain"
FT_PRICES = {"input": Decimal("0.30"), "output": Decimal("1.20")}


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockUpstream]:
    workdir: Path = tmp_path_factory.mktemp("seed")
    mock = MockUpstream(FINE_TUNE_KEY, workdir / "mock-fine-tune.log")
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def anthropic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    mock = MockUpstream(ANTHROPIC_KEY, tmp_path_factory.mktemp("seed-anthropic") / "mock.log")
    mock.start()
    yield f"http://127.0.0.1:{mock.port}"
    mock.stop()


@pytest.fixture(scope="module")
def client(stack: KeyrailStack, fine_tune: MockUpstream, anthropic: str) -> openai.OpenAI:
    project = new_project(stack, "seed scenario")
    integration(stack, fine_tune, FT_SLUG, [project.project_id], enabled_models="none")
    add_anthropic_integration(stack, project, ANTHROPIC_SLUG, anthropic)
    custom = {
        "model_slug": FT_MODEL,
        "base_model": "openai/gpt-4o-mini",
        "input_price_per_mtok": float(FT_PRICES["input"]),
        "output_price_per_mtok": float(FT_PRICES["output"]),
    }
    created(stack.admin("POST", f"/admin/v1/integrations/{FT_SLUG}/custom-models", custom))
    chain = {
        "id": CONFIG,
        "project_scope": [project.project_id],
        "strategy": "fallback",
        "targets": [
            {"provider_slug": FT_SLUG, "model": FT_MODEL, "timeout_ms": 5000},
            {"provider_slug": ANTHROPIC_SLUG, "model": CLAUDE},
        ],
    }
    created(stack.admin("POST", "/admin/v1/configs", chain))
    alias = {"alias": ALIAS, "project_scope": [project.project_id], "target": {"config": CONFIG}}
    created(stack.admin("POST", "/admin/v1/virtual-models", alias))
    return project.client(stack)


def ask(client: openai.OpenAI, stream: bool) -> tuple[str, dict[str, str]]:
    """The answer's text and headers, for a plain or a streaming request to the alias."""
    messages: list[Any] = [{"role": "user", "content": "classify: the invoice is late"}]
    if not stream:
        plain = client.chat.completions.with_raw_response.create(model=ALIAS, messages=messages)
        return plain.parse().choices[0].message.content or "", dict(plain.headers)
    streamed = client.chat.completions.with_raw_response.create(model=ALIAS, messages=messages, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    return text, dict(streamed.headers)


def rows_of(
    stack: KeyrailStack, request_id: str, attempts: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = stack.activity_rows(request_id, expected=attempts + 1)
    attempt_rows = sorted((r for r in rows if r["kind"] == "attempt"), key=lambda r: r["attempt"])
    (request_row,) = [r for r in rows if r["kind"] == "request"]
    return attempt_rows, request_row


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_the_custom_model_falls_back_to_anthropic_while_down_and_serves_again_when_back(
    stack: KeyrailStack, client: openai.OpenAI, fine_tune: MockUpstream, stream: bool
) -> None:
    fine_tune.stop()  # the fine-tune's endpoint is down: its connections are refused
    try:
        text, headers = ask(client, stream)
        assert text and headers["x-keyrail-provider-slug"] == ANTHROPIC_SLUG
        assert headers["x-keyrail-attempts"] == "2" and headers["x-keyrail-config"] == CONFIG
        attempts, request = rows_of(stack, headers["x-keyrail-request-id"], 2)
        assert [(r["provider_slug"], r["model"], r["status"], r["fallback_position"]) for r in attempts] == [
            (FT_SLUG, FT_MODEL, "error", 0),
            (ANTHROPIC_SLUG, CLAUDE, "ok", 1),
        ]
        assert attempts[0]["error_class"] == "connection"
        assert request["provider_slug"] == ANTHROPIC_SLUG and request["status"] == "ok"
        assert request["virtual_model"] == ALIAS and request["config_id"] == CONFIG
    finally:
        fine_tune.start()  # back on the same port

    text, headers = ask(client, stream)
    assert text and headers["x-keyrail-provider-slug"] == FT_SLUG and headers["x-keyrail-model"] == FT_MODEL
    assert headers["x-keyrail-attempts"] == "1"
    (attempt,), request = rows_of(stack, headers["x-keyrail-request-id"], 1)
    assert request["provider_slug"] == FT_SLUG and attempt["price_version"].startswith(f"custom:{FT_SLUG}/")
    expected = (
        attempt["prompt_tokens"] * FT_PRICES["input"] + attempt["completion_tokens"] * FT_PRICES["output"]
    ) / 1_000_000
    assert attempt["prompt_tokens"] > 0 and Decimal(str(attempt["cost_usd"])) == expected
