"""Helpers for the emulator tests: assets, HTTP round trips, MP4 probes."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
from PIL import Image, ImageChops, ImageDraw

from runner.emulator import EmulatorServer, drawing
from runner.media.encode import VideoWriter

AUTH = {"Authorization": "Key test-id:test-secret"}


def name_difference(frame: Image.Image, node: str) -> float:
    """How far the place of ``node``'s name in an animatic's ``frame`` is from that name
    drawn as the band draws it: mean absolute difference, 0..255 (a few for the right name,
    after compression; tens for another)."""
    box = drawing.name_box(frame.size, node)
    expected = Image.new("RGB", frame.size)
    drawing.band_pages(frame.size, "", "", node)[0].apply(expected)
    seen, drawn = (image.crop(box).convert("L") for image in (frame, expected))
    histogram = ImageChops.difference(seen, drawn).histogram()
    return sum(i * n for i, n in enumerate(histogram)) / (seen.width * seen.height)


def make_keyframe(path: Path, size: tuple[int, int]) -> Path:
    image = Image.new("RGB", size, (40, 70, 110))
    draw = ImageDraw.Draw(image)
    for i in range(0, size[0], max(8, size[0] // 12)):
        draw.ellipse(
            (i, size[1] // 3, i + size[0] // 14, size[1] // 3 + size[0] // 14),
            fill=(220, i % 255, 60),
        )
    image.save(path)
    return path


def make_reference(
    path: Path, frames: int = 16, rate: int = 8, size: tuple[int, int] = (96, 54)
) -> Path:
    """A small clip of a square sliding right: something with motion to follow."""
    with VideoWriter(path, size[0], size[1], rate) as writer:
        for i in range(frames):
            image = Image.new("RGB", size, (10, 10, 10))
            x = i * (size[0] - 16) // max(1, frames - 1)
            ImageDraw.Draw(image).rectangle((x, 20, x + 16, 36), fill=(250, 250, 250))
            writer.write(image)
    return path


@dataclass(frozen=True)
class Probe:
    frames: int
    rate: Fraction
    width: int
    height: int


def probe_mp4(data: bytes) -> Probe:
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        return Probe(decoded, Fraction(stream.average_rate or 0), stream.width, stream.height)


def upload(client: httpx.Client, base: str, data: bytes, content_type: str, name: str) -> str:
    """The fal upload flow against the emulator: token, then raw upload; the access URL."""
    token = client.post(
        f"{base}/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
    )
    token.raise_for_status()
    grant = token.json()
    response = client.post(
        f"{grant['base_url']}/files/upload",
        content=data,
        headers={
            "Authorization": f"{grant['token_type']} {grant['token']}",
            "Content-Type": content_type,
            "X-Fal-File-Name": name,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_url"])


def follow(
    client: httpx.Client, status_url: str, timeout: float = 30, *, logs: bool = False
) -> list[dict[str, Any]]:
    """Every status event of the SSE stream until it closes (``logs``: asked with logs)."""
    events: list[dict[str, Any]] = []
    params = {"logs": "1"} if logs else None
    with client.stream("GET", f"{status_url}/stream", params=params, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def wait_completed(client: httpx.Client, status_url: str, timeout: float = 30) -> dict[str, Any]:
    """The final status (with logs) of a job, once its status stream says it completed."""
    events = follow(client, status_url, timeout)
    assert events and events[-1]["status"] == "COMPLETED", events
    response = client.get(status_url, params={"logs": "true"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def submit(client: httpx.Client, base: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{base}/{endpoint}", json=body)
    assert response.status_code == 200, response.text
    handle: dict[str, Any] = response.json()
    return handle


def render(
    client: httpx.Client, base: str, endpoint: str, body: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """Submit, follow the stream to completion, fetch the result and its video."""
    handle = submit(client, base, endpoint, body)
    events = follow(client, handle["status_url"])
    assert events[-1]["status"] == "COMPLETED", events
    assert "error" not in events[-1], events[-1]
    result = client.get(handle["response_url"])
    assert result.status_code == 200, result.text
    video = client.get(result.json()["video"]["url"])
    assert video.status_code == 200
    return result.json(), video.content


class Clock:
    """What an emulator counts lifetimes on, moved on by hand: a test of expiry need not
    wait for it (see :func:`hand_clock`)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def hand_clock(server: EmulatorServer) -> Clock:
    """Put ``server``'s file and result lifetimes on a clock the test moves."""
    clock = Clock()
    server.emulator.clock = clock
    return clock


# The type of the ``start_emulator`` fixture (tests/conftest.py).
StartEmulator = Callable[..., EmulatorServer]
