"""Streaming fallback has a commit point: the first content event that reaches the client.

Before it, a failing target is fallen back from and the client sees one clean stream from the
next; after it, an upstream failure ends the stream with an OpenAI-shaped error event, nothing
is retried elsewhere (the client already holds part of an answer), and the request's activity
row says `stream_cut`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.integration.conftest import PROVIDER_KEY
from tests.support.control_plane import api_key, integration, project
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def _mock(workdir: Path, name: str, *args: str) -> Iterator[MockUpstream]:
    mock = MockUpstream(PROVIDER_KEY, workdir / f"{name}.log", args=args)
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockUpstream]:
    yield from _mock(tmp_path_factory.mktemp("down"), "down", "--status", "503")


@pytest.fixture(scope="module")
def cutting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockUpstream]:
    yield from _mock(tmp_path_factory.mktemp("cut"), "cut", "--drop", "midstream")


def _client(stack: KeyrailStack, first: MockUpstream, second: MockUpstream, name: str) -> openai.OpenAI:
    """A project with two integrations of one provider: `openai/<model>` tries them in slug order."""
    home = project(stack, f"streaming fallback {name}")
    integration(stack, first, f"openai-0sf-{name}-1", [home])
    integration(stack, second, f"openai-0sf-{name}-2", [home])
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key(stack, home)["key"], max_retries=0)


def test_a_stream_failing_before_any_content_falls_back_to_one_clean_stream(
    stack: KeyrailStack, upstream: MockUpstream, down: MockUpstream
) -> None:
    client = _client(stack, down, upstream, "before")
    raw = client.chat.completions.with_raw_response.create(
        model=f"openai/{MODEL}", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert raw.headers["x-keyrail-provider-slug"] == "openai-0sf-before-2"
    assert raw.headers["x-keyrail-attempts"] == "2"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices[0].finish_reason == "stop"
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"], expected=3)
    attempts = sorted((r for r in rows if r["kind"] == "attempt"), key=lambda r: r["attempt"])
    assert [(r["provider_slug"], r["error_class"]) for r in attempts] == [
        ("openai-0sf-before-1", "overloaded"),
        ("openai-0sf-before-2", ""),
    ]
    (request,) = [r for r in rows if r["kind"] == "request"]
    assert request["status"] == "ok" and request["provider_slug"] == "openai-0sf-before-2"


def test_a_stream_cut_after_content_ends_with_an_error_event_and_is_not_retried_elsewhere(
    stack: KeyrailStack, upstream: MockUpstream, cutting: MockUpstream
) -> None:
    client = _client(stack, cutting, upstream, "after")
    raw = client.chat.completions.with_raw_response.create(
        model=f"openai/{MODEL}", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as cut:
        for chunk in raw.parse():
            received.append(chunk)
    assert received, "the content before the cut reached the client"
    assert "stream" in str(cut.value.message).lower()
    assert raw.headers["x-keyrail-attempts"] == "1"
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"], expected=2)
    assert {r["provider_slug"] for r in rows} == {"openai-0sf-after-1"}  # the second was never tried
    (request,) = [r for r in rows if r["kind"] == "request"]
    assert request["error_class"] == "stream_cut" and request["status"] != "ok"
