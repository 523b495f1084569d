"""Real MP4 animatics, over real HTTP, for every endpoint of the LTX-Video 0.9.x families
(LTX-2's, with their sound: test_emulator_ltx2.py)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import AUTH, StartEmulator, probe_mp4, render, upload
from PIL import Image, ImageChops

from runner.emulator import EmulatorConfig, EmulatorServer, drawing, video_io
from runner.emulator.animatic import RenderSpec
from runner.emulator.animatic import render as render_direct
from runner.emulator.geometry import frame_size, nearest_aspect
from runner.ltx.registry import Endpoint, registry
from runner.ltx.schema import load_raw

ENDPOINTS = [endpoint for endpoint in registry().endpoints() if not endpoint.sound]


@pytest.fixture(scope="module")
def shared(
    render_pool: ProcessPoolExecutor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EmulatorServer, httpx.Client, dict[str, str]]]:
    """One emulator for the whole render matrix, with its inputs already uploaded."""
    from emulator_helpers import make_keyframe, make_reference

    folder = tmp_path_factory.mktemp("render-inputs")
    server = EmulatorServer(EmulatorConfig(latency=0, concurrency=4), executor=render_pool).start()
    http = httpx.Client(headers=AUTH, timeout=30)
    urls = {
        "image": upload(
            http,
            server.url,
            make_keyframe(folder / "k.png", (640, 360)).read_bytes(),
            "image/png",
            "k.png",
        ),
        "portrait": upload(
            http,
            server.url,
            make_keyframe(folder / "p.png", (360, 640)).read_bytes(),
            "image/png",
            "p.png",
        ),
        "video": upload(
            http, server.url, make_reference(folder / "r.mp4").read_bytes(), "video/mp4", "r.mp4"
        ),
    }
    yield server, http, urls
    http.close()
    server.stop()


def small_body(endpoint: Endpoint, urls: dict[str, str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": f"a test shot for {endpoint.id}", "seed": 11}
    if endpoint.assumed_output is None:
        body |= {"num_frames": 9, "frame_rate": 12, "resolution": "480p", "aspect_ratio": "16:9"}
    if endpoint.kind == "i2v":
        body["image_url"] = urls["image"]
    if endpoint.kind == "extend":
        body["video"] = {"video_url": urls["video"]}
    if endpoint.kind == "multicondition":
        body["images"] = [{"image_url": urls["image"], "start_frame_num": 0}]
        body["videos"] = [{"video_url": urls["video"]}]
    return body | extra


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
def test_every_endpoint_renders_the_requested_clip(endpoint: Endpoint, shared: Any) -> None:
    server, http, urls = shared
    body = small_body(endpoint, urls)
    result, video = render(http, server.url, endpoint.id, body)

    probe = probe_mp4(video)
    if endpoint.assumed_output is None:
        assert (probe.frames, probe.rate) == (9, Fraction(12))
        assert (probe.width, probe.height) == (848, 480)
    else:
        # fal-ai/ltx-video takes no length: the family's assumed clip, at 848x480.
        assert probe.frames == endpoint.assumed_output["num_frames"]
        assert probe.rate == Fraction(endpoint.assumed_output["frame_rate"])
        assert (probe.width, probe.height) == (848, 480)

    order = load_raw(endpoint.id, "output")["x-fal-order-properties"]
    assert list(result) == order
    assert result["seed"] == 11
    assert result["video"]["content_type"] == "video/mp4"
    assert result["video"]["file_size"] == len(video)
    assert result["video"]["url"].startswith(server.url + "/files/")
    if "prompt" in order:
        assert result["prompt"] == body["prompt"]


@pytest.mark.parametrize(
    ("resolution", "aspect", "size"),
    [("720p", "9:16", (720, 1280)), ("720p", "1:1", (720, 720)), ("480p", "9:16", (480, 848))],
)
def test_resolution_and_aspect_ratio(
    shared: Any, resolution: str, aspect: str, size: tuple[int, int]
) -> None:
    server, http, _ = shared
    body = {
        "prompt": "sizes",
        "num_frames": 9,
        "frame_rate": 24,
        "resolution": resolution,
        "aspect_ratio": aspect,
    }
    _, video = render(http, server.url, "fal-ai/ltx-video-13b-distilled", body)
    probe = probe_mp4(video)
    assert (probe.width, probe.height) == size


def test_auto_aspect_follows_the_input_image(shared: Any) -> None:
    server, http, urls = shared
    body = {
        "prompt": "portrait",
        "image_url": urls["portrait"],
        "num_frames": 9,
        "resolution": "480p",
    }
    _, video = render(http, server.url, "fal-ai/ltx-video-13b-distilled/image-to-video", body)
    probe = probe_mp4(video)
    # aspect_ratio defaults to auto on image-to-video; frame_rate to fal's 30.
    assert (probe.width, probe.height, probe.rate) == (480, 848, Fraction(30))


def test_fal_defaults_fill_what_the_request_leaves_out(shared: Any) -> None:
    server, http, _ = shared
    # 0.9.8 defaults to 24 fps; the length is given so the clip stays small.
    _, video = render(
        http,
        server.url,
        "fal-ai/ltxv-13b-098-distilled",
        {"prompt": "d", "num_frames": 9, "resolution": "480p"},
    )
    probe = probe_mp4(video)
    assert (probe.rate, probe.width, probe.height) == (Fraction(24), 848, 480)


def test_same_request_gives_byte_identical_video(shared: Any) -> None:
    server, http, urls = shared
    endpoint = registry().endpoint_by_id("fal-ai/ltx-video-13b-distilled/multiconditioning")
    assert endpoint is not None
    body = small_body(endpoint, urls)
    del body["seed"]
    first, video_a = render(http, server.url, endpoint.id, body)
    second, video_b = render(http, server.url, endpoint.id, body)
    assert first["video"]["url"] != second["video"]["url"]
    assert hashlib.sha256(video_a).digest() == hashlib.sha256(video_b).digest()
    # Without a seed the emulator picks one from the request, the same each time.
    assert first["seed"] == second["seed"]


def test_data_uri_inputs_are_decoded(shared: Any, assets: dict[str, Path]) -> None:
    server, http, _ = shared
    data = base64.b64encode(assets["landscape"].read_bytes()).decode()
    body = {
        "prompt": "inline",
        "image_url": f"data:image/png;base64,{data}",
        "num_frames": 9,
        "resolution": "480p",
    }
    _, video = render(http, server.url, "fal-ai/ltx-video-13b-dev/image-to-video", body)
    assert probe_mp4(video).frames == 9


def test_inputs_from_another_server_are_downloaded(
    shared: Any, start_emulator: StartEmulator, client: httpx.Client, assets: dict[str, Path]
) -> None:
    server, http, _ = shared
    other = start_emulator()
    url = upload(client, other.url, assets["landscape"].read_bytes(), "image/png", "elsewhere.png")
    body = {"prompt": "fetched", "image_url": url, "num_frames": 9, "resolution": "480p"}
    _, video = render(http, server.url, "fal-ai/ltx-video-13b-distilled/image-to-video", body)
    assert probe_mp4(video).frames == 9
    assert other.stats()["requests"]["files"] == 1


def test_reverse_video_plays_the_clip_backwards(shared: Any, tmp_path: Path) -> None:
    server, http, _ = shared
    body = {"prompt": "r", "num_frames": 9, "frame_rate": 12, "resolution": "480p", "seed": 3}
    _, forward = render(http, server.url, "fal-ai/ltx-video-13b-distilled", body)
    _, backward = render(
        http, server.url, "fal-ai/ltx-video-13b-distilled", body | {"reverse_video": True}
    )
    assert probe_mp4(backward).frames == 9
    ahead, behind = (
        pictures(tmp_path / name, clip) for name, clip in [("f", forward), ("b", backward)]
    )
    # the picture above the caption band: the reversed clip's frames are the forward clip's,
    # last first (within what encoding two clips moves)
    assert max(difference(b, a) for a, b in zip(reversed(ahead), behind, strict=True)) < 3
    assert difference(behind[0], ahead[0]) > 3 * difference(behind[0], ahead[-1])


def pictures(path: Path, clip: bytes) -> list[Image.Image]:
    path.write_bytes(clip)
    frames = list(video_io.frames(path))
    top = frames[0].height - drawing.band_height(frames[0].size)
    return [frame.crop((0, 0, frame.width, top)).convert("L") for frame in frames]


def difference(one: Image.Image, other: Image.Image) -> float:
    """Mean absolute difference of two grey pictures, 0 to 255."""
    histogram = ImageChops.difference(one, other).histogram()
    return sum(i * n for i, n in enumerate(histogram)) / (one.width * one.height)


def test_geometry() -> None:
    assert frame_size("720p", "16:9") == (1280, 720)
    assert frame_size("480p", "auto", (1080, 1920)) == (480, 848)
    assert frame_size("720p", "auto", (500, 480)) == (720, 720)
    assert frame_size(None, None) == (848, 480)
    assert nearest_aspect(1920, 1080) == "16:9"


def test_a_121_frame_720p_clip_renders_whole(tmp_path: Path) -> None:
    """The longest clip LTX makes, every frame at full size (its speed: benchmarks/unit_speeds)."""
    spec = RenderSpec("t2v", "720p", "16:9", 121, 30, "a long prompt " * 8, 1, "animatic · t2v")
    outcome = render_direct(spec, tmp_path / "clip.mp4")
    assert outcome.error is None
    probe = probe_mp4((tmp_path / "clip.mp4").read_bytes())
    assert (probe.frames, probe.width, probe.height) == (121, 1280, 720)


def test_no_render_answers_every_job_with_one_tiny_clip(start_emulator: StartEmulator) -> None:
    """The benchmarking aid: no inputs fetched (this URL leads nowhere), nothing rendered
    per job, and still a real MP4 in the endpoint's output shape."""
    server = start_emulator(no_render=True)
    endpoint = "fal-ai/ltx-video-13b-distilled/image-to-video"
    with httpx.Client(headers=AUTH, timeout=30) as http:
        outputs = []
        for prompt in ("one", "two"):
            body = {"prompt": prompt, "image_url": "http://127.0.0.1:9/nowhere.png"}
            result, video = render(http, server.url, endpoint, body)
            assert result["video"]["content_type"] == "video/mp4"
            outputs.append(video)
    assert outputs[0] == outputs[1]
    assert probe_mp4(outputs[0]).frames == 1


def test_the_render_scale_aid_draws_small_and_keeps_the_requested_size(
    shared: Any, start_emulator: StartEmulator
) -> None:
    """``render_scale`` (a test aid) reaches the 0.9.x endpoints too: the clip is drawn at a
    quarter of its size (so it is another file) and still has the requested shape."""
    server, http, _ = shared
    small = start_emulator(render_scale=0.25)
    body = {"prompt": "scaled", "num_frames": 9, "frame_rate": 24, "resolution": "720p"}
    _, full = render(http, server.url, "fal-ai/ltx-video-13b-distilled", body)
    _, drawn_small = render(http, small.url, "fal-ai/ltx-video-13b-distilled", body)
    assert drawn_small != full
    probe = probe_mp4(drawn_small)
    assert (probe.frames, probe.width, probe.height) == (9, 1280, 720)
