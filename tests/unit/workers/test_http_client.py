"""The pooled upstream HTTP/1.1 client against in-test servers that write exact raw bytes.

Every server here is a `RawServer` (tests/support/raw_http.py): `asyncio.start_server` on
127.0.0.1 port 0 driven by a per-test script, so the tests control framing (Content-Length,
chunked, read-until-close), timing and abrupt closes, and can check what actually went over the
wire (requests, connections opened, EOFs seen). TLS, proxies and NO_PROXY are in
test_http_client_egress.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from keyrail_workers import http_client
from keyrail_workers.http_client import (
    ProxySettings,
    UpstreamConnectionError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)
from tests.support.raw_http import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    Peer,
    RawServer,
    Request,
    answer_each,
    chunk,
    response,
)

# Upper bound for anything that is supposed to happen promptly: a hang fails the test instead.
PROMPT_S = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def new_pool(monkeypatch: pytest.MonkeyPatch, max_idle_per_origin: int = 256) -> UpstreamPool:
    # UpstreamPool() loads the system CA store (~50 ms); nothing here uses TLS, so skip that load.
    with monkeypatch.context() as patch:
        patch.setattr(ssl, "create_default_context", lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        return UpstreamPool(
            connect_timeout_s=PROMPT_S,
            max_idle_per_origin=max_idle_per_origin,
            proxies=ProxySettings(),  # direct, whatever proxy variables the test run inherited
        )


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[UpstreamPool]:
    upstream = new_pool(monkeypatch)
    yield upstream
    upstream.close()


def idle_count(upstream: UpstreamPool) -> int:
    return sum(len(connections) for connections in upstream._idle.values())


async def post(
    upstream: UpstreamPool, url: str, body: bytes = b"{}", timeout_s: float = PROMPT_S
) -> UpstreamResponse:
    async with asyncio.timeout(PROMPT_S + 1):
        return await upstream.post(url, {"Content-Type": "application/json"}, body, timeout_s)


async def read(resp: UpstreamResponse) -> bytes:
    async with asyncio.timeout(PROMPT_S + 1):
        return await resp.read()


async def collect_lines(resp: UpstreamResponse) -> list[bytes]:
    async with asyncio.timeout(PROMPT_S + 1):
        return [line async for line in resp.lines()]


# --- requests and Content-Length responses --------------------------------------------------------


async def test_content_length_response_and_the_request_on_the_wire(pool: UpstreamPool) -> None:
    payload = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi \xc3\xa9"}]}'
    answer = b'{"id":"chatcmpl-1","object":"chat.completion"}'
    async with RawServer(
        answer_each(lambda _: response(answer, headers="Content-Type: application/json\r\n"))
    ) as server:
        url = server.url("/openai/deployments/gpt/chat/completions?api-version=2024-06-01&x=a%20b")
        headers = {
            "Authorization": "Bearer sk-test-123",
            "X-Custom-Thing": "value with spaces",
            "Content-Type": "application/json",
        }
        async with asyncio.timeout(PROMPT_S):
            resp = await pool.post(url, headers, payload, 5.0)
        body = await read(resp)
        resp.release()

    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-length"] == str(len(answer))
    assert body == answer
    (request,) = server.requests
    assert request.method == "POST"
    assert request.target == "/openai/deployments/gpt/chat/completions?api-version=2024-06-01&x=a%20b"
    assert request.version == "HTTP/1.1"
    assert request.header("Host") == f"127.0.0.1:{server.port}"
    assert request.header("Content-Length") == str(len(payload))
    assert request.header("Authorization") == "Bearer sk-test-123"
    assert request.header("X-Custom-Thing") == "value with spaces"
    assert request.header("Content-Type") == "application/json"
    assert request.body == payload


async def test_url_without_path_requests_the_root(pool: UpstreamPool) -> None:
    async with RawServer(answer_each(lambda _: response(b"ok"))) as server:
        resp = await post(pool, f"http://127.0.0.1:{server.port}", body=b"")
        assert await read(resp) == b"ok"
        resp.release()

    (request,) = server.requests
    assert request.target == "/"
    assert request.header("Content-Length") == "0"
    assert request.body == b""


async def test_headers_and_body_split_across_many_segments(pool: UpstreamPool) -> None:
    raw = response(b"0123456789" * 50, headers="X-Request-Id: req-42\r\nContent-Type: application/json\r\n")

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        for start in range(0, len(raw), 7):  # cuts through the status line, names, values and body
            await peer.send(raw[start : start + 7])
            if start < 120:
                await asyncio.sleep(0.001)
        await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        assert resp.status == 200
        assert resp.headers["x-request-id"] == "req-42"
        assert resp.headers["content-type"] == "application/json"
        assert await read(resp) == b"0123456789" * 50
        resp.release()


async def test_no_content_response_has_an_empty_body_and_keeps_the_connection(pool: UpstreamPool) -> None:
    async with RawServer(answer_each(lambda _: b"HTTP/1.1 204 No Content\r\n\r\n")) as server:
        for _ in range(2):
            resp = await post(pool, server.url())
            assert resp.status == 204
            assert await read(resp) == b""
            resp.release()

    assert server.connections == 1


# --- chunked responses and SSE --------------------------------------------------------------------


async def test_chunked_response_read_whole(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b'{"a":'))
        await asyncio.sleep(0.01)
        await peer.send(chunk(b"1,") + b"6;ext=1\r\n")  # a chunk header cut from its data
        await asyncio.sleep(0.01)
        await peer.send(b'"b":2}\r\n')
        await peer.send(LAST_CHUNK)
        await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        assert resp.status == 200
        assert await read(resp) == b'{"a":1,"b":2}'
        resp.release()


async def test_lines_yields_each_line_before_the_next_bytes_are_sent(pool: UpstreamPool) -> None:
    # Each step is one chunk. After a step that completes lines, the server waits for the client to
    # have yielded them before it sends anything more: a client that buffers would deadlock here.
    steps: list[tuple[bytes, int | None]] = [
        (b"data: one\n\n", 0),
        (b"data: tw", None),  # a line split across chunk boundaries ...
        (b"o\n\nda", 1),  # ... completed by the next chunk, which starts yet another line
        (b"ta: three\n", 2),
        (b"\ndata: tail", None),  # the last line has no newline
    ]
    gates = [asyncio.Event() for _ in range(3)]
    sent = 0

    async def handler(peer: Peer) -> None:
        nonlocal sent
        await peer.read_request()
        await peer.send(CHUNKED_HEAD)
        for data, gate in steps:
            await peer.send(chunk(data))
            sent += 1
            if gate is not None:
                await gates[gate].wait()
            else:
                await asyncio.sleep(0.01)  # lets the partial line arrive on its own
        await peer.send(LAST_CHUNK)
        await peer.wait_eof()

    seen: list[tuple[bytes, int]] = []
    open_gate_after = {1: 0, 3: 1, 4: 2}  # line index -> gate it releases
    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        async with asyncio.timeout(PROMPT_S):
            async for line in resp.lines():
                seen.append((line, sent))
                if (gate := open_gate_after.get(len(seen) - 1)) is not None:
                    gates[gate].set()
        resp.release()

    assert seen == [
        (b"data: one\n", 1),
        (b"\n", 1),
        (b"data: two\n", 3),
        (b"\n", 3),
        (b"data: three\n", 4),
        (b"\n", 5),
        (b"data: tail", 5),
    ]


async def test_lines_without_trailing_newline_on_a_content_length_body(pool: UpstreamPool) -> None:
    async with RawServer(answer_each(lambda _: response(b"a\nb\r\n\nlast"))) as server:
        resp = await post(pool, server.url())
        assert await collect_lines(resp) == [b"a\n", b"b\r\n", b"\n", b"last"]
        resp.release()


# --- keep-alive and reuse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: response(b"echo:" + request.body),
        lambda request: CHUNKED_HEAD + chunk(b"data: echo:") + chunk(request.body + b"\n\n") + LAST_CHUNK,
        lambda request: response(b'{"error":"echo:' + request.body + b'"}', status="503 Service Unavailable"),
    ],
    ids=["content-length", "chunked", "error-status"],
)
async def test_sequential_requests_after_release_share_one_connection(
    pool: UpstreamPool, answer: Callable[[Request], bytes]
) -> None:
    async with RawServer(answer_each(answer)) as server:
        for body in (b"first", b"second", b"third"):
            resp = await post(pool, server.url(), body=body)
            assert b"echo:" + body in await read(resp)
            resp.release()
            assert idle_count(pool) == 1

    assert [(r.conn_id, r.body) for r in server.requests] == [(0, b"first"), (0, b"second"), (0, b"third")]
    assert server.connections == 1


async def test_connection_released_before_the_body_ends_is_closed_not_reused(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        request = await peer.read_request()
        assert request is not None
        if peer.conn_id == 0:
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")  # 5 of 10 bytes, for now
            await peer.wait_eof()
        else:
            await peer.send(response(b"fresh"))
            await peer.wait_eof()

    async with RawServer(handler) as server:
        first = await post(pool, server.url())
        assert first.status == 200
        first.release()  # body not read (and not even fully sent)
        assert idle_count(pool) == 0
        async with asyncio.timeout(PROMPT_S):
            await server.peers[0].saw_eof.wait()  # the client closed it

        second = await post(pool, server.url())
        assert await read(second) == b"fresh"
        second.release()

    assert server.connections == 2
    assert [r.conn_id for r in server.requests] == [0, 1]


async def test_server_closing_an_idle_connection_is_transparent(pool: UpstreamPool) -> None:
    closed = asyncio.Event()

    async def handler(peer: Peer) -> None:
        request = await peer.read_request()
        assert request is not None
        await peer.send(response(f"conn{peer.conn_id}".encode()))  # keep-alive by default ...
        if peer.conn_id == 0:
            peer.close()  # ... but the server drops it while idle
            closed.set()
        else:
            await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        assert await read(resp) == b"conn0"
        resp.release()
        async with asyncio.timeout(PROMPT_S):
            await closed.wait()
        await asyncio.sleep(0.02)  # the client's loop sees the close
        assert idle_count(pool) == 1  # still listed, but known to be closed

        resp = await post(pool, server.url())
        assert await read(resp) == b"conn1"
        resp.release()

    assert server.connections == 2


async def test_idle_connection_closed_as_the_request_is_sent_is_retried_afresh(pool: UpstreamPool) -> None:
    # The close crosses the request on the wire: the server reads the second request on the reused
    # connection and hangs up without an answer. The client must retry on a new connection.
    async def handler(peer: Peer) -> None:
        request = await peer.read_request()
        assert request is not None
        await peer.send(response(f"conn{peer.conn_id}:".encode() + request.body))
        if peer.conn_id == 0:
            await peer.read_request()
            peer.close()
        else:
            await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url(), body=b"first")
        assert await read(resp) == b"conn0:first"
        resp.release()
        assert idle_count(pool) == 1

        resp = await post(pool, server.url(), body=b"second")
        assert resp.status == 200
        assert await read(resp) == b"conn1:second"
        resp.release()

    assert server.connections == 2
    assert [(r.conn_id, r.body) for r in server.requests] == [(0, b"first"), (0, b"second"), (1, b"second")]


async def test_fresh_connection_closed_without_answer_is_an_error_not_retried(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        peer.close()

    async with RawServer(handler) as server:
        with pytest.raises(UpstreamConnectionError):
            await post(pool, server.url())

    assert server.connections == 1
    assert idle_count(pool) == 0


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n",
    ],
    ids=["http11-connection-close", "http10"],
)
async def test_body_delimited_by_close_is_read_whole(pool: UpstreamPool, head: bytes) -> None:
    async def handler(peer: Peer) -> None:
        request = await peer.read_request()
        assert request is not None
        if peer.conn_id == 0:
            await peer.send(head + b'{"part":1,')
            await asyncio.sleep(0.02)
            await peer.send(b'"more":2}')
            await asyncio.sleep(0.01)
            peer.close()
        else:
            await peer.send(response(b"next"))
            await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        assert resp.status == 200
        assert await read(resp) == b'{"part":1,"more":2}'
        resp.release()
        assert idle_count(pool) == 0

        resp = await post(pool, server.url())
        assert await read(resp) == b"next"
        resp.release()

    assert server.connections == 2


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (response(b"bye", headers="Connection: close\r\n"), b"bye"),
        (b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", b""),
    ],
    ids=["content-length", "no-content"],
)
async def test_connection_close_response_is_not_pooled(pool: UpstreamPool, raw: bytes, body: bytes) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(raw)
        await peer.wait_eof()  # the client, not the server, closes it here

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        assert await read(resp) == body
        resp.release()
        assert idle_count(pool) == 0
        async with asyncio.timeout(PROMPT_S):
            await server.peers[0].saw_eof.wait()


# --- broken responses -----------------------------------------------------------------------------


async def test_truncated_content_length_body_raises(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await asyncio.sleep(0.01)
        peer.close()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        assert resp.status == 200
        with pytest.raises(UpstreamConnectionError):
            await read(resp)
        resp.release()
        assert idle_count(pool) == 0


async def test_chunked_stream_cut_midway_raises_from_lines(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: a\n\n"))
        await asyncio.sleep(0.02)
        await peer.send(b"10\r\ndata: b")  # 7 of the 16 announced bytes, then the connection drops
        await asyncio.sleep(0.01)
        peer.close()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        got: list[bytes] = []
        with pytest.raises(UpstreamConnectionError):
            async with asyncio.timeout(PROMPT_S):
                async for line in resp.lines():
                    got.append(line)
        resp.release()

    assert got == [b"data: a\n", b"\n"]  # the partial line is not passed off as complete


async def test_connection_refused(pool: UpstreamPool) -> None:
    with pytest.raises(UpstreamConnectionError):
        await post(pool, f"http://127.0.0.1:{free_port()}/v1/chat/completions")


async def test_headers_never_arriving_time_out_and_close_the_connection(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.wait_eof()  # never answers

    async with RawServer(handler) as server:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await post(pool, server.url(), timeout_s=0.2)
        elapsed = time.monotonic() - started
        async with asyncio.timeout(PROMPT_S):
            await server.peers[0].saw_eof.wait()

    assert 0.15 <= elapsed < 2.0
    assert idle_count(pool) == 0


async def test_body_stalling_mid_read_times_out(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url(), timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await read(resp)
        elapsed = time.monotonic() - started
        resp.release()
        async with asyncio.timeout(PROMPT_S):
            await server.peers[0].saw_eof.wait()

    assert 0.15 <= elapsed < 2.0


async def test_stream_stalling_times_out_from_lines_after_the_lines_so_far(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: a\n\n"))
        await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url(), timeout_s=0.2)
        got: list[bytes] = []
        with pytest.raises(UpstreamTimeout):
            async with asyncio.timeout(PROMPT_S):
                async for line in resp.lines():
                    got.append(line)
        resp.release()

    assert got == [b"data: a\n", b"\n"]


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (
            "503 Service Unavailable",
            "application/json",
            b'{"error":{"message":"overloaded","type":"server_error"}}',
        ),
        ("429 Too Many Requests", "application/json", b'{"error":{"message":"slow down"}}'),
        ("401 Unauthorized", "text/plain", b"bad key"),
    ],
)
async def test_error_statuses_are_responses_not_exceptions(
    pool: UpstreamPool, status: str, content_type: str, body: bytes
) -> None:
    head = f"Content-Type: {content_type}\r\nRetry-After: 3\r\n"
    async with RawServer(answer_each(lambda _: response(body, status=status, headers=head))) as server:
        resp = await post(pool, server.url())
        assert resp.status == int(status.split()[0])
        assert resp.headers["content-type"] == content_type
        assert resp.headers["retry-after"] == "3"
        got = await read(resp)
        resp.release()

    assert got == body
    if content_type == "application/json":
        assert "error" in json.loads(got)


@pytest.mark.parametrize(
    "raw",
    [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"],
    ids=["garbage", "bad-status", "bad-content-length"],
)
async def test_malformed_response_head_is_a_connection_error(pool: UpstreamPool, raw: bytes) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(raw)
        await peer.wait_eof()

    async with RawServer(handler) as server:
        started = time.monotonic()
        with pytest.raises(UpstreamConnectionError):
            await post(pool, server.url(), timeout_s=PROMPT_S)
        assert time.monotonic() - started < 1.0  # failed on the bytes, not by timing out
        async with asyncio.timeout(PROMPT_S):
            await server.peers[0].saw_eof.wait()

    assert idle_count(pool) == 0


async def test_malformed_chunk_framing_is_a_connection_error(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: ok\n\n") + b"zz\r\nnot hex\r\n")
        await peer.wait_eof()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        with pytest.raises(UpstreamConnectionError):
            await read(resp)
        resp.release()

    assert idle_count(pool) == 0


async def test_body_over_the_size_limit_is_refused(
    pool: UpstreamPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_client, "_READ_CHUNK_LIMIT", 16)
    async with RawServer(answer_each(lambda _: response(b"x" * 64))) as server:
        resp = await post(pool, server.url())
        with pytest.raises(UpstreamConnectionError, match="too large"):
            await read(resp)
        resp.release()


# --- concurrency and pool lifecycle ---------------------------------------------------------------


async def test_concurrent_posts_each_get_their_own_answer(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            await asyncio.sleep(0.03)
            await peer.send(response(b"echo:" + request.body))

    async def one(i: int) -> bytes:
        resp = await post(pool, server.url(), body=f"id={i}".encode())
        try:
            assert resp.status == 200
            return await read(resp)
        finally:
            resp.release()

    ids = range(20)
    async with RawServer(handler) as server:
        started = time.monotonic()
        got = await asyncio.gather(*(one(i) for i in ids))
        elapsed = time.monotonic() - started

    assert got == [f"echo:id={i}".encode() for i in ids]
    assert sorted(r.body for r in server.requests) == sorted(f"id={i}".encode() for i in ids)
    assert server.connections == 20  # all in flight at once: nothing idle to share
    assert idle_count(pool) <= 20
    assert elapsed < 0.03 * 20 / 2  # they really ran concurrently


async def test_concurrent_posts_take_one_idle_connection_each(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            await asyncio.sleep(0.02)
            await peer.send(response(f"conn{peer.conn_id}:".encode() + request.body))

    async def one(i: int) -> bytes:
        resp = await post(pool, server.url(), body=str(i).encode())
        body = await read(resp)
        resp.release()
        return body

    async with RawServer(handler) as server:
        await asyncio.gather(*(one(i) for i in range(20)))
        assert idle_count(pool) == 20
        second = await asyncio.gather(*(one(i) for i in range(20)))

    assert server.connections == 20  # the second round opened nothing new
    assert idle_count(pool) == 20
    assert [body.split(b":")[1] for body in second] == [str(i).encode() for i in range(20)]
    second_round = [r.conn_id for r in server.requests[20:]]
    assert sorted(second_round) == list(range(20))  # each pooled connection served exactly one


async def test_idle_connections_beyond_the_limit_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = new_pool(monkeypatch, max_idle_per_origin=2)

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await asyncio.sleep(0.02)
            await peer.send(response(str(peer.conn_id).encode()))

    async def one() -> tuple[UpstreamResponse, int]:
        resp = await post(upstream, server.url())
        return resp, int(await read(resp))

    try:
        async with RawServer(handler) as server:
            answered = await asyncio.gather(*(one() for _ in range(5)))
            for resp, _ in answered:
                resp.release()
            assert idle_count(upstream) == 2
            kept = [server.peers[conn_id] for _, conn_id in answered[:2]]
            dropped = [server.peers[conn_id] for _, conn_id in answered[2:]]
            async with asyncio.timeout(PROMPT_S):
                for peer in dropped:
                    await peer.saw_eof.wait()
            assert not any(peer.saw_eof.is_set() for peer in kept)
    finally:
        upstream.close()


async def test_close_closes_idle_connections(pool: UpstreamPool) -> None:
    async with RawServer(answer_each(lambda _: response(b"ok"))) as server:
        responses = [await post(pool, server.url()) for _ in range(2)]
        for resp in responses:
            assert await read(resp) == b"ok"
            resp.release()
        await asyncio.sleep(0.03)
        assert not any(peer.saw_eof.is_set() for peer in server.peers)  # kept open while idle

        pool.close()
        async with asyncio.timeout(PROMPT_S):
            for peer in server.peers:
                await peer.saw_eof.wait()
        assert idle_count(pool) == 0


# --- known bugs -----------------------------------------------------------------------------------


async def test_complete_response_then_server_close_reads_fine_when_consumed_later_regression(
    pool: UpstreamPool,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(b'{"ok":true}', headers="Connection: close\r\n"))
        peer.close()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        await asyncio.sleep(0.05)  # the consumer is busy for a moment (metrics, a publish, ...)
        assert await read(resp) == b'{"ok":true}'
        resp.release()


async def test_finished_stream_then_close_yields_every_line_to_a_slow_consumer(pool: UpstreamPool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        await peer.send(head + chunk(b"data: a\n\n"))
        await asyncio.sleep(0.01)
        await peer.send(chunk(b"data: [DONE]") + LAST_CHUNK)
        peer.close()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        got: list[bytes] = []
        async with asyncio.timeout(PROMPT_S):
            async for line in resp.lines():
                got.append(line)
                await asyncio.sleep(0.05)  # e.g. publishing the event downstream
        resp.release()

    assert got == [b"data: a\n", b"\n", b"data: [DONE]"]


async def test_truncated_chunked_stream_with_capitalised_transfer_encoding_raises_regression(
    pool: UpstreamPool,
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
        await peer.send(head + chunk(b"hello"))  # no terminal chunk: the body is incomplete
        await asyncio.sleep(0.01)
        peer.close()

    async with RawServer(handler) as server:
        resp = await post(pool, server.url())
        with pytest.raises(UpstreamConnectionError):
            await read(resp)
        resp.release()


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data", "http://[::ffff:169.254.169.254]/x"]
)
async def test_metadata_addresses_are_refused_at_connect_time(pool: UpstreamPool, url: str) -> None:
    with pytest.raises(UpstreamConnectionError, match="link-local address: refused"):
        await pool.post(url, {}, b"{}", timeout_s=1)


async def test_a_name_that_resolves_to_the_metadata_range_is_refused_dns_rebinding(
    pool: UpstreamPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()

    async def rebinding_dns(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding_dns)
    with pytest.raises(UpstreamConnectionError, match=r"llm\.example\.com resolves to 169\.254\.169\.254"):
        await pool.post("https://llm.example.com/v1/chat/completions", {}, b"{}", timeout_s=1)
