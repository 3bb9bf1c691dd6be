"""A raw-byte HTTP/1.1 test server: exact framing, timing and abrupt closes under the test's control.

`asyncio.start_server` on 127.0.0.1 port 0 driven by a per-test script (one handler task per accepted
connection); it records the requests it parsed off the wire, the connections it accepted and the
EOFs it saw. Used by the upstream client's tests and as the origin behind the test proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass
class Request:
    """One request as the server parsed it off the wire."""

    conn_id: int
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str:
        (value,) = self.values(name)
        return value


class Peer:
    """The server side of one accepted connection."""

    def __init__(
        self, server: RawServer, conn_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.server = server
        self.conn_id = conn_id
        self.reader = reader
        self.writer = writer
        self.saw_eof = asyncio.Event()

    async def read_request(self) -> Request | None:
        """The next request on this connection; None when the client closed it cleanly."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            self.saw_eof.set()
            return None
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ")
        headers = []
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        lengths = [value for name, value in headers if name.lower() == "content-length"]
        body = await self.reader.readexactly(int(lengths[0])) if lengths else b""
        request = Request(self.conn_id, method, target, version, headers, body)
        self.server.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_eof(self) -> bytes:
        """Everything the client still sends until it closes the connection."""
        rest = await self.reader.read()
        self.saw_eof.set()
        return rest

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    """`async with RawServer(handler) as server`: one handler task per accepted connection."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.peers: list[Peer] = []
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.port = 0

    @property
    def connections(self) -> int:
        return len(self.peers)

    def url(self, target: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{target}"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        peer = Peer(self, len(self.peers), reader, writer)
        self.peers.append(peer)
        try:
            await self._handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-script: the test asserts on what the client saw
        except asyncio.CancelledError:
            pass  # stopped at the end of the test (3.11 logs handler tasks that end cancelled)
        except Exception as exc:  # an assertion inside a handler must fail the test
            self.errors.append(exc)
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for peer in self.peers:
            peer.writer.close()
        await self._server.wait_closed()
        if exc_type is None and self.errors:
            raise self.errors[0]


def response(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def answer_each(respond: Callable[[Request], bytes]) -> Handler:
    """A keep-alive server: answers every request on the connection until the client closes it."""

    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            await peer.send(respond(request))

    return handler
