"""The pooled upstream HTTP/1.1 client: asyncio protocol + httptools parser, keep-alive per route.

It does only what an LLM upstream needs: POST with a body, a response read whole or line by line as
it arrives (SSE), TLS with per-integration trust and client certificates, HTTP proxies, keep-alive,
timeouts, and the refusal of link-local / cloud metadata addresses at connect time.

API
  pool = UpstreamPool(connect_timeout_s=10.0, max_idle_per_origin=256, proxies=None)
      One per worker, built in its composition root. `proxies=None` reads HTTPS_PROXY / HTTP_PROXY
      / NO_PROXY (and the lower-case forms) from the environment here, once; nothing is read per
      request. Syntax and what NO_PROXY supports: `keyrail_workers.egress`. A bad proxy variable is
      a ValueError naming it (never its value), so a worker refuses to start instead of going
      direct past the proxy.
  response = await pool.post(url, headers, body, timeout_s, tls=None)
      Sends the request, waits for the response head. `response.status`, `response.headers`
      (lower-case names), then `await response.read()` or `async for line in response.lines()`,
      and always `response.release()` (pooled again only if the body was read to its end).
  tls: TlsOptions(ca_bundle_pem="", client_cert_pem="", client_key_pem="")
      The integration's CA bundle (PEM; it REPLACES the system store for that integration, like
      curl --cacert) and optional client certificate + unencrypted key for mutual TLS. Ignored for
      http:// URLs. One `ssl.SSLContext` per distinct options, built on first use and kept for
      the pool's life (nothing is evicted: after a bundle is rotated, the old context and its
      idle connections stay until `close()`). Certificate and host name verification are
      always on and no option turns them off.
      Unusable PEM raises `TlsOptionsError` (a ValueError naming the field, never its content)
      from `post()`, every time, with no fallback; `tls_context(options)` raises the same and is
      what admin validation can call before storing an integration.
  Errors: `UpstreamTimeout` (connect, head or next body bytes too late); `UpstreamConnectionError`
  for everything else on the wire: refused or reset connections, TLS failures ("TLS certificate
  of host:port not accepted: <OpenSSL's reason>", "TLS alert from the server: ..." for a refused
  client certificate), malformed responses; its subclass `ProxyError` when the proxy refuses
  CONNECT (407, 403, 502, ...), answers nonsense or cannot be reached. Messages name the upstream
  and the proxy as host:port and never carry proxy credentials.

Connections are pooled per route: (scheme, host, port, TLS options), the proxy being fixed per
origin by the settings. Through a proxy, https:// is tunnelled: `CONNECT host:port` (with
`Proxy-Authorization: Basic` if the proxy URL has credentials), then TLS to the origin inside the
tunnel with SNI and verification against the origin's name, and keep-alive through the tunnel
(one CONNECT serves many requests). http:// through a proxy sends the absolute-form request line
and `Proxy-Authorization` on each request; a 407 there is a `ProxyError`, not an upstream answer.
The proxy resolves the origin's name, so the DNS-rebinding check applies to the proxy's address,
and the origin is refused up front if it is a metadata name or a link-local literal.

Why not aiohttp or httpx: the upstream client dominates a worker's CPU per request (SPEC §8).
Measured with `python -m bench.client_cost --rounds 3` (uvloop, concurrency 16, 6000 requests a
measurement, client pinned to one CPU and the mock upstream and proxy to another; three runs on a
2-vCPU VM, median of each run's medians, µs of client CPU per request):

                   keyrail   aiohttp 3.14   httpx 0.28
    http              107        256           2806
    https             138        257           3102
    https via proxy   165        313           3507   (CONNECT, keep-alive through the tunnel)

aiohttp costs about twice as much on every path, httpx over twenty times on this machine (about
2,600 Python function calls per request through httpx, httpcore, anyio and h11). Adding proxies
and TLS options did not change the direct path: 109 -> 107 µs (http) and 140 -> 138 µs (https),
old and new client interleaved in one process, six rounds each. So the client stays; its egress
features are tested against a real TLS server with a generated CA and a real CONNECT proxy
(tests/unit/workers/test_http_client_egress.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from http import HTTPStatus
from urllib.parse import urlsplit

import httptools

from keyrail_common.hosts import is_forbidden_address, is_forbidden_host
from keyrail_workers.egress import Proxy, ProxySettings, TlsOptions, TlsOptionsError, tls_context

__all__ = [
    "Proxy",
    "ProxyError",
    "ProxySettings",
    "TlsOptions",
    "TlsOptionsError",
    "UpstreamConnectionError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
    "tls_context",
]

_READ_CHUNK_LIMIT = 64 * 1024 * 1024  # a response body larger than this is refused
_CLOSED_BEFORE_RESPONSE = "connection closed before a response"
# A TLS 1.3 server refusing a client certificate sends its alert after the client's handshake is
# done; if the client's request crosses the close, the reset can swallow the alert.
_MTLS_HINT = (
    " (over a new TLS connection this is also how a server that requires a client certificate"
    " refuses the one offered, or its absence)"
)


class UpstreamConnectionError(Exception):
    """Connecting, sending or reading failed before a complete response."""


class UpstreamTimeout(Exception):
    """No connection, headers or next body bytes within the timeout."""


class ProxyError(UpstreamConnectionError):
    """The proxy refused or broke the tunnel; the message names the proxy, never its credentials."""


class _ClosedBeforeResponse(UpstreamConnectionError):
    """The server closed the connection without sending a byte: a stale keep-alive connection."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.headers: dict[str, str] = {}
        self.headers_done: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.data_ready = asyncio.Event()
        self.complete = False
        self.keep_alive = False  # httptools answers this only inside its callbacks: keep it here
        self.received_any = False
        self.error: Exception | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return  # the response was whole; the server just closed afterwards (or while idle)
        if isinstance(exc, ssl.SSLError):
            # e.g. TLSV13_ALERT_CERTIFICATE_REQUIRED: in TLS 1.3 a server that rejects the client
            # certificate (or its absence) says so only after the client's side of the handshake.
            message = f"TLS alert from the server: {exc.reason or exc}"
            failure = UpstreamConnectionError if self.received_any else _ClosedBeforeResponse
            self._fail(failure(message))
            return
        if self.headers_done is not None and self.headers_done.done():
            # A body delimited by the connection closing ends here; anything else was cut off.
            if self.keep_alive or self.headers.get("content-length") or self._chunked():
                self._fail(UpstreamConnectionError("connection closed mid-response"))
            else:
                self.on_message_complete()
        elif self.received_any:
            self._fail(UpstreamConnectionError("connection closed in the middle of the response headers"))
        else:
            self._fail(_ClosedBeforeResponse(_CLOSED_BEFORE_RESPONSE))

    # --- httptools callbacks ----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.data_ready.set()

    def on_message_complete(self) -> None:
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        self.complete = True
        self.data_ready.set()

    # --- helpers ----------------------------------------------------------------------------
    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_exception(exc)
        self.data_ready.set()
        if self.transport is not None:
            self.transport.close()

    def reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers = {}
        self.headers_done = asyncio.get_running_loop().create_future()
        self.chunks.clear()
        self.data_ready.clear()
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.error = None


