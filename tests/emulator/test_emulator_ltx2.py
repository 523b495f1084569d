"""LTX-2 over real HTTP: every endpoint renders the clip its request asks for (size, rate,
length) with a sound track of the same length, validates as fal would, answers with LTX-2's
VideoFile facts; a retake replaces exactly what its mode says. The emulator draws at a
quarter of the size (its test aid) and scales up: the files keep the requested size."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_helpers import AUTH, make_keyframe, make_reference, probe_mp4, render, upload

from runner.emulator import EmulatorConfig, EmulatorServer, video_io
from runner.ltx.registry import Endpoint, registry
from runner.ltx.schema import load_raw
from runner.media import probe, read_audio
from tests.run_helpers import DRAWN_SMALL

OPEN_WEIGHTS = [e for e in registry().endpoints() if e.family.startswith("ltx-2-19b")]
# LTX-2 Pro and Fast render 1080p at the least: two of their four endpoints (one of each
# family and kind) keep the suite quick, about 2 s each drawn small (DRAWN_SMALL).
HOSTED = [
    registry().endpoint("ltx-2-pro", "t2v"),
    registry().endpoint("ltx-2-fast", "i2v"),
]
SMALL = {"video_size": {"width": 320, "height": 180}, "num_frames": 9, "fps": 12}


@pytest.fixture(scope="module")
def shared(
    render_pool: ProcessPoolExecutor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[EmulatorServer, httpx.Client, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("ltx2-inputs")
    config = EmulatorConfig(latency=0, concurrency=4, render_scale=DRAWN_SMALL)
    server = EmulatorServer(config, executor=render_pool).start()
    http = httpx.Client(headers=AUTH, timeout=60)
    keyframe = make_keyframe(folder / "k.png", (640, 360)).read_bytes()
    reference = make_reference(folder / "r.mp4", frames=40, rate=10).read_bytes()
    urls = {
        "image": upload(http, server.url, keyframe, "image/png", "k.png"),
        "video": upload(http, server.url, reference, "video/mp4", "r.mp4"),
    }
    yield server, http, urls
    http.close()
    server.stop()


def facts(video: bytes, tmp_path: Path, name: str) -> Any:
    path = tmp_path / name
    path.write_bytes(video)
    return probe(path, count_frames=True)


def body_for(endpoint: Endpoint, urls: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": f"a shot for {endpoint.id}", "seed": 5, **SMALL}
    if endpoint.kind == "i2v":
        body["image_url"] = urls["image"]
    if endpoint.kind in ("extend", "v2v"):
        body |= {"video_url": urls["video"], "match_input_fps": False}
    if endpoint.kind == "v2v":
        body["match_video_length"] = False
    if endpoint.lora:
        body["loras"] = [{"path": "https://example.com/style.safetensors", "scale": 0.5}]
    return body


@pytest.mark.parametrize("endpoint", OPEN_WEIGHTS, ids=[e.id for e in OPEN_WEIGHTS])
def test_every_19b_endpoint_renders_its_clip_with_sound(
    endpoint: Endpoint, shared: Any, tmp_path: Path
) -> None:
    server, http, urls = shared
    result, video = render(http, server.url, endpoint.id, body_for(endpoint, urls))
    info = facts(video, tmp_path, "clip.mp4")
    assert (info.width, info.height, info.num_frames, info.frame_rate) == (320, 180, 9, 12)
    assert info.audio is not None and info.audio.codec == "flac"
    assert (info.audio.sample_rate, info.audio.channels) == (24000, 2)
    assert info.audio.duration_seconds == pytest.approx(9 / 12, abs=1 / 12)
    assert list(result) == load_raw(endpoint.id, "output")["x-fal-order-properties"]
    assert result["seed"] == 5
    described = {k: result["video"][k] for k in ("width", "height", "fps", "num_frames")}
    assert described == {"width": 320, "height": 180, "fps": 12, "num_frames": 9}


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", HOSTED, ids=[e.id for e in HOSTED])
def test_pro_and_fast_render_1080p_at_their_duration(
    endpoint: Endpoint, shared: Any, tmp_path: Path
) -> None:
    server, http, urls = shared
    body: dict[str, Any] = {"prompt": "a wide street at night"}
    if endpoint.kind == "i2v":
        body["image_url"] = urls["image"]
    result, video = render(http, server.url, endpoint.id, body)
    info = facts(video, tmp_path, "clip.mp4")
    # fal's defaults: 6 s at 25 fps, 1080p; drawn at 480x270, the file is 1920x1080.
    assert (info.width, info.height, info.num_frames, info.frame_rate) == (1920, 1080, 150, 25)
    assert info.audio is not None and info.audio.duration_seconds == pytest.approx(6.0)
    assert "seed" not in result  # Pro and Fast take no seed and answer none
    assert result["video"]["duration"] == 6.0


def test_generate_audio_false_renders_a_silent_clip(shared: Any, tmp_path: Path) -> None:
    server, http, _ = shared
    body = {"prompt": "quiet", **SMALL, "generate_audio": False}
    _, video = render(http, server.url, "fal-ai/ltx-2-19b/distilled/text-to-video", body)
    assert facts(video, tmp_path, "quiet.mp4").audio is None


def test_extend_follows_its_inputs_rate_and_size(shared: Any, tmp_path: Path) -> None:
    server, http, urls = shared
    body = {"prompt": "more", "video_url": urls["video"], "num_frames": 9}
    _, video = render(http, server.url, "fal-ai/ltx-2-19b/extend-video", body)
    info = facts(video, tmp_path, "more.mp4")
    # video_size auto and match_input_fps: the reference's 96x54 at 10 fps.
    assert (info.width, info.height, info.frame_rate, info.num_frames) == (96, 54, 10, 9)


def test_the_same_request_gives_the_same_bytes_sound_included(shared: Any) -> None:
    server, http, _ = shared
    body = {"prompt": "twice", **SMALL}  # no seed: one derived from the request
    first, a = render(http, server.url, "fal-ai/ltx-2-19b/text-to-video", body)
    second, b = render(http, server.url, "fal-ai/ltx-2-19b/text-to-video", body)
    assert a == b and first["seed"] == second["seed"]
    _, c = render(http, server.url, "fal-ai/ltx-2-19b/text-to-video", body | {"seed": 9})
    assert c != a


def test_bodies_are_validated_as_fal_would(shared: Any, render_pool: ProcessPoolExecutor) -> None:
    _, http, _ = shared
    checked = EmulatorConfig(validate_on_submit=True, latency=0)
    with EmulatorServer(checked, executor=render_pool) as strict:
        refused = http.post(
            f"{strict.url}/fal-ai/ltx-2-19b/text-to-video",
            json={"prompt": "x", "video_size": "huge", "duration": 6},
        )
        assert refused.status_code == 422
        [model, literal] = refused.json()["detail"]
        assert model["loc"] == ["body", "video_size", "ImageSize"]
        assert literal["loc"][:2] == ["body", "video_size"]
        refused = http.post(
            f"{strict.url}/fal-ai/ltx-2/text-to-video", json={"prompt": "x", "duration": 7}
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "duration"]


@pytest.fixture(scope="module")
def full_size(render_pool: ProcessPoolExecutor) -> Iterator[tuple[EmulatorServer, httpx.Client]]:
    """An emulator that draws at full size (small clips), so a retake's untouched frames are
    the input's own."""
    server = EmulatorServer(EmulatorConfig(latency=0), executor=render_pool).start()
    http = httpx.Client(headers=AUTH, timeout=60)
    yield server, http
    http.close()
    server.stop()


