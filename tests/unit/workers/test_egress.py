"""Egress settings without a network: proxy variables, NO_PROXY rules, TLS options and their errors."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyrail_workers.egress import NoProxy, Proxy, ProxySettings, TlsOptions, TlsOptionsError, tls_context
from tests.support.tls import CertificateAuthority, Issued


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def client(ca: CertificateAuthority) -> Issued:
    return ca.client()


def basic(user_pass: str) -> str:
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


# --- proxy URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "authorization"),
    [
        ("http://proxy.corp:3128", "proxy.corp", 3128, ""),
        ("http://proxy.corp:3128/", "proxy.corp", 3128, ""),
        ("http://proxy.corp", "proxy.corp", 80, ""),
        ("proxy.corp:3128", "proxy.corp", 3128, ""),  # no scheme: http://, as curl and requests
        ("HTTP://Proxy.Corp:3128", "proxy.corp", 3128, ""),
        ("http://10.0.0.1:8080", "10.0.0.1", 8080, ""),
        ("http://[fd00::1]:3128", "fd00::1", 3128, ""),
        ("http://user:pass@proxy.corp:3128", "proxy.corp", 3128, basic("user:pass")),
        ("http://us%40er:p%3Ass%2Fw%40rd@proxy:1", "proxy", 1, basic("us@er:p:ss/w@rd")),  # decoded
        ("http://user@proxy:1", "proxy", 1, basic("user:")),
        ("  http://proxy:1  ", "proxy", 1, ""),
    ],
)
def test_proxy_urls(url: str, host: str, port: int, authorization: str) -> None:
    assert Proxy.from_url(url) == Proxy(host, port, authorization)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("socks5://user:hunter2@proxy:1080", "only http:// proxies are supported.*not socks5://"),
        ("https://user:hunter2@proxy:443", "only http:// proxies are supported.*not https://"),
        ("http://user:hunter2@:3128", "has no host"),
        ("http://user:hunter2@proxy:3128/some/path", "no path"),
        ("http://user:hunter2@proxy:notaport", "not a valid proxy URL"),
    ],
)
def test_unusable_proxy_urls_are_refused_naming_the_variable_never_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Proxy.from_url(url, "HTTPS_PROXY")
    assert str(caught.value).startswith("HTTPS_PROXY: ")
    assert "hunter2" not in str(caught.value)


def test_proxy_repr_and_label_hide_the_credentials() -> None:
    proxy = Proxy.from_url("http://alice:hunter2@proxy.corp:3128")
    settings = ProxySettings(https=proxy, http=proxy, no_proxy="localhost")
    for text in (repr(proxy), str(proxy), proxy.label, repr(settings)):
        assert "hunter2" not in text and "alice" not in text
        assert proxy.authorization.split()[1] not in text
    assert repr(proxy) == "Proxy(http://<credentials>@proxy.corp:3128)"
    assert Proxy.from_url("http://[fd00::1]:3128").label == "[fd00::1]:3128"


# --- the environment -------------------------------------------------------------------------------


def test_each_scheme_has_its_own_variable_and_lower_case_wins() -> None:
    settings = ProxySettings.from_environ(
        {
            "HTTPS_PROXY": "http://upper-https:1",
            "https_proxy": "http://lower-https:2",
            "HTTP_PROXY": "http://upper-http:3",
            "NO_PROXY": "upper.example",
            "no_proxy": "lower.example",
        }
    )
    assert settings.for_origin("https", "api.openai.com", 443) == Proxy("lower-https", 2)
    assert settings.for_origin("http", "vllm.lan", 8000) == Proxy("upper-http", 3)
    assert settings.for_origin("https", "lower.example", 443) is None
    assert settings.for_origin("https", "upper.example", 443) == Proxy("lower-https", 2)


def test_upper_case_variables_alone_are_read() -> None:
    settings = ProxySettings.from_environ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "internal"})
    assert settings.for_origin("https", "api.openai.com", 443) == Proxy("p", 1)
    assert settings.for_origin("https", "llm.internal", 443) is None


def test_empty_variables_are_unset_and_nothing_set_means_direct() -> None:
    settings = ProxySettings.from_environ({"https_proxy": "", "HTTPS_PROXY": "http://p:1", "http_proxy": " "})
    assert settings.for_origin("https", "a.example", 443) == Proxy("p", 1)  # the empty one is skipped
    assert settings.for_origin("http", "a.example", 80) is None
    assert ProxySettings.from_environ({}).for_origin("https", "a.example", 443) is None


def test_https_proxy_is_not_used_for_http_upstreams_nor_the_other_way_round() -> None:
    https_only = ProxySettings.from_environ({"HTTPS_PROXY": "http://p:1"})
    assert https_only.for_origin("http", "a.example", 80) is None
    http_only = ProxySettings.from_environ({"HTTP_PROXY": "http://p:1"})
    assert http_only.for_origin("https", "a.example", 443) is None


def test_all_proxy_is_not_read() -> None:
    settings = ProxySettings.from_environ({"ALL_PROXY": "socks5://p:1080", "all_proxy": "http://p:1"})
    assert settings.for_origin("https", "a.example", 443) is None


def test_a_bad_proxy_variable_fails_at_startup_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^https_proxy: only http://"):
        ProxySettings.from_environ({"https_proxy": "socks5h://user:hunter2@p:1080"})


# --- NO_PROXY --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("", "api.openai.com", 443, False),
        ("*", "api.openai.com", 443, True),
        ("*", "10.1.2.3", 8000, True),
        (" * ", "anything", 1, True),
        # names: the host itself and every host under it, never a longer name
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "a.b.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        ("example.com", "example.com.evil.net", 443, False),
        (".example.com", "example.com", 443, True),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("*.example.com", "example.com", 443, True),
        ("EXAMPLE.com", "Api.Example.COM", 443, True),
        ("example.com.", "api.example.com.", 443, True),
        ("api.example.com", "example.com", 443, False),
        # lists: commas, spaces around them
        ("localhost, .internal ,10.0.0.0/8", "vllm.internal", 443, True),
        ("localhost, .internal ,10.0.0.0/8", "localhost", 8000, True),
        ("localhost,,example.com", "example.com", 443, True),
        ("a.example b.example", "b.example", 443, True),
        # ports
        ("example.com:8443", "example.com", 8443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "api.example.com", 8443, True),
        ("10.1.2.3:8000", "10.1.2.3", 8000, True),
        ("10.1.2.3:8000", "10.1.2.3", 8001, False),
        ("10.0.0.0/8:443", "10.9.9.9", 443, True),
        ("10.0.0.0/8:443", "10.9.9.9", 80, False),
        ("[::1]:8443", "::1", 8443, True),
        ("[::1]:8443", "::1", 443, False),
        # addresses and blocks: only for upstreams whose URL host is that literal
        ("10.1.2.3", "10.1.2.3", 443, True),
        ("10.1.2.3", "10.1.2.4", 443, False),
        ("10.0.0.0/8", "10.200.3.4", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("192.168.1.0/24", "192.168.1.77", 443, True),
        ("10.0.0.0/8", "vllm.internal", 443, False),  # names are not resolved for the check
        ("::1", "::1", 443, True),
        ("[::1]", "::1", 443, True),
        ("fd00::/8", "fd12:3456::1", 443, True),
        ("fd00::/8", "10.1.2.3", 443, False),
        ("10.0.0.0/8", "fd12::1", 443, False),
        ("127.0.0.1", "localhost", 443, False),  # no resolution, no loopback magic
        ("localhost", "127.0.0.1", 443, False),
        ("10.1.2.3", "10.1.2.3.example.com", 443, False),
    ],
)
def test_no_proxy(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    assert NoProxy(no_proxy).matches(host, port) is bypass


def test_no_proxy_applies_to_both_schemes() -> None:
    proxy = Proxy("p", 1)
    settings = ProxySettings(https=proxy, http=proxy, no_proxy=".internal")
    assert settings.for_origin("https", "llm.internal", 443) is None
    assert settings.for_origin("http", "llm.internal", 80) is None
    assert settings.for_origin("https", "api.openai.com", 443) is proxy


# --- TLS options -----------------------------------------------------------------------------------


def test_there_is_no_option_to_turn_verification_off() -> None:
    assert TlsOptions.__struct_fields__ == ("ca_bundle_pem", "client_cert_pem", "client_key_pem")


def test_tls_options_are_hashable_values_and_their_repr_hides_the_key(client: Issued) -> None:
    one = TlsOptions(client_cert_pem=client.cert_pem, client_key_pem=client.key_pem)
    two = TlsOptions(client_cert_pem=client.cert_pem, client_key_pem=client.key_pem)
    assert one == two and hash(one) == hash(two) and len({one, two}) == 1
    assert "PRIVATE" not in repr(one) and client.key_pem.splitlines()[1] not in repr(one)
    assert "client_key_pem=<redacted>" in repr(one)
    assert TlsOptions().is_default and TlsOptions(ca_bundle_pem="  \n").is_default


def test_every_context_verifies_the_chain_and_the_host_name(ca: CertificateAuthority, client: Issued) -> None:
    for options in (
        None,
        TlsOptions(),
        TlsOptions(ca_bundle_pem=ca.cert_pem),
        TlsOptions(client_cert_pem=client.cert_pem, client_key_pem=client.key_pem),
        TlsOptions(ca_bundle_pem=ca.cert_pem, client_cert_pem=client.cert_pem, client_key_pem=client.key_pem),
    ):
        context = tls_context(options)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_ca_bundle_replaces_the_system_store(
    ca: CertificateAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = CertificateAuthority("Some System CA")
    system = tmp_path / "system.pem"
    system.write_text(other.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(system))  # what OpenSSL loads as "the system store"
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
    assert [c["subject"] for c in tls_context(None).get_ca_certs()] == [
        ((("commonName", "Some System CA"),),)
    ]

    bundle = tls_context(TlsOptions(ca_bundle_pem=ca.cert_pem + CertificateAuthority("Second").cert_pem))
    names = sorted(c["subject"][0][0][1] for c in bundle.get_ca_certs())
    assert names == ["Keyrail Test CA", "Second"]  # exactly the bundle, the system CA is not in it


def test_client_certificate_alone_keeps_the_system_store(
    client: Issued, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "system.pem"
    system.write_text(CertificateAuthority("Some System CA").cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(system))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
    context = tls_context(TlsOptions(client_cert_pem=client.cert_pem, client_key_pem=client.key_pem))
    assert [c["subject"][0][0][1] for c in context.get_ca_certs()] == ["Some System CA"]


def _encrypted(key_pem: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()


def _other_key() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )


BROKEN_CERT = "-----BEGIN CERTIFICATE-----\nMIIBnotbase64!!\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ca_bundle_pem": "not a pem"}, r"ca_bundle_pem is not a PEM bundle of CA certificates"),
        ({"ca_bundle_pem": BROKEN_CERT}, r"ca_bundle_pem is not a PEM bundle of CA certificates"),
        ({"ca_bundle_pem": "{key}"}, r"ca_bundle_pem contains a private key"),
        ({"ca_bundle_pem": "{ca}{key}"}, r"ca_bundle_pem contains a private key"),
        ({"client_cert_pem": "{cert}"}, r"client_cert_pem is set but client_key_pem is empty"),
        ({"client_key_pem": "{key}"}, r"client_key_pem is set but client_cert_pem is empty"),
        (
            {"client_cert_pem": "garbage", "client_key_pem": "{key}"},
            r"client_cert_pem is not a PEM certificate",
        ),
        ({"client_cert_pem": BROKEN_CERT, "client_key_pem": "{key}"}, r"client_cert_pem is not a PEM cert"),
        (
            {"client_cert_pem": "{cert}{key}", "client_key_pem": "{key}"},
            r"client_cert_pem contains a private",
        ),
        (
            {"client_cert_pem": "{cert}", "client_key_pem": "garbage"},
            r"client_key_pem is not a PEM private key",
        ),
        ({"client_cert_pem": "{cert}", "client_key_pem": "{broken_key}"}, r"client_key_pem is not a usable"),
        (
            {"client_cert_pem": "{cert}", "client_key_pem": "{other_key}"},
            r"client_key_pem is not the private",
        ),
        ({"client_cert_pem": "{cert}", "client_key_pem": "{encrypted}"}, r"client_key_pem is encrypted"),
        ({"client_cert_pem": "{ca}", "client_key_pem": "{key}"}, r"client_key_pem is not the private key"),
    ],
)
def test_unusable_pem_is_a_value_error_naming_the_field(
    ca: CertificateAuthority, client: Issued, fields: dict[str, str], message: str
) -> None:
    values = {
        "ca": ca.cert_pem,
        "cert": client.cert_pem,
        "key": client.key_pem,
        "other_key": _other_key(),
        "encrypted": _encrypted(client.key_pem),
        "broken_key": "-----BEGIN PRIVATE KEY-----\nAAAAnotakey\n-----END PRIVATE KEY-----\n",
    }
    options = TlsOptions(**{name: value.format(**values) for name, value in fields.items()})
    with pytest.raises(TlsOptionsError, match=message) as caught:
        tls_context(options)
    assert isinstance(caught.value, ValueError)
    text = str(caught.value)
    assert text.startswith("TlsOptions.")
    for secret in (client.key_pem, values["other_key"], values["encrypted"]):
        assert secret.splitlines()[1] not in text  # never the PEM content itself
    assert caught.value.__cause__ is None
