"""How the transport reads a response (runner.fal.framing): bodies by length, chunked or
until the close, and what a hostile server sends — sizes it only claims, heads without end,
framings in conflict, bytes after the body — never held in memory or read as the next answer."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fal.wire_helpers import Counted, answering, lean_client, serving


async def test_a_chunked_body_is_joined_and_the_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;note=x\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n"
    )
    empty = b"HTTP/1.1 204 No Content\r\n\r\n"
    async with serving(answering(chunked, empty)) as port, lean_client() as client:
        response = await client.get(f"http://127.0.0.1:{port}/a")
        assert response.text == "hello world"
        again = await client.get(f"http://127.0.0.1:{port}/b")  # on the same connection
        assert again.status_code == 204 and again.content == b""


async def test_an_interim_answer_is_skipped_and_a_body_may_end_with_the_connection() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"
    async with serving(answering(answer, close=True)) as port, lean_client() as client:
        response = await client.get(f"http://127.0.0.1:{port}/a")
        assert response.text == "all of it"


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"
    async with serving(answering(cut, close=True)) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="received 9 bytes, expected 100"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_a_server_that_hangs_up_without_answering() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with serving(hang_up) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_a_chunk_claiming_gigabytes_is_streamed_not_buffered() -> None:
    # A hostile server names a 1 GiB chunk: its bytes must reach the caller as they come,
    # not pile up in memory until the whole chunk is in.
    start = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40000000\r\n"
    async with (
        serving(answering(start + b"x" * 100_000)) as port,
        lean_client(1.0) as client,
        client.stream("GET", f"http://127.0.0.1:{port}/a") as response,
    ):
        first = await anext(response.aiter_raw())
    assert first and set(first) == {ord("x")} and len(first) <= 1 << 16


@pytest.mark.parametrize("size", [b"-5", b"+5", b"0x5", b"5_0", b"", b"1" * 40])
async def test_a_chunk_size_that_is_not_plain_hex_is_refused(size: bytes) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    )
    async with serving(answering(answer)) as port, lean_client(1.0) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="bad chunk size"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_length_and_chunked_together_read_chunked_and_the_connection_is_not_reused() -> None:
    # Both framings at once is how request smuggling starts: chunked wins (RFC 9112 6.3),
    # and whatever the server meant by the length, nothing more is read on that connection.
    both = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )

    counting = Counted(answering(both, both))

    async with serving(counting) as port, lean_client() as client:
        for _ in range(2):
            assert (await client.get(f"http://127.0.0.1:{port}/a")).text == "hello"
    assert counting.connections == 2


@pytest.mark.parametrize("coding", [b"chunked, identity", b"gzip", b"xchunked"])
async def test_a_transfer_coding_other_than_chunked_is_refused(coding: bytes) -> None:
    # As httpx's own transport (h11) does: a body framed some other way has no sure end.
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: " + coding + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    async with serving(answering(answer, close=True)) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="Transfer-Encoding"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_a_head_without_end_is_refused_once_it_passes_the_limit() -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"p" * 100_000  # and nothing more, ever
    async with serving(answering(endless)) as port, lean_client(2.0) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="longer than"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_too_many_headers_are_refused() -> None:
    many = b"HTTP/1.1 200 OK\r\n" + b"x-a: 1\r\n" * 1000 + b"content-length: 0\r\n\r\n"
    async with serving(answering(many)) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="more than 100"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_endless_trailers_are_refused() -> None:
    trailers = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n" + b"x-t: 1\r\n" * 1000
    async with serving(answering(trailers)) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="more than 100"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_a_body_longer_than_its_length_is_not_left_for_the_next_request() -> None:
    # Bytes after the body would be read as the next response's head: never reused.
    # (Already so before this test was written; it keeps it so.)
    junk = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfake"

    counting = Counted(answering(junk, junk))

    async with serving(counting) as port, lean_client() as client:
        for _ in range(2):
            assert (await client.get(f"http://127.0.0.1:{port}/a")).text == "ok"
    assert counting.connections == 2


@pytest.mark.parametrize("prefix", [b"", b"HTTP/1.1 200 OK\r\n"])
async def test_a_server_echoing_the_request_does_not_put_it_in_the_error(prefix: bytes) -> None:
    # A proxy or test server that echoes what it got: the request line carries a signed
    # URL's query, the headers the key. The error says what was wrong, not what was there.
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(prefix + await reader.readuntil(b"\r\n\r\n"))
        await writer.drain()
        await reader.read()

    async with serving(echo) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            await client.get(
                f"http://127.0.0.1:{port}/file?signature=s3cr3t-sig",
                headers={"authorization": "Key id:s3cr3t-key"},
            )
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("length", [b"9" * 5000, b"1" * 20, b"+5", b"-1", b"5 5"])
async def test_a_content_length_that_is_not_a_plain_number_is_a_protocol_error(
    length: bytes,
) -> None:
    # int() refuses more than 4,300 digits with a ValueError: that must not escape as an
    # internal error, nor a length no file can have be believed.
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: " + length + b"\r\n\r\nok"
    async with serving(answering(answer)) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="Content-Length"):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_endless_interim_answers_are_refused() -> None:
    # Each 1xx head is bounded, but a server could send them for as long as it likes.
    interim = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" * 100
    answer = interim + b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    async with serving(answering(answer)) as port, lean_client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="interim"):
            await client.get(f"http://127.0.0.1:{port}/a")
