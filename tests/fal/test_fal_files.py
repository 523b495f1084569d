"""Uploads (token, single, multipart, data URIs) and downloads (streamed, checked, atomic)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fal_fakes import MARKER_KEY, QUEUE, REST, Recorder, json_response

from runner.fal import (
    FalClient,
    FalError,
    FalIntegrityError,
    FalProtocolError,
    FalResultExpired,
    FalUnavailable,
    data_uri,
)
from runner.fal import download as download_module

MakeClient = Callable[..., tuple[FalClient, Recorder]]
CDN = "https://v3.cdn.test"
CDN_TOKEN = "cdn-TOKEN-abcdef123"


class FakeCDN:
    """fal's storage flow: token, single upload, multipart create/part/complete."""

    def __init__(self, token_ttl: timedelta = timedelta(hours=1), overlap: int = 3) -> None:
        self.token_ttl = token_ttl
        # Each part waits until this many are in flight: the parts a client sends at once
        # then show as such, whatever the machine's speed (a test with fewer parts than
        # this would wait out the 10 s below: none has).
        self.overlap = overlap
        self.full = asyncio.Event()
        self.tokens = 0
        self.single: bytes | None = None
        self.parts: dict[int, bytes] = {}
        self.completed: list[dict[str, Any]] | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "rest.test" and path == "/storage/auth/token":
            assert request.url.params["storage_type"] == "fal-cdn-v3"
            assert json.loads(request.content) == {}
            self.tokens += 1
            expires = datetime.now(UTC) + self.token_ttl
            return json_response(
                200,
                {
                    "token": CDN_TOKEN,
                    "token_type": "Bearer",
                    "base_url": CDN,
                    "expires_at": expires.isoformat(),
                },
            )
        assert request.headers["authorization"] == f"Bearer {CDN_TOKEN}"
        if path == "/files/upload":
            self.single = await request.aread()
            return json_response(200, {"access_url": f"{CDN}/files/abc/clip.mp4"})
        if path == "/files/upload/multipart":
            return json_response(200, {"access_url": f"{CDN}/files/big/clip.mp4", "uploadId": "U1"})
        if path.startswith("/files/big/clip.mp4/multipart/U1/"):
            tail = path.rsplit("/", 1)[1]
            if tail == "complete":
                self.completed = json.loads(request.content)["parts"]
                return json_response(200, {"ok": True})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight >= self.overlap:
                self.full.set()
            # A client sending fewer at once than ``overlap`` is not kept waiting for ever.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), 10)
            self.parts[int(tail)] = await request.aread()
            self.in_flight -= 1
            return httpx.Response(200, headers={"ETag": f'"etag-{tail}"'})
        return json_response(404, {"detail": f"no route {path}"})


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(range(256)) * 1000)  # 256,000 bytes
    return path


# -- uploads -------------------------------------------------------------------------------


async def test_small_upload_streams_raw_bytes_with_the_cdn_token(
    make_client: MakeClient, clip: Path
) -> None:
    cdn = FakeCDN()
    client, rec = make_client(cdn, chunk_size=4096)
    uploaded = await client.upload(clip, "video/mp4")
    assert uploaded.url == f"{CDN}/files/abc/clip.mp4"
    assert (uploaded.size, uploaded.content_type, uploaded.file_name) == (
        256_000,
        "video/mp4",
        "clip.mp4",
    )
    assert uploaded.expires_at is None
    assert cdn.single == clip.read_bytes()
    token_req, upload_req = rec.seen
    assert token_req.headers["authorization"] == f"Key {MARKER_KEY}"
    assert upload_req.headers["content-type"] == "video/mp4"
    assert upload_req.headers["content-length"] == "256000"
    assert upload_req.headers["x-fal-file-name"] == "clip.mp4"
    assert "transfer-encoding" not in upload_req.headers


async def test_the_token_is_cached_until_it_nears_expiry(
    make_client: MakeClient, clip: Path
) -> None:
    cdn = FakeCDN()
    client, _ = make_client(cdn)
    await asyncio.gather(*(client.upload(clip) for _ in range(3)))
    await client.upload(clip)
    assert cdn.tokens == 1
    short = FakeCDN(token_ttl=timedelta(seconds=30))  # inside the renewal margin
    client, _ = make_client(short)
    await client.upload(clip)
    await client.upload(clip)
    assert short.tokens == 2