class _ConnectResponse(asyncio.Protocol):
    """Reads a proxy's answer to CONNECT: the status line and headers, nothing after them."""

    _LIMIT = 64 * 1024

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.late_data = False

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            self.late_data = True  # bytes before our ClientHello: not from the origin
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > self._LIMIT:
                self.answer.set_exception(ProxyError("its answer has no end"))
            return
        status_line = bytes(self.buffer[: self.buffer.find(b"\r\n")])
        version, _, rest = status_line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            self.answer.set_exception(ProxyError("it answered with something not HTTP"))
            return
        status = int(code)
        if 200 <= status < 300 and len(self.buffer) > end + 4:
            # The origin speaks only after our TLS ClientHello: early bytes are not from it.
            self.answer.set_exception(ProxyError("it sent data into the tunnel before TLS"))
            return
        self.answer.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(ProxyError("it closed the connection before answering"))


class _Route:
    """Everything fixed for one (scheme, host, port, TLS options): proxy, TLS context, idle connections."""

    __slots__ = ("forward_prefix", "host", "idle", "port", "proxy", "proxy_header", "scheme", "ssl")

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        proxy: Proxy | None,
        context: ssl.SSLContext | None,
        idle: list[_Connection],
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.proxy = proxy
        self.ssl = context
        self.idle = idle
        # Plain http through a proxy: absolute-form request line, the proxy's credentials on every
        # request. https through a proxy: the credentials go in CONNECT only, never into the tunnel.
        forward = proxy is not None and scheme == "http"
        self.forward_prefix = "http://" if forward else ""
        self.proxy_header = (
            f"Proxy-Authorization: {proxy.authorization}\r\n"
            if forward and proxy is not None and proxy.authorization
            else ""
        )

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """How errors name the upstream: `host:port`, and the proxy's `host:port` if there is one."""
        return self.authority if self.proxy is None else f"{self.authority} via proxy {self.proxy.label}"


