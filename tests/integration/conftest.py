"""One real embedded stack and one mock upstream per test session."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from keyrail_cli.embedded_nats import nats_server_binary
from keyrail_common.registry import load_registry
from tests.support.stack import KeyrailStack, MockUpstream, free_port_block
from tests.support.vertex import public_pem, rsa_key

pytestmark = pytest.mark.integration

PROVIDER_KEY = "sk-upstream-" + secrets.token_hex(16)
GEMINI_KEY = "AIzaSy-upstream-" + secrets.token_hex(12)
MODEL = "gpt-4o-mini"
AZURE_PROVIDER = "azure"
# Every provider the registry serves with the OpenAI adapter, except OpenAI itself: their registry
# base URLs all point at the mock (each test's own integration tells them apart).
OPENAI_COMPATIBLE_FAMILY = sorted(
    e.name for e in load_registry().entries() if e.adapter == "openai" and e.name != "openai"
)


@dataclass
class Tenant:
    project_id: str
    api_key: str
    slug: str

    @property
    def model(self) -> str:
        return f"{self.slug}/{MODEL}"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keyrail")


@pytest.fixture(scope="session")
def upstream(workdir: Path) -> Iterator[MockUpstream]:
    mock = MockUpstream(PROVIDER_KEY, workdir / "mock-upstream.log")
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def gemini_upstream(workdir: Path) -> Iterator[MockUpstream]:
    """Gemini's upstream: its own mock process, reached through the registry's Gemini base URL (a
    custom host speaks only openai, anthropic or cohere, SPEC §2; production points the base URL at
    an egress gateway the same way)."""
    mock = MockUpstream(GEMINI_KEY, workdir / "mock-gemini.log")
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def vertex_upstream(workdir: Path) -> Iterator[MockUpstream]:
    """Vertex AI's upstream: the mock's token endpoint verifies JWTs with the public half of the
    tests' service-account key (tests/support/vertex.py); the registry's Vertex base URL points
    at its model endpoints, the key file's token_uri at its /token."""
    public_key = workdir / "vertex-public-key.pem"
    public_key.write_text(public_pem(rsa_key()))
    mock = MockUpstream(log_path=workdir / "mock-vertex.log", args=("--vertex-public-key", str(public_key)))
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def stack(
    workdir: Path, upstream: MockUpstream, gemini_upstream: MockUpstream, vertex_upstream: MockUpstream
) -> Iterator[KeyrailStack]:
    # The registry's default base URLs of the OpenAI-compatible providers point at the mock: an
    # integration without a custom host is then observed reaching "its provider" without any
    # traffic leaving the machine.
    # Azure's is empty (the host is its resource's): pointing it at the mock's root stands in for
    # https://<resource>.openai.azure.com, whose /openai/... routes the mock serves.
    overrides = workdir / "provider-overrides.json"
    gemini_url = f"http://127.0.0.1:{gemini_upstream.port}/v1beta"
    overrides.write_text(
        json.dumps(
            {
                **{provider: {"base_url": upstream.url} for provider in OPENAI_COMPATIBLE_FAMILY},
                AZURE_PROVIDER: {"base_url": upstream.url.removesuffix("/v1")},
                "gemini": {"base_url": gemini_url},
                "vertex": {"base_url": vertex_upstream.url},
            }
        )
    )
    running = KeyrailStack(
        workdir / "data", workdir / "keyrail-up.log", extra_env={"KEYRAIL_PROVIDERS_OVERRIDE": str(overrides)}
    )
    running.start()
    yield running
    running.stop()


def provision(stack: KeyrailStack, upstream: MockUpstream, slug: str) -> Tenant:
    project = stack.admin("POST", "/admin/v1/projects", {"name": f"project for {slug}"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    key = stack.admin("POST", f"/admin/v1/projects/{project_id}/keys", {"name": "tests"})
    assert key.status_code == 201, key.text
    integration = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": "Mock upstream",
            "provider": "openai",
            "provider_slug": slug,
            "project_scope": [project_id],
            "credentials": {"api_key": upstream.api_key},
            "custom_host": upstream.url,
            "api_format": "openai",
            "allow_http": True,
            "enabled_models": [MODEL],
        },
    )
    assert integration.status_code == 201, integration.text
    return Tenant(project_id=project_id, api_key=key.json()["key"], slug=slug)


@pytest.fixture(scope="session")
def tenant(stack: KeyrailStack, upstream: MockUpstream) -> Tenant:
    return provision(stack, upstream, "openai-test-mock")


@pytest.fixture
def client(stack: KeyrailStack, tenant: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=tenant.api_key, max_retries=0)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port_block(1)
    server = subprocess.Popen(
        [nats_server_binary(), "-js", "-sd", str(tmp_path / "js"), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):  # listening before the test connects: a refused first attempt is a warning
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}", server
    server.terminate()
    server.wait(10)


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