async def test_a_lifetime_is_asked_for_and_reported(make_client: MakeClient, clip: Path) -> None:
    client, rec = make_client(FakeCDN())
    before = datetime.now(UTC)
    uploaded = await client.upload(clip, lifetime=3600)
    header = json.loads(rec.seen[1].headers["x-fal-object-lifecycle-preference"])
    assert header == {"expiration_duration_seconds": 3600}
    assert uploaded.expires_at is not None
    assert before + timedelta(seconds=3599) <= uploaded.expires_at
    assert uploaded.expires_at <= datetime.now(UTC) + timedelta(seconds=3600)


async def test_large_files_go_multipart_in_bounded_parallel_parts(
    make_client: MakeClient, clip: Path
) -> None:
    cdn = FakeCDN()
    client, rec = make_client(
        cdn,
        multipart_threshold=100_000,
        multipart_part_size=10_000,
        multipart_concurrency=3,
        chunk_size=4096,
    )
    uploaded = await client.upload(clip)
    assert uploaded.url == f"{CDN}/files/big/clip.mp4"
    assert sorted(cdn.parts) == list(range(1, 27))  # 256,000 / 10,000 → 26 parts
    assert b"".join(cdn.parts[n] for n in sorted(cdn.parts)) == clip.read_bytes()
    assert cdn.completed == [{"partNumber": n, "etag": f'"etag-{n}"'} for n in range(1, 27)]
    assert cdn.max_in_flight == 3
    create = next(s for s in rec.seen if s.path.endswith("/multipart"))
    assert create.headers["x-fal-file-name"] == "clip.mp4"
    assert create.headers["content-type"] == "video/mp4"
    puts = [s for s in rec.seen if s.method == "PUT"]
    assert {s.headers["content-length"] for s in puts} == {"10000", "6000"}