class UpstreamResponse:
    """Status and headers at once; the body read whole (`read`) or line by line (`lines`)."""

    def __init__(self, pool: UpstreamPool, route: _Route, connection: _Connection, timeout_s: float):
        self._pool = pool
        self._route = route
        self._connection = connection
        self._timeout_s = timeout_s
        self.status = connection.parser.get_status_code()
        self.headers = connection.headers
        self._released = False

    async def _next_data(self) -> bool:
        """Wait for more body bytes; False once the body is complete."""
        connection = self._connection
        while not connection.chunks:
            if connection.error is not None:
                raise connection.error
            if connection.complete:
                return False
            connection.data_ready.clear()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await connection.data_ready.wait()
            except TimeoutError:
                raise UpstreamTimeout(f"no response bytes within {self._timeout_s:g}s") from None
        return True

    async def read(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while await self._next_data():
            while self._connection.chunks:
                chunk = self._connection.chunks.popleft()
                size += len(chunk)
                parts.append(chunk)
            if size > _READ_CHUNK_LIMIT:
                raise UpstreamConnectionError("response body too large")
        return b"".join(parts)

    async def lines(self) -> AsyncIterator[bytes]:
        """Each line (with its newline) as soon as it is complete; the last may lack one."""
        pending = b""
        while await self._next_data():
            while self._connection.chunks:
                pending += self._connection.chunks.popleft()
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
        if pending:
            yield pending

    def release(self) -> None:
        """Back to the pool when the response was read to the end and keep-alive allows it."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        if connection.complete and connection.error is None and connection.keep_alive:
            self._pool._checkin(self._route, connection)
        elif connection.transport is not None:
            connection.transport.close()


_RouteKey = tuple[str, str, int, TlsOptions | None]


class UpstreamPool:
    """Keep-alive connections per (scheme, host, port, proxy, TLS options); nothing else is shared.

    `proxies`: `ProxySettings.from_environ()` when not given, read here once, never per request."""

    def __init__(
        self,
        connect_timeout_s: float = 10.0,
        max_idle_per_origin: int = 256,
        proxies: ProxySettings | None = None,
    ) -> None:
        self._idle: dict[_RouteKey, list[_Connection]] = {}
        self._routes: dict[_RouteKey, _Route] = {}
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle_per_origin
        self._ssl = ssl.create_default_context()
        self._contexts: dict[TlsOptions, ssl.SSLContext] = {}
        self.proxies = ProxySettings.from_environ() if proxies is None else proxies

    def _route(self, key: _RouteKey) -> _Route:
        """The route for a key seen for the first time. TLS options do nothing for http:// and
        empty ones mean the defaults: such keys share the plain key's route."""
        scheme, host, port, tls = key
        if tls is not None and (scheme != "https" or tls.is_default):
            route = self._routes.get((scheme, host, port, None)) or self._route((scheme, host, port, None))
            self._routes[key] = route
            return route
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl if tls is None else self._context(tls)
        proxy = self.proxies.for_origin(scheme, host, port)
        idle = self._idle.setdefault(key, [])
        route = self._routes[key] = _Route(scheme, host, port, proxy, context, idle)
        return route

    def _context(self, tls: TlsOptions) -> ssl.SSLContext:
        """One context per distinct options (a TlsOptionsError for bad PEM is raised, not cached)."""
        context = self._contexts.get(tls)
        if context is None:
            context = self._contexts[tls] = tls_context(tls)
        return context

    def _checkin(self, route: _Route, connection: _Connection) -> None:
        idle = route.idle
        if len(idle) < self._max_idle and not connection.closed:
            idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()

    async def _connect(self, route: _Route) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if route.proxy is not None:
                    return await self._connect_via_proxy(loop, route, route.proxy)
                address = await self._resolve(loop, route.host, route.port)
                _, connection = await loop.create_connection(
                    _Connection,
                    address,
                    route.port,
                    ssl=route.ssl,
                    server_hostname=route.host if route.ssl is not None else None,
                )
                return connection
        except TimeoutError:
            raise UpstreamTimeout(
                f"no connection to {route.label} within {self._connect_timeout_s:g}s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise UpstreamConnectionError(
                f"TLS certificate of {route.label} not accepted: {exc.verify_message or exc.reason}"
            ) from None
        except ssl.SSLError as exc:
            raise UpstreamConnectionError(
                f"TLS handshake with {route.label} failed ({exc.reason or type(exc).__name__})"
            ) from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to {route.label} ({type(exc).__name__})") from None

    async def _connect_via_proxy(
        self, loop: asyncio.AbstractEventLoop, route: _Route, proxy: Proxy
    ) -> _Connection:
        """A connection to the proxy: used as is for http://, tunnelled with CONNECT for https://.

        The proxy resolves the origin's name, so the resolver check below covers the proxy's own
        address; the origin is refused here if it is a metadata name or a link-local literal."""
        if is_forbidden_host(route.host):
            raise UpstreamConnectionError(f"{route.host} is a link-local or metadata address: refused")
        address = await self._resolve(loop, proxy.host, proxy.port)
        try:
            if route.ssl is None:
                _, connection = await loop.create_connection(_Connection, address, proxy.port)
                return connection
            transport, answer = await loop.create_connection(_ConnectResponse, address, proxy.port)
        except OSError as exc:
            raise ProxyError(f"cannot connect to proxy {proxy.label} ({type(exc).__name__})") from None
        try:
            authority = route.authority
            credentials = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{credentials}\r\n"
            transport.write(request.encode("latin-1"))
            try:
                status = await answer.answer
            except ProxyError as exc:
                raise ProxyError(f"proxy {proxy.label} broke CONNECT {authority}: {exc}") from None
            if not 200 <= status < 300:
                raise ProxyError(f"proxy {proxy.label} refused CONNECT {authority}: {_describe(status)}")
            if answer.late_data:
                raise ProxyError(f"proxy {proxy.label} broke CONNECT {authority}: it sent data before TLS")
            connection = _Connection()
            tls_transport = await loop.start_tls(transport, connection, route.ssl, server_hostname=route.host)
            if tls_transport is None:  # the proxy hung up during the handshake
                raise ProxyError(f"proxy {proxy.label} closed the tunnel to {authority}")
            connection.transport = tls_transport
            return connection
        except BaseException:
            transport.close()
            raise

    @staticmethod
    async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> str:
        """The address to connect to, checked here and not only when the integration was saved:
        a name may resolve to the cloud metadata range later (DNS rebinding)."""
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"{host} does not resolve")
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if is_forbidden_address(address):
                raise UpstreamConnectionError(f"{host} resolves to {address}, a link-local address: refused")
        return str(infos[0][4][0])

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float, tls: TlsOptions | None = None
    ) -> UpstreamResponse:
        """Send the request and wait for the response headers. `tls`: the integration's CA bundle
        and client certificate (https only); a `TlsOptionsError` if its PEM is unusable."""
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname or "", port, tls)
        route = self._routes.get(key) or self._route(key)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if route.forward_prefix:
            target = route.forward_prefix + parts.netloc + target
        head = [
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"
            f"{route.proxy_header}"
        ]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append("\r\n")
        payload = "".join(head).encode("latin-1") + body
        idle = route.idle
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                return await self._exchange(route, connection, payload, timeout_s)
            except _ClosedBeforeResponse:
                continue  # the server closed this idle keep-alive connection as we reused it
        connection = await self._connect(route)
        try:
            return await self._exchange(route, connection, payload, timeout_s)
        except _ClosedBeforeResponse as exc:
            hint = _MTLS_HINT if route.ssl is not None and exc.args[0] == _CLOSED_BEFORE_RESPONSE else ""
            raise UpstreamConnectionError(f"{route.label}: {exc}{hint}") from None

    async def _exchange(
        self, route: _Route, connection: _Connection, payload: bytes, timeout_s: float
    ) -> UpstreamResponse:
        connection.reset()
        assert connection.transport is not None and connection.headers_done is not None
        connection.transport.write(payload)
        try:
            async with asyncio.timeout(timeout_s):
                await connection.headers_done
        except TimeoutError:
            connection.transport.close()
            raise UpstreamTimeout(f"no response headers within {timeout_s:g}s") from None
        response = UpstreamResponse(self, route, connection, timeout_s)
        if response.status == 407 and route.forward_prefix and route.proxy is not None:
            connection.transport.close()  # the proxy's answer, not the origin's
            refusal = f"refused to forward to {route.authority}: {_describe(407)}"
            raise ProxyError(f"proxy {route.proxy.label} {refusal}")
        return response

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                if connection.transport is not None:
                    connection.transport.close()
            connections.clear()


def _describe(status: int) -> str:
    """A proxy's status in our words (its reason phrase and body are not echoed)."""
    try:
        phrase = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = str(status)
    if status == 407:
        return f"{phrase} (the proxy URL's user and password are missing or not accepted)"
    return phrase
