"""The client's HTTP/1.1 transport (runner.fal.wire): the same requests, timeouts,
refusals, TLS and pooling as through httpx's default transport, over real loopback sockets.
How responses are framed, hostile ones included: test_fal_framing.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trustme

from runner.fal import FalClient, FalConfig
from runner.fal.connection import Connection
from runner.fal.retry import NotSent, unreachable
from runner.fal.session import Client
from runner.fal.wire import LeanTransport
from tests.fal.wire_helpers import Counted, answer_ok, answering, free_slots, lean_client, serving


def test_the_fal_client_uses_the_lean_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it the runner spends twice the CPU per request: this must not go quietly.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    fal = FalClient(FalConfig())
    assert isinstance(fal._http._transport, LeanTransport)  # type: ignore[attr-defined]


def test_a_proxy_in_the_environment_keeps_httpx_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx routes through an environment proxy only with its own transport.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    fal = FalClient(FalConfig())
    assert not isinstance(fal._http._transport, LeanTransport)  # type: ignore[attr-defined]


def test_an_injected_transport_is_left_alone() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    fal = FalClient(FalConfig(), transport=transport)
    assert fal._http._transport is transport  # type: ignore[attr-defined]


async def test_requests_share_one_kept_alive_connection() -> None:
    counting = Counted(answer_ok)

    async with serving(counting) as port, lean_client() as client:
        for _ in range(5):
            response = await client.get(f"http://127.0.0.1:{port}/status")
            assert response.json() == {"status": "COMPLETED"}
    assert counting.connections == 1


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    async with serving(silent) as port, lean_client(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{port}/status")


async def test_a_refused_connection_keeps_its_cause() -> None:
    async with serving(answer_ok) as port:
        pass  # closed: nothing listens on the port now
    async with lean_client() as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{port}/status")
    assert unreachable(info.value) == "the host refused the connection"


async def test_an_unknown_host_name_keeps_its_cause() -> None:
    async with lean_client() as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get("http://no-such-host.invalid/status")
    assert unreachable(info.value) == "the host name does not resolve (DNS)"


async def test_tls_is_verified_against_the_trusted_authority() -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with serving(answer_ok, tls=server) as port:
        async with lean_client(verify=trusting) as client:
            response = await client.get(f"https://127.0.0.1:{port}/status")
            assert response.json() == {"status": "COMPLETED"}
        async with lean_client() as untrusting:  # the system's authorities only
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"https://127.0.0.1:{port}/status")


async def test_a_body_in_small_pieces_arrives_whole_and_in_order() -> None:
    # Small writes are held and sent together (one system call per request, not three);
    # a body of many of them must still arrive whole, in order, with backpressure.
    async def digesting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(length)
        answer = hashlib.sha256(body).hexdigest().encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n" + answer)
        await writer.drain()
        writer.close()

    pieces = [bytes([i % 251]) * (1000 + i) for i in range(300)]  # ~480 KB in all

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    size = sum(len(p) for p in pieces)
    async with serving(digesting) as port, lean_client() as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/upload",
            content=body(),
            headers={"content-length": str(size)},
        )
    assert response.text == hashlib.sha256(b"".join(pieces)).hexdigest()


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    once = Counted(answering(ok, close=True))

    async with serving(once) as port, lean_client() as client:
        for _ in range(3):
            assert (await client.get(f"http://127.0.0.1:{port}/a")).text == "ok"
            await asyncio.sleep(0.05)  # the server's close reaches the client's loop
    assert once.connections == 3


async def test_connections_beyond_the_limit_wait_for_one_to_close() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    async with serving(slow) as port, lean_client(timeout=0.3, max_connections=1) as client:
        first = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/a", timeout=2))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(f"http://127.0.0.1:{port}/b")
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first


async def test_a_streamed_body_without_length_goes_chunked() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        body = b""
        while (size := int((await reader.readuntil(b"\r\n")).strip(), 16)) != 0:
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one ", b"", b"two"):
            yield piece

    async with serving(echo) as port, lean_client() as client:
        response = await client.post(f"http://127.0.0.1:{port}/a", content=pieces())
        assert response.text == "one two"


async def test_a_header_with_a_newline_is_refused_before_sending() -> None:
    async with serving(answer_ok) as port, lean_client() as client:
        with pytest.raises(NotSent):
            await client.get(f"http://127.0.0.1:{port}/a", headers={"x-a": "b\r\nx-b: c"})


async def test_cookies_a_server_sets_are_kept_and_sent_back() -> None:
    # The client's jar skips responses without Set-Cookie; one with it still counts.
    seen: list[bytes] = []

    async def cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in (b"set-cookie: session=abc; Path=/\r\n", b""):
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n" + answer + b"\r\n")
            await writer.drain()
        writer.close()

    async with serving(cookie) as port, Client(transport=LeanTransport()) as client:
        await client.get(f"http://127.0.0.1:{port}/a")
        await client.get(f"http://127.0.0.1:{port}/b")
        assert client.cookies.get("session") == "abc"
    assert b"cookie: session=abc" in seen[1].lower()


async def test_a_response_head_refused_after_it_was_read_gives_back_its_slot() -> None:
    bad = b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n"
    transport = LeanTransport(max_connections=1)
    async with (
        serving(answering(bad, bad)) as port,
        httpx.AsyncClient(transport=transport) as client,
    ):
        for _ in range(2):  # the second would wait for the first's slot for ever
            with pytest.raises(httpx.RemoteProtocolError, match="Content-Length"):
                await client.get(f"http://127.0.0.1:{port}/a", timeout=httpx.Timeout(2, pool=0.5))
        assert free_slots(transport) == 1


@pytest.mark.parametrize("where", ["connect", "drain", "head", "body"])
async def test_cancelled_at_any_wait_the_slot_is_given_back_once(where: str) -> None:
    # Cancelled in a TLS handshake, while the request is still being written, while
    # waiting for the head, or in the middle of the body with nobody closing the response
    # (a task cancelled in aread): the connection is closed, never kept, and its slot
    # freed exactly once.
    reached = asyncio.Event()

    async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if where not in ("connect", "drain"):  # else a handshake or a body never read
            await reader.readuntil(b"\r\n\r\n")
        if where == "body":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome")
            await writer.drain()
        reached.set()
        await reader.read()

    transport = LeanTransport(max_connections=2)
    body = b"x" * (8 << 20) if where == "drain" else b""
    async with serving(stalling) as port, httpx.AsyncClient(transport=transport) as client:
        scheme = "https" if where == "connect" else "http"
        request = client.build_request("POST", f"{scheme}://127.0.0.1:{port}/a", content=body)
        if where == "body":
            response = await client.send(request, stream=True)
            started = asyncio.Event()

            async def read_all() -> None:
                async for _ in response.aiter_raw():
                    started.set()

            task = asyncio.create_task(read_all())
            await started.wait()
        else:
            task = asyncio.create_task(client.send(request))
            await reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert free_slots(transport) == 2
        assert not transport._idle.get((b"http", "127.0.0.1", port))  # type: ignore[attr-defined]
        if where == "body":
            await response.aclose()
            assert free_slots(transport) == 2


async def test_a_body_that_times_out_gives_back_its_slot_unclosed() -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome"
    transport = LeanTransport(max_connections=1)
    async with serving(answering(cut)) as port, httpx.AsyncClient(transport=transport) as client:
        request = client.build_request("GET", f"http://127.0.0.1:{port}/a", timeout=0.2)
        response = await client.send(request, stream=True)
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()
        assert free_slots(transport) == 1


async def test_a_connection_closed_before_the_loop_saw_it_is_not_reused() -> None:
    # A POST written on a connection the server already closed fails after the write: a
    # submit that surely never reached fal would be reported as maybe queued. httpx's own
    # pool asks the socket whether it is readable before reusing it; so does this one.
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    _, connection = await loop.create_connection(lambda: Connection(lambda: None), sock=ours)
    transport = LeanTransport()
    origin = (b"http", "127.0.0.1", 1)
    transport.release(origin, connection)
    theirs.close()  # its end is in our socket now; the loop has not run since
    assert transport._reuse(origin) is None  # type: ignore[attr-defined]
    await transport.aclose()


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {"x-a": "b\x00c"}),
        ("GET", {"x a": "b"}),
        ("GET", {"x-a:": "b"}),
        ("GE T", {}),
        ("GET\r\nX-Injected: 1\r\n", {}),
    ],
)
async def test_a_request_h11_would_refuse_is_refused_before_a_byte_is_sent(
    method: str, headers: dict[str, str]
) -> None:
    heard: list[bytes] = []
    done = asyncio.Event()

    async def listening(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.read())  # all the client sent before it hung up
        done.set()

    async with serving(listening) as port:
        async with lean_client(timeout=2) as client:
            with pytest.raises(NotSent) as info:
                await client.request(method, f"http://127.0.0.1:{port}/a", headers=headers)
        await done.wait()
    assert "b\x00c" not in str(info.value)  # a value is never echoed: it may be a key
    assert heard == [b""]


async def test_a_connection_freed_while_another_origin_waits_is_not_kept_idle() -> None:
    # One slot; a request to the second server waits for it while the first is answered.
    # Kept idle for the first origin, the connection would hold the slot until PoolTimeout.
    go = asyncio.Event()

    async def later(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        await answer_ok(reader, writer)

    transport = LeanTransport(max_connections=1)
    async with (
        serving(later) as first,
        serving(answer_ok) as second,
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(2, pool=1)) as client,
    ):
        one = asyncio.create_task(client.get(f"http://127.0.0.1:{first}/a"))
        while free_slots(transport):  # the first request holds the slot
            await asyncio.sleep(0)
        two = asyncio.create_task(client.get(f"http://127.0.0.1:{second}/b"))
        while not transport._free._waiters:  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        go.set()
        assert (await one).status_code == 200
        assert (await two).status_code == 200


async def test_an_idle_connection_gives_its_slot_to_a_request_for_another_origin() -> None:
    # One slot, held by a connection idle for the first server: a request to the second
    # must close it and take the slot, not wait for it until PoolTimeout.
    transport = LeanTransport(max_connections=1)
    async with (
        serving(answer_ok) as first,
        serving(answer_ok) as second,
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(2, pool=0.5)) as client,
    ):
        assert (await client.get(f"http://127.0.0.1:{first}/a")).status_code == 200
        assert free_slots(transport) == 0  # kept idle for the first origin
        assert (await client.get(f"http://127.0.0.1:{second}/b")).status_code == 200


async def test_a_connection_idle_too_long_is_closed_when_a_newer_one_is_reused() -> None:
    # Only the newest idle connection is taken; the oldest, past keep-alive, is closed
    # then rather than holding its slot (and its socket) until the transport closes.
    transport = LeanTransport(max_connections=4)
    async with serving(answer_ok) as port, httpx.AsyncClient(transport=transport) as client:
        url = f"http://127.0.0.1:{port}/"
        await asyncio.gather(client.get(url), client.get(url))  # two connections, both idle
        stack = transport._idle[(b"http", "127.0.0.1", port)]  # type: ignore[attr-defined]
        assert len(stack) == 2
        stack[0].idle_since -= 60  # the older one, idle a minute
        assert (await client.get(url)).status_code == 200
        assert len(stack) == 1
        assert free_slots(transport) == 3


def armed_timers() -> list[asyncio.TimerHandle]:
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return [t for t in scheduled if not t.cancelled() and "_expire" in repr(t)]


async def test_a_server_that_never_reads_is_a_write_timeout() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # never reads: the client's send buffer fills

    async with serving(deaf) as port, lean_client(timeout=0.3) as client:
        with pytest.raises(httpx.WriteTimeout):
            await client.post(f"http://127.0.0.1:{port}/a", content=b"x" * (16 << 20))
        assert not armed_timers()


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with serving(mute) as port, lean_client(timeout=0.3) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(f"https://127.0.0.1:{port}/a")
        assert not armed_timers()


async def test_no_timer_is_left_armed_after_answers_and_timeouts() -> None:
    async with serving(answer_ok) as port, lean_client(timeout=0.3) as client:
        for _ in range(3):
            await client.get(f"http://127.0.0.1:{port}/a")
        assert not armed_timers()


@pytest.mark.parametrize("name", ["https_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])
def test_any_proxy_variable_keeps_httpx_transport(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Upper or lower case, as httpx reads them (urllib's getproxies); NO_PROXY is then
    # httpx's to apply.
    for other in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, "http://127.0.0.1:3128")
    fal = FalClient(FalConfig())
    assert not isinstance(fal._http._transport, LeanTransport)  # type: ignore[attr-defined]


async def test_tls_by_default_trusts_ssl_cert_file_and_checks_the_host_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No context given (as FalClient builds it): the authorities of SSL_CERT_FILE, and a
    # certificate for another name is refused even from a trusted authority.
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    for name, works in (("127.0.0.1", True), ("example.test", False)):
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(server)
        async with serving(answer_ok, tls=server) as port, lean_client() as client:
            if works:
                assert (await client.get(f"https://127.0.0.1:{port}/a")).status_code == 200
            else:
                with pytest.raises(httpx.ConnectError, match=r"mismatch|not valid"):
                    await client.get(f"https://127.0.0.1:{port}/a")


@pytest.mark.parametrize("body", [b"abcdef", b"ab"])
async def test_a_streamed_body_that_is_not_its_declared_length_is_refused(body: bytes) -> None:
    # A file that grew or shrank while it was uploaded: its extra bytes would be read by
    # the server as a request of their own, or it would wait for bytes that never come.
    async def pieces() -> AsyncIterator[bytes]:
        yield body

    async with serving(answer_ok) as port, lean_client(timeout=2) as client:
        with pytest.raises(httpx.LocalProtocolError, match="Content-Length"):
            await client.post(
                f"http://127.0.0.1:{port}/a", content=pieces(), headers={"content-length": "3"}
            )