async def test_a_part_without_an_etag_fails_the_upload(make_client: MakeClient, clip: Path) -> None:
    cdn = FakeCDN()

    async def no_etag(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(200)
        return await cdn(request)

    client, _ = make_client(no_etag, multipart_threshold=1000, multipart_part_size=100_000)
    with pytest.raises(FalProtocolError, match="ETag"):
        await client.upload(clip)


async def test_a_failed_part_is_retried_from_the_file(make_client: MakeClient, clip: Path) -> None:
    cdn = FakeCDN()
    failed: set[str] = set()

    async def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path not in failed:
            failed.add(request.url.path)
            return httpx.Response(503, text="<center>nginx</center>")
        return await cdn(request)

    client, _ = make_client(flaky, multipart_threshold=1000, multipart_part_size=64_000)
    await client.upload(clip)
    assert b"".join(cdn.parts[n] for n in sorted(cdn.parts)) == clip.read_bytes()


def test_data_uri_for_small_files(tmp_path: Path) -> None:
    png = tmp_path / "k.png"
    png.write_bytes(b"\x89PNG...")
    assert data_uri(png) == "data:image/png;base64," + base64.b64encode(b"\x89PNG...").decode()
    with pytest.raises(FalError, match="too large"):
        data_uri(png, limit=3)


# -- downloads -----------------------------------------------------------------------------

MEDIA = "https://v3.fal.media/files/out.mp4"
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


async def chunks(
    data: bytes, size: int = 65536, fail_at: int | None = None
) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if fail_at is not None and i >= fail_at:
            raise httpx.ReadError("connection reset by peer")
        yield data[i : i + size]


def media(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, headers={"content-length": str(len(PAYLOAD))}, content=chunks(PAYLOAD)
    )


async def test_download_hashes_and_places_the_file(make_client: MakeClient, tmp_path: Path) -> None:
    client, rec = make_client(media)
    dest = tmp_path / "renders" / "out.mp4"
    got = await client.download(MEDIA, dest, expected_size=len(PAYLOAD), expected_sha256=DIGEST)
    assert got == (DIGEST, len(PAYLOAD))
    assert (got.sha256, got.size) == (DIGEST, len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert list(dest.parent.iterdir()) == [dest]  # no temp file left
    assert "authorization" not in rec.seen[0].headers  # the key never goes to a media host


async def test_download_from_the_queue_origin_carries_the_key(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, rec = make_client(media)
    await client.download(f"{QUEUE}/files/out.mp4", tmp_path / "a.mp4")
    await client.download(f"{REST}/files/out.mp4", tmp_path / "b.mp4")
    assert [s.headers["authorization"] for s in rec.seen] == [f"Key {MARKER_KEY}"] * 2


@pytest.mark.parametrize(
    ("size", "digest"), [(len(PAYLOAD) + 1, None), (None, "0" * 64)], ids=["size", "sha256"]
)
async def test_a_mismatch_leaves_nothing_at_dest(
    make_client: MakeClient, tmp_path: Path, size: int | None, digest: str | None
) -> None:
    client, _ = make_client(media)
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous good file")
    with pytest.raises(FalIntegrityError):
        await client.download(MEDIA, dest, expected_size=size, expected_sha256=digest)
    assert dest.read_bytes() == b"previous good file"
    assert list(tmp_path.iterdir()) == [dest]


async def test_a_dropped_download_resumes_with_a_range(
    make_client: MakeClient, tmp_path: Path
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.headers.get("range", "bytes=0-")[6:].rstrip("-"))
        if start == 0:
            return httpx.Response(200, content=chunks(PAYLOAD, fail_at=300_000))
        headers = {"content-range": f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"}
        return httpx.Response(206, headers=headers, content=chunks(PAYLOAD[start:]))

    client, rec = make_client(handler, chunk_size=65536)
    got = await client.download(MEDIA, tmp_path / "out.mp4", expected_sha256=DIGEST)
    assert got.size == len(PAYLOAD)
    assert rec.seen[1].headers["range"] == "bytes=327680-"  # five whole 64 KiB chunks


async def test_a_server_ignoring_range_restarts_the_download(
    make_client: MakeClient, tmp_path: Path
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, content=chunks(PAYLOAD, fail_at=300_000 if calls == 1 else None))

    client, rec = make_client(handler, chunk_size=65536)
    got = await client.download(MEDIA, tmp_path / "out.mp4")
    assert got == (DIGEST, len(PAYLOAD))
    assert "range" in rec.seen[1].headers


async def test_a_download_that_keeps_dropping_gives_up_cleanly(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, rec = make_client(lambda r: httpx.Response(200, content=chunks(PAYLOAD, fail_at=0)))
    with pytest.raises(FalUnavailable, match="connection reset"):
        await client.download(MEDIA + "?token=presigned", tmp_path / "out.mp4")
    assert len(rec.seen) == 10
    assert list(tmp_path.iterdir()) == []


async def test_an_expired_output_file(make_client: MakeClient, tmp_path: Path) -> None:
    client, _ = make_client(lambda r: json_response(404, {"detail": "File not found"}))
    with pytest.raises(FalResultExpired, match="output file is gone") as info:
        await client.download(MEDIA + "?sig=SECRETSIG", tmp_path / "out.mp4")
    assert "SECRETSIG" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


async def test_download_reads_in_bounded_chunks(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory does not grow with the file: the body is never gathered whole."""
    sizes: list[int] = []

    async def one_piece(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            yield PAYLOAD  # the server sends it all at once…

        return httpx.Response(200, content=body())

    original = download_module._absorb

    def spy(digest: Any, out: Any, pieces: list[bytes], durable: bool) -> None:
        assert sum(len(piece) for piece in pieces) < 2 * 100_000  # held: under two chunks
        sizes.extend(len(piece) for piece in pieces)
        original(digest, out, pieces, durable)

    monkeypatch.setattr(download_module, "_absorb", spy)
    client, _ = make_client(one_piece, chunk_size=100_000)
    await client.download(MEDIA, tmp_path / "out.mp4")
    assert max(sizes) <= 100_000  # …and is written in chunk_size pieces
    assert sum(sizes) == len(PAYLOAD)