@pytest.fixture(scope="module")
def retake_input(full_size: Any) -> tuple[str, bytes]:
    """A 19B clip with sound: 36 frames at 12 fps (3 s), 320x180."""
    server, http = full_size
    body = {"prompt": "the take", "seed": 2, **SMALL, "num_frames": 36}
    result, video = render(http, server.url, "fal-ai/ltx-2-19b/text-to-video", body)
    return result["video"]["url"], video


@pytest.mark.parametrize("mode", ["replace_video", "replace_audio", "replace_audio_and_video"])
def test_retake_makes_again_what_its_mode_says(
    mode: str, full_size: Any, retake_input: tuple[str, bytes], tmp_path: Path
) -> None:
    server, http = full_size
    url, original = retake_input
    body = {
        "prompt": "she smiles",
        "video_url": url,
        "start_time": 1,
        "duration": 2,
        "retake_mode": mode,
    }
    _, video = render(http, server.url, "fal-ai/ltx-2/retake-video", body)
    before, after = facts(original, tmp_path, "in.mp4"), facts(video, tmp_path, "out.mp4")
    assert (after.width, after.height, after.num_frames, after.frame_rate) == (
        before.width,
        before.height,
        before.num_frames,
        before.frame_rate,
    )
    old_sound, new_sound = read_audio(tmp_path / "in.mp4"), read_audio(tmp_path / "out.mp4")
    assert old_sound is not None and new_sound is not None
    assert old_sound.samples == new_sound.samples == 3 * 24000
    inside = slice(1 * 24000 * 4 + 400, 3 * 24000 * 4 - 400)
    outside = slice(0, 24000 * 4 - 400)
    assert new_sound.data[outside] == old_sound.data[outside]
    assert (new_sound.data[inside] != old_sound.data[inside]) == (mode != "replace_video")
    old_frames = list(video_io.frames(tmp_path / "in.mp4"))
    new_frames = list(video_io.frames(tmp_path / "out.mp4"))
    changed = [
        i
        for i, (a, b) in enumerate(zip(old_frames, new_frames, strict=True))
        if _mean_difference(a, b) > 4
    ]
    # The frames of seconds 1 to 3 at 12 fps, and no other (the rest are the input's own).
    assert changed == ([] if mode == "replace_audio" else list(range(12, 36)))


def _mean_difference(one: Any, other: Any) -> float:
    from PIL import ImageChops

    histogram = ImageChops.difference(one.convert("L"), other.convert("L")).histogram()
    return sum(i * n for i, n in enumerate(histogram)) / (one.width * one.height)


def test_image_to_video_at_auto_takes_the_images_size(shared: Any) -> None:
    server, http, urls = shared
    body = {"prompt": "auto", "image_url": urls["image"], "num_frames": 9, "fps": 12}
    _, video = render(http, server.url, "fal-ai/ltx-2-19b/image-to-video", body)
    clip = probe_mp4(video)
    assert (clip.width, clip.height, clip.rate, clip.frames) == (640, 360, Fraction(12), 9)
