"""Per-integration TLS through the whole stack: a self-hosted upstream behind a private CA that
asks for client certificates (`keyrail mock-upstream --tls-cert/--tls-key/--tls-client-ca`).

An integration with the CA bundle and a client certificate is answered; one without the bundle
fails verification (never a silent downgrade); one without the certificate is refused by the
server. Unusable PEM is a 400 naming the field when the integration is saved, and nothing is
stored. The client key is in Vault only: not in an admin response or the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.stack import KeyrailStack, MockUpstream
from tests.support.tls import CertificateAuthority, Issued

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
PROVIDER_KEY = "sk-tls-upstream-5b1d7e3a9c2f4d6e"


class Pki:
    def __init__(self) -> None:
        self.ca = CertificateAuthority("Keyrail Integration TLS Test CA")
        self.client: Issued = self.ca.client("keyrail-worker")
        self.other_ca = CertificateAuthority("Some Other CA")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def tls_upstream(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[MockUpstream]:
    directory = tmp_path_factory.mktemp("tls-upstream")
    cert, key = pki.ca.server().write(directory, "server")
    client_ca = directory / "client-ca.pem"
    client_ca.write_text(pki.ca.cert_pem)
    mock = MockUpstream(
        PROVIDER_KEY,
        directory / "mock.log",
        args=("--tls-client-ca", str(client_ca)),
        tls=(cert, key, pki.ca.cert_pem),
    )
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def tenant(stack: KeyrailStack) -> tuple[str, openai.OpenAI]:
    project = stack.admin("POST", "/admin/v1/projects", {"name": "integration tls"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    key = stack.admin("POST", f"/admin/v1/projects/{project_id}/keys", {"name": "tests"})
    assert key.status_code == 201, key.text
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key.json()["key"], max_retries=0)
    return project_id, client


def body(project_id: str, upstream: MockUpstream, slug: str, tls: dict[str, str] | None) -> dict[str, Any]:
    created: dict[str, Any] = {
        "name": slug,
        "provider": "openai",
        "provider_slug": slug,
        "project_scope": [project_id],
        "credentials": {"api_key": PROVIDER_KEY},
        "custom_host": upstream.url,
        "enabled_models": [MODEL],
    }
    if tls is not None:
        created["tls"] = tls
    return created


def save(
    stack: KeyrailStack, project_id: str, upstream: MockUpstream, slug: str, tls: dict[str, str] | None
) -> str:
    created = stack.admin("POST", "/admin/v1/integrations", body(project_id, upstream, slug, tls))
    assert created.status_code == 201, created.text
    assert "PRIVATE KEY" not in created.text and "BEGIN CERTIFICATE" not in created.text
    return slug


def ask(client: openai.OpenAI, slug: str) -> str:
    answer = client.chat.completions.create(
        model=f"{slug}/{MODEL}", messages=[{"role": "user", "content": "hi"}]
    )
    return answer.choices[0].message.content or ""


def refusal(client: openai.OpenAI, slug: str) -> tuple[int, str]:
    """The status and error message of a request the gateway refuses."""
    with pytest.raises(openai.APIStatusError) as raised:
        ask(client, slug)
    return raised.value.status_code, raised.value.response.json()["error"]["message"]


def test_the_ca_bundle_and_client_certificate_reach_a_private_mtls_upstream(
    stack: KeyrailStack, tls_upstream: MockUpstream, tenant: tuple[str, openai.OpenAI], pki: Pki
) -> None:
    project_id, client = tenant
    tls = {
        "ca_bundle_pem": pki.ca.cert_pem,
        "client_cert_pem": pki.client.cert_pem,
        "client_key_pem": pki.client.key_pem,
    }
    slug = save(stack, project_id, tls_upstream, "openai-tls-mtls", tls)

    assert ask(client, slug) == "Hello from the Keyrail mock upstream"
    stream = client.chat.completions.create(
        model=f"{slug}/{MODEL}", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Hello from the Keyrail mock upstream"
    )


def test_without_the_ca_bundle_the_private_certificate_is_not_accepted(
    stack: KeyrailStack, tls_upstream: MockUpstream, tenant: tuple[str, openai.OpenAI]
) -> None:
    project_id, client = tenant
    slug = save(stack, project_id, tls_upstream, "openai-tls-no-ca", None)

    status, message = refusal(client, slug)

    assert status == 502
    assert f"'{slug}'" in message and "TLS certificate of 127.0.0.1" in message and "not accepted" in message


def test_another_ca_s_bundle_does_not_trust_the_upstream(
    stack: KeyrailStack, tls_upstream: MockUpstream, tenant: tuple[str, openai.OpenAI], pki: Pki
) -> None:
    project_id, client = tenant
    slug = save(
        stack, project_id, tls_upstream, "openai-tls-other-ca", {"ca_bundle_pem": pki.other_ca.cert_pem}
    )

    status, message = refusal(client, slug)

    assert status == 502
    assert "not accepted" in message


def test_without_a_client_certificate_the_mtls_upstream_refuses(
    stack: KeyrailStack, tls_upstream: MockUpstream, tenant: tuple[str, openai.OpenAI], pki: Pki
) -> None:
    project_id, client = tenant
    slug = save(
        stack, project_id, tls_upstream, "openai-tls-no-client-cert", {"ca_bundle_pem": pki.ca.cert_pem}
    )

    _, message = refusal(client, slug)

    assert "client certificate" in message


@pytest.mark.parametrize(
    ("tls", "param"),
    [
        ({"ca_bundle_pem": "not a certificate"}, "tls.ca_bundle_pem"),
        ({"client_cert_pem": "CLIENT"}, "tls.client_cert_pem"),
        ({"client_key_pem": "KEY"}, "tls.client_key_pem"),
        ({"client_cert_pem": "CLIENT", "client_key_pem": "MISMATCH"}, "tls.client_key_pem"),
        ({"ca_bundle_pem": "CA-WITH-KEY"}, "tls.ca_bundle_pem"),
    ],
)
def test_unusable_tls_options_are_a_400_naming_the_field_and_nothing_is_saved(
    stack: KeyrailStack,
    tls_upstream: MockUpstream,
    tenant: tuple[str, openai.OpenAI],
    pki: Pki,
    tls: dict[str, str],
    param: str,
) -> None:
    other = pki.ca.client("another-worker")
    values = {
        "CLIENT": pki.client.cert_pem,
        "KEY": pki.client.key_pem,
        "MISMATCH": other.key_pem,
        "CA-WITH-KEY": pki.ca.cert_pem + pki.client.key_pem,
    }
    options = {field: values.get(value, value) for field, value in tls.items()}
    slug = f"openai-tls-bad-{len(options)}-{param.rsplit('.', 1)[1].replace('_', '-')}"

    refused = stack.admin("POST", "/admin/v1/integrations", body(tenant[0], tls_upstream, slug, options))

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param
    assert "PRIVATE KEY" not in refused.text and "BEGIN CERTIFICATE" not in refused.text
    assert stack.admin("GET", f"/admin/v1/integrations/{slug}").status_code == 404


def test_rotated_credentials_carry_the_tls_options_they_are_given(
    stack: KeyrailStack, tls_upstream: MockUpstream, tenant: tuple[str, openai.OpenAI], pki: Pki
) -> None:
    project_id, client = tenant
    slug = save(stack, project_id, tls_upstream, "openai-tls-rotated", None)
    path = f"/admin/v1/integrations/{slug}"
    tls = {
        "ca_bundle_pem": pki.ca.cert_pem,
        "client_cert_pem": pki.client.cert_pem,
        "client_key_pem": pki.client.key_pem,
    }

    rotated = stack.change(
        "PUT", f"{path}/credentials", {"credentials": {"api_key": PROVIDER_KEY}, "tls": tls}, of=path
    )

    assert rotated.status_code == 200, rotated.text
    assert ask(client, slug) == "Hello from the Keyrail mock upstream"


def test_the_client_key_is_in_no_admin_response_nor_the_log(stack: KeyrailStack, pki: Pki) -> None:
    key_lines = [
        line for line in pki.client.key_pem.splitlines() if "PRIVATE KEY" not in line and len(line) >= 32
    ]
    assert key_lines
    texts = [stack.admin("GET", p).text for p in ("/admin/v1/integrations", "/admin/v1/events?limit=1000")]
    log = Path(stack.log_path).read_text(errors="replace")
    for line in key_lines:
        assert all(line not in text for text in texts)
        assert line not in log
