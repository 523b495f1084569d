"""The storage flow: token, raw and multipart uploads, serving, lifetimes, input URLs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from emulator_helpers import (
    Clock,
    StartEmulator,
    hand_clock,
    submit,
    upload,
    wait_completed,
)

from runner.emulator.files import FileStore


def grant(client: httpx.Client, base: str) -> dict[str, str]:
    response = client.post(
        f"{base}/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
    )
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


def test_token_names_the_emulator_as_upload_base(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    body = grant(client, server.url)
    assert set(body) == {"token", "token_type", "base_url", "expires_at"}
    assert body["base_url"] == server.url
    assert "+00:00" in body["expires_at"]
    assert httpx.post(f"{server.url}/storage/auth/token", json={}).status_code == 401


def test_raw_upload_round_trip(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator()
    data = bytes(range(256)) * 4096
    url = upload(client, server.url, data, "application/octet-stream", "blob.bin")
    assert url.startswith(f"{server.url}/files/") and url.endswith("/blob.bin")
    served = client.get(url)
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-length"] == str(len(data))
    assert served.headers["content-type"] == "application/octet-stream"
    assert client.get(url + "x").status_code == 404


def test_upload_needs_the_storage_token(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    for authorization in ("Key test-id:test-secret", "Bearer 123.forged"):
        response = client.post(
            f"{server.url}/files/upload", content=b"x", headers={"Authorization": authorization}
        )
        assert response.status_code == 401


def test_multipart_upload(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator()
    token = grant(client, server.url)
    auth = {"Authorization": f"{token['token_type']} {token['token']}"}
    started = client.post(
        f"{token['base_url']}/files/upload/multipart",
        headers={**auth, "Content-Type": "video/mp4", "X-Fal-File-Name": "big.mp4"},
    )
    assert started.status_code == 200
    access_url, upload_id = started.json()["access_url"], started.json()["uploadId"]
    chunks = [b"a" * 70_000, b"b" * 70_000, b"c" * 10]
    parts = []
    for number, chunk in reversed(
        list(enumerate(chunks, start=1))
    ):  # any order, as fal's are concurrent
        put = client.put(
            f"{access_url}/multipart/{upload_id}/{number}", content=chunk, headers=auth
        )
        assert put.status_code == 200
        parts.append({"partNumber": number, "etag": put.headers["etag"]})
    wrong = client.post(
        f"{access_url}/multipart/{upload_id}/complete",
        headers=auth,
        json={"parts": [{"partNumber": 1, "etag": '"0"'}]},
    )
    assert wrong.status_code == 400
    assert client.get(access_url).status_code == 404  # not visible until complete
    done = client.post(
        f"{access_url}/multipart/{upload_id}/complete", headers=auth, json={"parts": parts}
    )
    assert done.status_code == 200
    assert done.json()["access_url"] == access_url
    served = client.get(access_url)
    assert served.content == b"".join(chunks)
    assert served.headers["content-type"] == "video/mp4"


def test_urls_expire_after_their_lifetime(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(file_ttl=60)
    clock = hand_clock(server)
    url = upload(client, server.url, b"short-lived", "text/plain", "a.txt")
    clock.advance(59)
    assert client.get(url).status_code == 200
    clock.advance(2)
    assert client.get(url).status_code == 404


def lifecycle_upload(client: httpx.Client, base: str, seconds: float) -> str:
    """An upload asking fal to delete it after ``seconds``; its URL."""
    token = grant(client, base)
    response = client.post(
        f"{base}/files/upload",
        content=b"x",
        headers={
            "Authorization": f"Bearer {token['token']}",
            "X-Fal-Object-Lifecycle-Preference": json.dumps(
                {"expiration_duration_seconds": seconds}
            ),
        },
    )
    return str(response.json()["access_url"])


def test_lifecycle_header_sets_an_upload_lifetime(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    clock = hand_clock(server)
    url = lifecycle_upload(client, server.url, 30)
    clock.advance(29)
    assert client.get(url).status_code == 200
    clock.advance(2)
    assert client.get(url).status_code == 404


def test_a_requested_lifetime_is_honoured_within_file_ttl(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    """file_ttl plays a CDN that drops files sooner than a client asked: the renewal path
    of a client is tested against it."""
    server = start_emulator(file_ttl=60)
    clock = hand_clock(server)
    url = lifecycle_upload(client, server.url, 3600)
    assert client.get(url).status_code == 200
    clock.advance(61)
    assert client.get(url).status_code == 404


def test_rendered_output_urls_expire_too(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(file_ttl=60)
    clock = hand_clock(server)
    handle = submit(
        client,
        server.url,
        "fal-ai/ltx-video-13b-distilled",
        {"prompt": "x", "num_frames": 9, "resolution": "480p"},
    )
    wait_completed(client, handle["status_url"])
    video_url = client.get(handle["response_url"]).json()["video"]["url"]
    clock.advance(59)
    assert client.get(video_url).status_code == 200
    clock.advance(2)
    assert client.get(video_url).status_code == 404


def test_a_files_lifetime_starts_when_it_is_published(tmp_path: Path) -> None:
    """Not when its record is made: a render (or a slow upload) that takes longer than the
    lifetime must not hand out a URL that is dead already."""
    clock = Clock()
    files = FileStore(tmp_path, default_ttl=10, clock=clock)
    stored = files.create("output.mp4", "video/mp4", None)
    clock.advance(30)  # the render
    target = files.output_path(stored)
    target.write_bytes(b"frames")
    published = files.publish(stored, target, 6)
    assert files.lookup(published.id, "output.mp4") is not None
    clock.advance(9)
    assert files.lookup(published.id, "output.mp4") is not None
    clock.advance(2)
    assert files.lookup(published.id, "output.mp4") is None


def test_unreachable_input_fails_the_job_like_fal(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(fetch_timeout=2)
    url = "http://127.0.0.1:9/keyframe.png"
    handle = submit(
        client,
        server.url,
        "fal-ai/ltx-video-13b-distilled/image-to-video",
        {"prompt": "x", "image_url": url, "num_frames": 9},
    )
    status = wait_completed(client, handle["status_url"])
    assert status["error_type"] == "file_download_error"
    result = client.get(handle["response_url"])
    assert result.status_code == 422
    (item,) = result.json()["detail"]
    assert (item["loc"], item["type"], item["input"]) == (
        ["body", "image_url"],
        "file_download_error",
        url,
    )


def test_expired_own_url_fails_as_a_download(
    start_emulator: StartEmulator, client: httpx.Client, assets: dict[str, Path]
) -> None:
    server = start_emulator(file_ttl=60)
    clock = hand_clock(server)
    url = upload(client, server.url, assets["reference"].read_bytes(), "video/mp4", "r.mp4")
    clock.advance(61)
    body = {"prompt": "x", "video": {"video_url": url}, "num_frames": 9}
    handle = submit(client, server.url, "fal-ai/ltx-video-13b-distilled/extend", body)
    assert wait_completed(client, handle["status_url"])["error_type"] == "file_download_error"
    assert client.get(handle["response_url"]).json()["detail"][0]["loc"] == [
        "body",
        "video",
        "video_url",
    ]


def test_an_image_that_is_not_an_image_is_a_load_error(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    url = upload(client, server.url, b"not a png", "image/png", "broken.png")
    handle = submit(
        client,
        server.url,
        "fal-ai/ltx-video-13b-distilled/image-to-video",
        {"prompt": "x", "image_url": url, "num_frames": 9},
    )
    assert wait_completed(client, handle["status_url"])["error_type"] == "image_load_error"
    assert client.get(handle["response_url"]).status_code == 422


def test_files_support_head_and_ranges(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator()
    url = upload(client, server.url, b"0123456789", "application/octet-stream", "digits.bin")
    head = client.head(url)
    assert (head.status_code, head.headers["content-length"]) == (200, "10")
    part = client.get(url, headers={"Range": "bytes=2-4"})
    assert (part.status_code, part.content) == (206, b"234")
