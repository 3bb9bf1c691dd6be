"""Rotation end to end: the first request after `PUT …/credentials` returns uses the new key.

The upstream accepts only the new key, so the request before the rotation (old key) is refused
by it, the one right after succeeds, and rotating back is refused again at once: each worker
drops its cached copy on `CredentialsRotated` before the admin call answers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.control_plane import api_key, integration, project
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

OLD_KEY = "sk-old-" + secrets.token_hex(12)
NEW_KEY = "sk-new-" + secrets.token_hex(12)
SLUG = "openai-rotation"


@pytest.fixture(scope="module")
def accepts_new_key_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockUpstream]:
    workdir: Path = tmp_path_factory.mktemp("rotation")
    mock = MockUpstream(NEW_KEY, workdir / "mock.log")
    mock.start()
    yield mock
    mock.stop()


def _ask(client: openai.OpenAI) -> int:
    try:
        client.chat.completions.create(
            model=f"{SLUG}/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _rotate(stack: KeyrailStack, key: str) -> None:
    path = f"/admin/v1/integrations/{SLUG}"
    answer = stack.change("PUT", f"{path}/credentials", {"credentials": {"api_key": key}}, of=path)
    assert answer.status_code == 200, answer.text
    assert answer.json()["fingerprint"] == f"…{key[-4:]}"


def test_the_first_request_after_a_rotation_uses_the_new_key(
    stack: KeyrailStack, accepts_new_key_only: MockUpstream
) -> None:
    home = project(stack, "rotation")
    integration(stack, accepts_new_key_only, SLUG, [home], credentials={"api_key": OLD_KEY})
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key(stack, home)["key"], max_retries=0)
    assert _ask(client) == 502  # the old key, refused by the upstream: a stale-credential failure
    _rotate(stack, NEW_KEY)
    assert _ask(client) == 200  # the very next request
    _rotate(stack, OLD_KEY)
    assert _ask(client) == 502
