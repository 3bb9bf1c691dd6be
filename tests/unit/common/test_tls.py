"""TLS option errors as an integration's `tls` object names them (what the admin API's 400 says)."""

from __future__ import annotations

import pytest

from keyrail_common.tls import TlsOptions, TlsOptionsError, tls_context
from tests.support.tls import CertificateAuthority


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (TlsOptions(ca_bundle_pem="not a certificate"), "tls.ca_bundle_pem"),
        (TlsOptions(client_key_pem="-----BEGIN PRIVATE KEY-----\n"), "tls.client_key_pem"),
    ],
)
def test_an_unusable_option_names_the_integration_field(options: TlsOptions, field: str) -> None:
    with pytest.raises(TlsOptionsError) as raised:
        tls_context(options)

    named, message = raised.value.as_integration_field()
    assert named == field
    assert message.startswith(field) and "TlsOptions" not in message


def test_a_key_that_is_not_the_certificate_s_is_named_as_the_key() -> None:
    ca = CertificateAuthority()
    cert, other = ca.client("a"), ca.client("b")

    with pytest.raises(TlsOptionsError) as raised:
        tls_context(TlsOptions(client_cert_pem=cert.cert_pem, client_key_pem=other.key_pem))

    assert raised.value.as_integration_field() == (
        "tls.client_key_pem",
        "tls.client_key_pem is not the private key of client_cert_pem",
    )
    assert other.key_pem not in str(raised.value)
