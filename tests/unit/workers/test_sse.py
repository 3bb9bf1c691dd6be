"""SSE framing: `sse_events` turns upstream byte lines into (event name, data) pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from keyrail_workers.sse import sse_events
from tests.support.contracts import FIXTURES


async def _lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def events(items: Iterable[bytes]) -> list[tuple[str, bytes]]:
    return [event async for event in sse_events(_lines(items))]


async def collect(items: Iterable[bytes]) -> list[bytes]:
    """The data of each event."""
    return [data for _, data in await events(items)]


async def test_one_payload_per_event() -> None:
    lines = [b'data: {"a":1}\n', b"\n", b'data: {"b":2}\n', b"\n"]

    assert await collect(lines) == [b'{"a":1}', b'{"b":2}']


async def test_multi_line_data_is_joined_with_newlines() -> None:
    lines = [b"data: first\n", b"data: second\n", b"data: third\n", b"\n", b"data: next\n", b"\n"]

    assert await collect(lines) == [b"first\nsecond\nthird", b"next"]


async def test_comment_lines_are_skipped_and_comment_only_events_yield_nothing() -> None:
    lines = [b": keep-alive\n", b"\n", b":ping\n", b"data: x\n", b": between\n", b"data: y\n", b"\n"]

    assert await collect(lines) == [b"x\ny"]


async def test_other_fields_are_ignored() -> None:
    lines = [
        b"event: message_start\n",
        b"id: 42\n",
        b"retry: 1000\n",
        b'data: {"type":"message_start"}\n',
        b"\n",
        b"event: ping\n",
        b"\n",
    ]

    assert await collect(lines) == [b'{"type":"message_start"}']


async def test_crlf_line_endings() -> None:
    lines = [b"data: a\r\n", b"\r\n", b"data: b1\r\n", b"data: b2\r\n", b"\r\n"]

    assert await collect(lines) == [b"a", b"b1\nb2"]


async def test_lines_without_terminators_as_from_aiter_lines() -> None:
    assert await collect([b"data: a", b"", b"data: b", b""]) == [b"a", b"b"]


async def test_data_without_a_space_after_the_colon() -> None:
    assert await collect([b'data:{"x":1}\n', b"\n"]) == [b'{"x":1}']


@pytest.mark.parametrize(
    ("lines", "last"),
    [
        ([b"data: a\n", b"\n", b"data: tail\n"], b"tail"),
        ([b"data: a\n", b"\n", b"data: tail"], b"tail"),
        ([b"data: a\n", b"\n", b"data: ta\n", b"data: il\n"], b"ta\nil"),
    ],
    ids=["newline", "no-newline", "multi-line"],
)
async def test_trailing_event_without_a_blank_line_is_still_yielded(lines: list[bytes], last: bytes) -> None:
    assert await collect(lines) == [b"a", last]


async def test_done_sentinel_is_yielded_as_is() -> None:
    result = await collect([b"data: {}\n", b"\n", b"data: [DONE]\n", b"\n"])

    assert result == [b"{}", b"[DONE]"]


async def test_repeated_blank_lines_and_empty_streams_yield_nothing_extra() -> None:
    assert await collect([]) == []
    assert await collect([b"\n", b"\r\n", b"\n"]) == []
    assert await collect([b"data: a\n", b"\n", b"\n", b"\n"]) == [b"a"]


async def test_only_one_leading_space_is_removed() -> None:
    assert await collect([b"data:   indented\n", b"\n"]) == [b"  indented"]


@pytest.mark.parametrize(
    "name",
    [
        "openai/chat_stream_with_usage.sse",
        "openai/tool_calls_stream.sse",
        "openai/stream_error_midstream.sse",
        "anthropic/messages_stream.sse",
        "anthropic/tool_use_stream.sse",
    ],
)
async def test_fixture_streams_split_into_their_data_lines(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    expected = [line[len(b"data: ") :] for line in raw.splitlines() if line.startswith(b"data: ")]
    assert expected, "fixture has no data lines"

    # aiohttp's StreamReader iterates lines with their terminators, which is what the worker feeds in.
    assert await collect(raw.splitlines(keepends=True)) == expected
    assert await collect(raw.replace(b"\n", b"\r\n").splitlines(keepends=True)) == expected


# --- event names ----------------------------------------------------------------------------------


async def test_events_without_a_name_have_an_empty_one() -> None:
    assert await events([b"data: a\n", b"\n", b"data: b\n", b"\n"]) == [("", b"a"), ("", b"b")]


async def test_the_event_name_belongs_to_its_event_only() -> None:
    lines = [
        b"event: message_start\n",
        b'data: {"type":"message_start"}\n',
        b"\n",
        b'data: {"type":"unnamed"}\n',
        b"\n",
        b"event:content_block_delta\r\n",  # no space after the colon, CRLF
        b"data: x\r\n",
        b"\r\n",
    ]

    assert await events(lines) == [
        ("message_start", b'{"type":"message_start"}'),
        ("", b'{"type":"unnamed"}'),
        ("content_block_delta", b"x"),
    ]


async def test_an_event_name_without_data_yields_nothing_and_does_not_leak() -> None:
    lines = [b"event: ping\n", b"\n", b"data: after\n", b"\n"]

    assert await events(lines) == [("", b"after")]


async def test_a_trailing_named_event_keeps_its_name() -> None:
    assert await events([b"event: error\n", b'data: {"type":"error"}']) == [("error", b'{"type":"error"}')]


@pytest.mark.parametrize("name", ["anthropic/messages_stream.sse", "anthropic/tool_use_stream.sse"])
async def test_fixture_event_names_match_their_event_lines(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    blocks = [block for block in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b"data:" in block]
    expected = [
        next(
            (line[len(b"event: ") :].decode() for line in block.splitlines() if line.startswith(b"event: ")),
            "",
        )
        for block in blocks
    ]
    assert any(expected), "fixture has no event names"

    assert [event for event, _ in await events(raw.splitlines(keepends=True))] == expected
