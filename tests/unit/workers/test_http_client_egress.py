"""The upstream client's egress against real servers: TLS with a generated CA, mTLS, a CONNECT proxy.

Origins are `TlsOrigin` (tests/support/tls.py): a real HTTPS server on 127.0.0.1 with certificates
generated for this run by the `cryptography` package; the proxy is `ConnectProxy`
(tests/support/proxy.py), which records every request head it read. Plain-HTTP origins are
`RawServer`s. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from keyrail_workers.http_client import (
    Proxy,
    ProxyError,
    ProxySettings,
    TlsOptions,
    TlsOptionsError,
    UpstreamConnectionError,
    UpstreamPool,
    UpstreamTimeout,
)
from tests.support.proxy import ConnectProxy
from tests.support.raw_http import RawServer, Request, answer_each, response
from tests.support.stack import MockUpstream
from tests.support.tls import CertificateAuthority, Issued, TlsOrigin, server_context

PROMPT_S = 2.0


class Pki:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = CertificateAuthority()
        self.other_ca = CertificateAuthority("Some Other CA")
        self.client_ca = CertificateAuthority("Client CA")
        self.server = self.ca.server()  # localhost and 127.0.0.1
        self.localhost_only = self.ca.server(dns=("localhost",), ips=())
        self.client = self.client_ca.client("keyrail-worker")
        self.stranger = self.other_ca.client("stranger")

    def context(self, issued: Issued | None = None, require_client_cert: bool = False) -> ssl.SSLContext:
        return server_context(
            issued or self.server, self.directory, self.client_ca if require_client_cert else None
        )

    @property
    def trust(self) -> TlsOptions:
        return TlsOptions(ca_bundle_pem=self.ca.cert_pem)

    @property
    def mtls(self) -> TlsOptions:
        return TlsOptions(
            ca_bundle_pem=self.ca.cert_pem,
            client_cert_pem=self.client.cert_pem,
            client_key_pem=self.client.key_pem,
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def make_pool(proxies: ProxySettings | None = None, connect_timeout_s: float = PROMPT_S) -> UpstreamPool:
    return UpstreamPool(connect_timeout_s=connect_timeout_s, proxies=proxies or ProxySettings())


@pytest.fixture
def pool() -> Iterator[UpstreamPool]:
    upstream = make_pool()
    yield upstream
    upstream.close()


def via(
    proxy: ConnectProxy, user: str | None = None, password: str | None = None, no_proxy: str = ""
) -> UpstreamPool:
    url = proxy.url(user, password)
    return make_pool(ProxySettings(https=Proxy.from_url(url), http=Proxy.from_url(url), no_proxy=no_proxy))


async def call(
    upstream: UpstreamPool, url: str, tls: TlsOptions | None = None, body: bytes = b"hi"
) -> tuple[int, bytes]:
    async with asyncio.timeout(PROMPT_S + 1):
        resp = await upstream.post(url, {"Content-Type": "application/json"}, body, PROMPT_S, tls)
        try:
            return resp.status, await resp.read()
        finally:
            resp.release()


def idle_count(upstream: UpstreamPool) -> int:
    return sum(len(connections) for connections in upstream._idle.values())


# --- TLS, direct ------------------------------------------------------------------------------------


async def test_https_with_the_integrations_ca_bundle(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context()) as origin:
        assert await call(pool, origin.url("127.0.0.1"), pki.trust) == (200, b'{"echo":"hi"}')
        assert await call(pool, origin.url("localhost"), pki.trust) == (200, b'{"echo":"hi"}')

    assert origin.server_names == [None, "localhost"]  # no SNI for an IP literal, as RFC 6066 says
    assert [r.header("Host") for r in origin.requests] == [
        f"127.0.0.1:{origin.port}",
        f"localhost:{origin.port}",
    ]


async def test_the_system_store_does_not_trust_a_private_ca(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context()) as origin:
        with pytest.raises(UpstreamConnectionError) as caught:
            await call(pool, origin.url())
        origin.wait_for_handshake_errors()

    assert str(caught.value) == (
        f"TLS certificate of 127.0.0.1:{origin.port} not accepted: unable to get local issuer certificate"
    )
    assert origin.requests == []


async def test_a_wrong_ca_bundle_fails_verification(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context()) as origin:
        with pytest.raises(UpstreamConnectionError, match="not accepted: unable to get local issuer"):
            await call(pool, origin.url(), TlsOptions(ca_bundle_pem=pki.other_ca.cert_pem))
    assert origin.requests == []


async def test_the_ca_bundle_replaces_the_system_store_end_to_end(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "system.pem"
    system.write_text(pki.ca.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(system))  # the "system store" now trusts the origin's CA
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
    upstream = make_pool()
    try:
        async with TlsOrigin(pki.context()) as origin:
            assert await call(upstream, origin.url()) == (200, b'{"echo":"hi"}')  # the system store
            with pytest.raises(UpstreamConnectionError, match="not accepted"):
                await call(upstream, origin.url(), TlsOptions(ca_bundle_pem=pki.other_ca.cert_pem))
    finally:
        upstream.close()


async def test_the_host_name_is_verified(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context(pki.localhost_only)) as origin:
        assert (await call(pool, origin.url("localhost"), pki.trust))[0] == 200
        with pytest.raises(
            UpstreamConnectionError,
            match=r"not accepted: IP address mismatch, certificate is not valid for '127\.0\.0\.1'",
        ):
            await call(pool, origin.url("127.0.0.1"), pki.trust)


async def test_plain_http_ignores_tls_options(pool: UpstreamPool, pki: Pki) -> None:
    async with RawServer(answer_each(lambda _: response(b"ok"))) as server:
        assert await call(pool, server.url(), pki.mtls) == (200, b"ok")
        assert await call(pool, server.url()) == (200, b"ok")
    assert server.connections == 1  # one route: the options mean nothing without TLS


# --- mutual TLS -------------------------------------------------------------------------------------


async def test_mtls_server_accepts_the_configured_client_certificate(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context(require_client_cert=True)) as origin:
        for body in (b"one", b"two"):
            assert await call(pool, origin.url(), pki.mtls, body) == (200, b'{"echo":"' + body + b'"}')

    assert origin.client_subjects == ["keyrail-worker"]
    assert origin.connections == 1  # and the mTLS connection is kept alive
    assert origin.handshake_errors == []


async def test_mtls_server_rejects_a_connection_without_a_client_certificate(
    pool: UpstreamPool, pki: Pki
) -> None:
    async with TlsOrigin(pki.context(require_client_cert=True)) as origin:
        with pytest.raises(UpstreamConnectionError) as caught:
            await call(pool, origin.url(), pki.trust)
        errors = origin.wait_for_handshake_errors()

    assert str(caught.value) == (
        f"127.0.0.1:{origin.port}: TLS alert from the server: TLSV13_ALERT_CERTIFICATE_REQUIRED"
    )
    assert errors == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"]
    assert origin.requests == [] and origin.client_subjects == []
    assert idle_count(pool) == 0


async def test_a_tls_origin_hanging_up_on_a_new_connection_says_what_that_can_mean(
    pool: UpstreamPool, pki: Pki
) -> None:
    async with TlsOrigin(pki.context(), lambda _: b"") as origin:
        with pytest.raises(UpstreamConnectionError) as caught:
            await call(pool, origin.url(), pki.trust)

    assert str(caught.value) == (
        f"127.0.0.1:{origin.port}: connection closed before a response (over a new TLS connection this"
        " is also how a server that requires a client certificate refuses the one offered, or its absence)"
    )
    assert len(origin.requests) == 1


async def test_mtls_server_rejects_a_certificate_from_another_ca(pool: UpstreamPool, pki: Pki) -> None:
    stranger = TlsOptions(
        ca_bundle_pem=pki.ca.cert_pem,
        client_cert_pem=pki.stranger.cert_pem,
        client_key_pem=pki.stranger.key_pem,
    )
    async with TlsOrigin(pki.context(require_client_cert=True)) as origin:
        with pytest.raises(
            UpstreamConnectionError, match="TLS alert from the server: TLSV1_ALERT_UNKNOWN_CA"
        ):
            await call(pool, origin.url(), stranger)
        assert origin.wait_for_handshake_errors() == ["CERTIFICATE_VERIFY_FAILED"]
    assert origin.requests == []


# --- connections per TLS options ----------------------------------------------------------------------


async def test_connections_and_contexts_are_per_distinct_tls_options(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context()) as origin:
        for _ in range(2):
            await call(pool, origin.url(), TlsOptions(ca_bundle_pem=pki.ca.cert_pem))  # equal, new objects
            await call(pool, origin.url(), pki.mtls)
        assert origin.connections == 2  # one per distinct options, each reused
        assert len(pool._contexts) == 2

        with pytest.raises(UpstreamConnectionError):  # the default context does not trust the test CA
            await call(pool, origin.url(), TlsOptions())  # empty options are the defaults
        with pytest.raises(UpstreamConnectionError):
            await call(pool, origin.url())
        assert len(pool._contexts) == 2


async def test_unusable_tls_options_fail_before_any_connection(pool: UpstreamPool, pki: Pki) -> None:
    async with TlsOrigin(pki.context()) as origin:
        bad = TlsOptions(ca_bundle_pem="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
        for _ in range(2):  # not cached: the same error each time, never a fallback context
            with pytest.raises(TlsOptionsError, match=r"^TlsOptions\.ca_bundle_pem is not a PEM bundle"):
                await call(pool, origin.url(), bad)
        no_key = TlsOptions(ca_bundle_pem=pki.ca.cert_pem, client_cert_pem=pki.client.cert_pem)
        with pytest.raises(ValueError, match=r"client_cert_pem is set but client_key_pem is empty"):
            await call(pool, origin.url(), no_key)

    assert origin.connections == 0
    assert pool._contexts == {}


# --- HTTPS through a CONNECT proxy ------------------------------------------------------------------


async def test_https_through_the_proxy_verifies_the_origin_not_the_proxy(pki: Pki) -> None:
    # The origin's certificate names only "localhost"; the proxy is 127.0.0.1. The tunnel works only
    # if SNI and the host name check use the origin's name.
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context(pki.localhost_only)) as origin:
                assert await call(upstream, origin.url("localhost"), pki.trust) == (200, b'{"echo":"hi"}')
        finally:
            upstream.close()

    (connect,) = proxy.requests
    assert (connect.method, connect.target) == ("CONNECT", f"localhost:{origin.port}")
    assert connect.header("Host") == f"localhost:{origin.port}"
    assert connect.header("Proxy-Authorization") is None
    assert origin.server_names == ["localhost"]
    (request,) = origin.requests
    assert request.method == "POST" and request.target == "/v1/chat/completions"  # origin-form inside
    assert request.header("Host") == f"localhost:{origin.port}"
    assert request.body == b"hi"


async def test_through_the_proxy_the_origin_name_is_never_resolved_locally_and_is_verified(pki: Pki) -> None:
    # "llm.test" resolves nowhere but inside the proxy: the client hands the name to the proxy, then
    # checks the tunnelled certificate against it.
    llm_test = pki.ca.server(dns=("llm.test",), ips=())
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context(llm_test)) as origin:
                assert (await call(upstream, origin.url("llm.test"), pki.trust))[0] == 200
            async with TlsOrigin(pki.context(pki.localhost_only)) as impostor:
                with pytest.raises(UpstreamConnectionError) as caught:
                    await call(upstream, impostor.url("llm.test"), pki.trust)
        finally:
            upstream.close()

    assert origin.server_names == ["llm.test"]
    assert [r.target for r in proxy.connects] == [f"llm.test:{origin.port}", f"llm.test:{impostor.port}"]
    assert str(caught.value) == (
        f"TLS certificate of llm.test:{impostor.port} via proxy 127.0.0.1:{proxy.port} not accepted: "
        "Hostname mismatch, certificate is not valid for 'llm.test'."
    )
    assert impostor.requests == []


async def test_keep_alive_through_the_tunnel_one_connect_for_many_requests(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context()) as origin:
                for i in range(5):
                    assert (await call(upstream, origin.url("localhost"), pki.trust, f"{i}".encode()))[
                        0
                    ] == 200
                    assert idle_count(upstream) == 1
        finally:
            upstream.close()

    assert len(proxy.connects) == 1 and proxy.tunnels == 1 and proxy.connections == 1
    assert origin.connections == 1
    assert [(r.conn_id, r.body) for r in origin.requests] == [(0, f"{i}".encode()) for i in range(5)]


async def test_concurrent_requests_open_a_tunnel_each_then_reuse_them(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context()) as origin:
                url = origin.url("localhost")
                for _ in range(3):
                    got = await asyncio.gather(*(call(upstream, url, pki.trust, b"%d" % i) for i in range(8)))
                    assert [body for _, body in got] == [b'{"echo":"%d"}' % i for i in range(8)]
                tunnels = proxy.tunnels
        finally:
            upstream.close()

    assert len(origin.requests) == 24
    assert tunnels == origin.connections <= 8  # the later rounds opened nothing new
    assert idle_count(upstream) == 0


async def test_an_origin_closing_an_idle_tunnelled_connection_is_transparent(pki: Pki) -> None:
    def once_then_close(request: Request) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context(), once_then_close, requests_per_connection=1) as origin:
                for _ in range(3):
                    assert await call(upstream, origin.url("localhost"), pki.trust) == (200, b"ok")
                    await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        finally:
            upstream.close()

    assert origin.connections == 3 and proxy.tunnels == 3


async def test_an_untrusted_origin_behind_the_proxy_fails_verification(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context()) as origin:
                with pytest.raises(UpstreamConnectionError) as caught:
                    await call(
                        upstream, origin.url("localhost"), TlsOptions(ca_bundle_pem=pki.other_ca.cert_pem)
                    )
        finally:
            upstream.close()

    assert str(caught.value) == (
        f"TLS certificate of localhost:{origin.port} via proxy 127.0.0.1:{proxy.port} not accepted: "
        "unable to get local issuer certificate"
    )
    assert proxy.tunnels == 1 and origin.requests == []


async def test_mtls_through_the_proxy(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            async with TlsOrigin(pki.context(require_client_cert=True)) as origin:
                assert (await call(upstream, origin.url("localhost"), pki.mtls))[0] == 200
                with pytest.raises(UpstreamConnectionError, match="TLSV13_ALERT_CERTIFICATE_REQUIRED"):
                    await call(upstream, origin.url("localhost"), pki.trust)
        finally:
            upstream.close()

    assert origin.client_subjects == ["keyrail-worker"]
    assert proxy.tunnels == 2


# --- proxy authentication and refusals --------------------------------------------------------------

USER, PASSWORD = "keyrail-egress", "s3cr@t:pa/ss"
PASSWORD_IN_URL = "s3cr%40t%3Apa%2Fss"


async def test_proxy_basic_auth_goes_in_connect_only(pki: Pki) -> None:
    async with ConnectProxy(credentials=(USER, PASSWORD)) as proxy:
        upstream = via(proxy, USER, PASSWORD_IN_URL)
        try:
            async with TlsOrigin(pki.context()) as origin:
                for _ in range(2):
                    assert (await call(upstream, origin.url("localhost"), pki.trust))[0] == 200
        finally:
            upstream.close()

    (connect,) = proxy.requests
    assert (
        connect.header("Proxy-Authorization")
        == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    )
    assert all(not r.values("Proxy-Authorization") for r in origin.requests)  # never inside the tunnel


@pytest.mark.parametrize(
    ("user", "password"), [(USER, "wrong-password"), (None, None)], ids=["wrong-password", "no-credentials"]
)
async def test_proxy_407_is_a_clear_error_without_the_credentials(
    pki: Pki, user: str | None, password: str | None
) -> None:
    async with ConnectProxy(credentials=(USER, PASSWORD)) as proxy:
        upstream = via(proxy, user, password)
        try:
            async with TlsOrigin(pki.context()) as origin:
                with pytest.raises(ProxyError) as caught:
                    await call(upstream, origin.url("localhost"), pki.trust)
        finally:
            upstream.close()

    assert isinstance(caught.value, UpstreamConnectionError)  # the runner's connection failure path
    assert str(caught.value) == (
        f"proxy 127.0.0.1:{proxy.port} refused CONNECT localhost:{origin.port}: 407 Proxy Authentication"
        " Required (the proxy URL's user and password are missing or not accepted)"
    )
    everything = (
        "".join(traceback.format_exception(caught.value)) + repr(caught.value) + repr(upstream.proxies)
    )
    for secret in (
        "wrong-password",
        USER,
        PASSWORD,
        base64.b64encode(f"{USER}:wrong-password".encode()).decode(),
    ):
        assert secret not in everything
    assert origin.connections == 0


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            "refused CONNECT localhost:{port}: 403 Forbidden",
        ),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "refused CONNECT localhost:{port}: 502 Bad Gateway"),
        (b"HTTP/1.0 599 Weird\r\n\r\n", "refused CONNECT localhost:{port}: 599"),
        (
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            "broke CONNECT localhost:{port}: it answered with something not HTTP",
        ),
        (
            b"HTTP/1.1 200 OK\r\n\r\nearly bytes",
            "broke CONNECT localhost:{port}: it sent data into the tunnel before TLS",
        ),
        (b"HTTP/1.1 200 Conn", "broke CONNECT localhost:{port}: it closed the connection before answering"),
        (b"", "broke CONNECT localhost:{port}: it closed the connection before answering"),
    ],
    ids=["403", "502", "unknown-status", "not-http", "early-bytes", "cut-short", "closed"],
)
async def test_a_proxy_refusing_or_breaking_connect_is_a_clear_error(
    pki: Pki, answer: bytes, message: str
) -> None:
    async with ConnectProxy(connect_answer=answer) as proxy:
        upstream = via(proxy)
        try:
            with pytest.raises(ProxyError) as caught:
                await call(upstream, "https://localhost:9/v1/chat/completions", pki.trust)
        finally:
            upstream.close()

    assert str(caught.value).startswith(f"proxy 127.0.0.1:{proxy.port} ")
    assert message.format(port=9) in str(caught.value)


async def test_a_proxy_that_never_answers_connect_times_out_naming_it(pki: Pki) -> None:
    async with ConnectProxy(hang=True) as proxy:
        url = proxy.url()
        upstream = make_pool(ProxySettings(https=Proxy.from_url(url)), connect_timeout_s=0.2)
        try:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout) as caught:
                await call(upstream, "https://localhost:9/v1", pki.trust)
            assert time.monotonic() - started < 1.5
        finally:
            upstream.close()

    assert str(caught.value) == f"no connection to localhost:9 via proxy 127.0.0.1:{proxy.port} within 0.2s"


async def test_an_unreachable_proxy_is_a_proxy_error(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        port = proxy.port
    upstream = make_pool(ProxySettings(https=Proxy.from_url(f"http://u:hunter2@127.0.0.1:{port}")))
    try:
        with pytest.raises(ProxyError, match=rf"^cannot connect to proxy 127\.0\.0\.1:{port} \(Connection"):
            await call(upstream, "https://localhost:9/v1", pki.trust)
    finally:
        upstream.close()


async def test_metadata_origins_are_refused_before_the_proxy_sees_them(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        upstream = via(proxy)
        try:
            for url in (
                "https://169.254.169.254/latest",
                "https://metadata.google.internal/computeMetadata/v1/",
                "http://2852039166/latest",
            ):
                with pytest.raises(UpstreamConnectionError, match="link-local or metadata address: refused"):
                    await call(upstream, url)
        finally:
            upstream.close()
    assert proxy.connections == 0


# --- NO_PROXY and the environment --------------------------------------------------------------------


async def test_no_proxy_goes_direct(pki: Pki) -> None:
    async with ConnectProxy() as proxy:
        upstream = via(proxy, no_proxy="localhost")
        try:
            async with TlsOrigin(pki.context()) as origin:
                assert (await call(upstream, origin.url("localhost"), pki.trust))[0] == 200  # listed: direct
                assert proxy.requests == []
                assert (await call(upstream, origin.url("127.0.0.1"), pki.trust))[0] == 200  # not listed
        finally:
            upstream.close()

    assert [r.target for r in proxy.requests] == [f"127.0.0.1:{origin.port}"]
    assert origin.connections == 2


async def test_the_pool_reads_the_proxy_variables_once_at_construction(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ConnectProxy(credentials=(USER, PASSWORD)) as proxy:
        for name in ("https_proxy", "http_proxy", "no_proxy", "HTTP_PROXY", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(USER, PASSWORD_IN_URL))
        monkeypatch.setenv("NO_PROXY", "example.com, .internal")
        upstream = UpstreamPool(connect_timeout_s=PROMPT_S)  # as the worker builds it
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # too late: not read per request
        monkeypatch.setenv("NO_PROXY", "*")
        try:
            async with TlsOrigin(pki.context()) as origin:
                for _ in range(2):
                    assert (await call(upstream, origin.url("localhost"), pki.trust))[0] == 200
        finally:
            upstream.close()

    assert [r.method for r in proxy.requests] == ["CONNECT"]
    assert PASSWORD not in repr(upstream.proxies)


# --- plain HTTP through the proxy -------------------------------------------------------------------


async def test_plain_http_through_the_proxy_uses_the_absolute_form(pki: Pki) -> None:
    async with (
        RawServer(answer_each(lambda request: response(b"echo:" + request.body))) as server,
        ConnectProxy(credentials=(USER, PASSWORD)) as proxy,
    ):
        upstream = via(proxy, USER, PASSWORD_IN_URL)
        try:
            url = server.url("/v1/chat/completions?x=1")
            for body in (b"one", b"two"):
                assert await call(upstream, url, body=body) == (200, b"echo:" + body)
        finally:
            upstream.close()

    assert [(r.conn_id, r.method, r.target) for r in proxy.requests] == [
        (0, "POST", f"http://127.0.0.1:{server.port}/v1/chat/completions?x=1")
    ] * 2  # one connection to the proxy, kept alive
    assert all(r.header("Host") == f"127.0.0.1:{server.port}" for r in proxy.requests)
    assert all(
        r.header(
            "Proxy-Authorization",
        )
        == basic(USER, PASSWORD)
        for r in proxy.requests
    )
    assert [r.target for r in server.requests] == ["/v1/chat/completions?x=1"] * 2
    assert all(not r.values("Proxy-Authorization") for r in server.requests)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_plain_http_proxy_407_is_a_proxy_error_not_an_upstream_answer() -> None:
    async with (
        RawServer(answer_each(lambda _: response(b"ok"))) as server,
        ConnectProxy(credentials=(USER, PASSWORD)) as proxy,
    ):
        upstream = via(proxy, USER, "nope")
        try:
            with pytest.raises(ProxyError) as caught:
                await call(upstream, server.url())
        finally:
            upstream.close()

    assert str(caught.value) == (
        f"proxy 127.0.0.1:{proxy.port} refused to forward to 127.0.0.1:{server.port}: 407 Proxy"
        " Authentication Required (the proxy URL's user and password are missing or not accepted)"
    )
    assert server.requests == [] and idle_count(upstream) == 0


# --- the production event loop ----------------------------------------------------------------------


def test_tunnel_tls_and_keep_alive_under_uvloop(pki: Pki) -> None:
    # The worker runs on uvloop; its start_tls is a different implementation from asyncio's.
    async def scenario() -> tuple[int, int, int, list[int]]:
        async with ConnectProxy(credentials=(USER, PASSWORD)) as proxy:
            upstream = via(proxy, USER, PASSWORD_IN_URL)
            try:
                with TlsOrigin(pki.context(require_client_cert=True)) as origin:
                    statuses = [
                        (await call(upstream, origin.url("localhost"), pki.mtls))[0] for _ in range(3)
                    ]
                    with pytest.raises(UpstreamConnectionError, match="not accepted"):
                        await call(
                            upstream, origin.url("localhost"), TlsOptions(ca_bundle_pem=pki.other_ca.cert_pem)
                        )
            finally:
                upstream.close()
        return len(proxy.connects), proxy.tunnels, origin.connections, statuses

    connects, tunnels, connections, statuses = uvloop.run(scenario())
    assert statuses == [200, 200, 200]
    assert (connects, tunnels, connections) == (2, 2, 2)  # one for the three mTLS calls, one refused


# --- a third server implementation ------------------------------------------------------------------


async def test_against_the_mock_upstream_serving_https(pki: Pki) -> None:
    # `keyrail mock-upstream --tls-cert --tls-key` (aiohttp's TLS server, in its own process), the
    # HTTPS upstream of bench/client_cost.py: an OpenAI-shaped answer through the client and the proxy.
    cert, key = pki.server.write(pki.directory, "mock-upstream")
    upstream = await asyncio.to_thread(MockUpstream(tls=(cert, key, pki.ca.cert_pem)).start)
    try:
        async with ConnectProxy() as proxy:
            for pool in (make_pool(), via(proxy)):
                try:
                    status, body = await call(pool, f"{upstream.url}/chat/completions", pki.trust, BODY)
                finally:
                    pool.close()
                assert status == 200
                assert json.loads(body)["object"] == "chat.completion"
        assert len(proxy.connects) == 1
    finally:
        await asyncio.to_thread(upstream.stop)


BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
