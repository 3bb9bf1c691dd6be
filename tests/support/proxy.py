"""A small HTTP proxy for tests: CONNECT tunnels, absolute-form forwarding, Basic authentication.

`async with ConnectProxy(credentials=("user", "pass")) as proxy:` listens on 127.0.0.1 port 0 in the
test's event loop and records every request head it reads (`proxy.requests`), so tests assert on
what a proxy actually saw: CONNECT targets, `Proxy-Authorization` values, absolute-form targets, and
how many tunnels were opened. It only ever connects onwards to 127.0.0.1 (a CONNECT or forward to
`localhost` or `llm.test` goes to 127.0.0.1; anything else is answered 502), so no test traffic
leaves the host.

Failure modes for the client's error paths: `connect_answer` (raw bytes sent in answer to every
CONNECT, then the connection is closed: a 403, a 502, garbage) and `hang` (read the CONNECT and
never answer).

`python -m tests.support.proxy --port N` runs it standalone (the benchmark runs it in a process of
its own so its CPU is not counted as the client's).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

# The names the proxy resolves itself (the client never resolves an origin it reaches through the
# proxy): "llm.test" lets a test use an origin name that nothing else on the machine resolves.
_ONWARD_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "llm.test": "127.0.0.1"}


@dataclass
class ProxyRequest:
    """One request head as the proxy read it from a client."""

    conn_id: int
    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[0] if values else None


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    first, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return first, headers


def _content_length(headers: list[tuple[str, str]]) -> int:
    lengths = [value for name, value in headers if name.lower() == "content-length"]
    return int(lengths[0]) if lengths else 0


class ConnectProxy:
    def __init__(
        self,
        credentials: tuple[str, str] | None = None,
        connect_answer: bytes | None = None,
        hang: bool = False,
    ) -> None:
        self._expected = (
            "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            if credentials
            else None
        )
        self._connect_answer = connect_answer
        self._hang = hang
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.requests: list[ProxyRequest] = []
        self.connections = 0
        self.tunnels = 0
        self.port = 0

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The proxy URL as HTTPS_PROXY would hold it (user and password already percent-encoded)."""
        credentials = f"{user}:{password}@" if user is not None else ""
        return f"http://{credentials}127.0.0.1:{self.port}"

    @property
    def connects(self) -> list[ProxyRequest]:
        return [request for request in self.requests if request.method == "CONNECT"]

    async def start(self, port: int = 0) -> ConnectProxy:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aenter__(self) -> ConnectProxy:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        conn_id = self.connections
        self.connections += 1
        upstream: tuple[str, asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while (head := await _read_head(reader)) is not None:
                first, headers = head
                method, target, _ = first.split(" ")
                request = ProxyRequest(conn_id, method, target, headers)
                self.requests.append(request)
                if self._expected is not None and request.header("Proxy-Authorization") != self._expected:
                    await self._answer(writer, b"407 Proxy Authentication Required", 'Basic realm="test"')
                    return
                if method == "CONNECT":
                    await self._tunnel(reader, writer, target)
                    return
                upstream = await self._forward(reader, writer, request, upstream)
                if upstream is None:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # stopped at the end of the test
        finally:
            if upstream is not None:
                upstream[2].close()
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: bytes, authenticate: str = "") -> None:
        extra = f"Proxy-Authenticate: {authenticate}\r\n".encode() if authenticate else b""
        writer.write(
            b"HTTP/1.1 " + status + b"\r\n" + extra + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str) -> None:
        if self._hang:
            await asyncio.Event().wait()
        if self._connect_answer is not None:
            writer.write(self._connect_answer)
            await writer.drain()
            return
        host, _, port = target.rpartition(":")
        onward = _ONWARD_HOSTS.get(host.strip("[]"))
        if onward is None:
            await self._answer(writer, b"502 Bad Gateway")
            return
        try:
            origin_reader, origin_writer = await asyncio.open_connection(onward, int(port))
        except OSError:
            await self._answer(writer, b"502 Bad Gateway")
            return
        self.tunnels += 1
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, origin_writer), _pipe(origin_reader, writer))
        finally:
            origin_writer.close()

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: ProxyRequest,
        upstream: tuple[str, asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Plain HTTP: absolute-form in, origin-form out, `Proxy-*` headers dropped, one response back
        (Content-Length framed); the connection to the origin is kept for the next request."""
        body = await reader.readexactly(_content_length(request.headers))
        parts = urlsplit(request.target)
        onward = _ONWARD_HOSTS.get(parts.hostname or "")
        if parts.scheme != "http" or onward is None:
            await self._answer(writer, b"502 Bad Gateway")
            return None
        authority = f"{onward}:{parts.port or 80}"
        if upstream is None or upstream[0] != authority:
            if upstream is not None:
                upstream[2].close()
            origin_reader, origin_writer = await asyncio.open_connection(onward, parts.port or 80)
            upstream = (authority, origin_reader, origin_writer)
        _, origin_reader, origin_writer = upstream
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{request.method} {target} HTTP/1.1"]
        lines += [
            f"{name}: {value}" for name, value in request.headers if not name.lower().startswith("proxy-")
        ]
        origin_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await origin_writer.drain()
        answer = await _read_head(origin_reader)
        if answer is None:
            await self._answer(writer, b"502 Bad Gateway")
            return None
        status_line, headers = answer
        response_body = await origin_reader.readexactly(_content_length(headers))
        head = "\r\n".join([status_line, *(f"{name}: {value}" for name, value in headers)])
        writer.write(head.encode("latin-1") + b"\r\n\r\n" + response_body)
        await writer.drain()
        return upstream


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.proxy", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    args = parser.parse_args()
    credentials = (args.user, args.password) if args.user is not None else None

    async def serve() -> None:
        await ConnectProxy(credentials).start(args.port)
        print(f"proxy listening on http://127.0.0.1:{args.port}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
