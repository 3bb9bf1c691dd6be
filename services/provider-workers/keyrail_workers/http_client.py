"""The pooled upstream HTTP/1.1 client: asyncio protocol + httptools parser, keep-alive per origin.

Why not aiohttp or httpx: the upstream client dominates a worker's CPU per request (SPEC §8), and
this one needs about a third of aiohttp's CPU per request (70 to 110 us against 230 to 280 us on
the same machine, `python -m bench.client_cost`). It does only what an LLM upstream needs: POST
with a body, a response read whole or line by line as it arrives (SSE), TLS, keep-alive, timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

from keyrail_common.hosts import is_forbidden_address

_READ_CHUNK_LIMIT = 64 * 1024 * 1024  # a response body larger than this is refused


class UpstreamConnectionError(Exception):
    """Connecting, sending or reading failed before a complete response."""


class UpstreamTimeout(Exception):
    """No connection, headers or next body bytes within the timeout."""


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
        if self.headers_done is not None and self.headers_done.done():
            # A body delimited by the connection closing ends here; anything else was cut off.
            if self.keep_alive or self.headers.get("content-length") or self._chunked():
                self._fail(UpstreamConnectionError("connection closed mid-response"))
            else:
                self.on_message_complete()
        elif self.received_any:
            self._fail(UpstreamConnectionError("connection closed in the middle of the response headers"))
        else:
            self._fail(_ClosedBeforeResponse("connection closed before a response"))

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


class UpstreamResponse:
    """Status and headers at once; the body read whole (`read`) or line by line (`lines`)."""

    def __init__(
        self, pool: UpstreamPool, origin: tuple[str, str, int], connection: _Connection, timeout_s: float
    ):
        self._pool = pool
        self._origin = origin
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
            self._pool._checkin(self._origin, connection)
        elif connection.transport is not None:
            connection.transport.close()


class UpstreamPool:
    """Keep-alive connections per (scheme, host, port); nothing is shared between origins."""

    def __init__(self, connect_timeout_s: float = 10.0, max_idle_per_origin: int = 256) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle_per_origin
        self._ssl = ssl.create_default_context()

    def _checkin(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self._max_idle and not connection.closed:
            idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                address = await self._resolve(loop, host, port)
                _, connection = await loop.create_connection(
                    _Connection,
                    address,
                    port,
                    ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(
                f"no connection to {host}:{port} within {self._connect_timeout_s:g}s"
            ) from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to {host}:{port} ({type(exc).__name__})") from None
        return connection

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
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> UpstreamResponse:
        """Send the request and wait for the response headers."""
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, parts.hostname or "", port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append("\r\n")
        payload = "".join(head).encode("latin-1") + body
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                return await self._exchange(origin, connection, payload, timeout_s)
            except _ClosedBeforeResponse:
                continue  # the server closed this idle keep-alive connection as we reused it
        return await self._exchange(origin, await self._connect(origin), payload, timeout_s)

    async def _exchange(
        self, origin: tuple[str, str, int], connection: _Connection, payload: bytes, timeout_s: float
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
        return UpstreamResponse(self, origin, connection, timeout_s)

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                if connection.transport is not None:
                    connection.transport.close()
        self._idle.clear()
