"""runner.media on real files: clips are encoded here with PyAV, one solid colour per frame,
so a test can tell from a decoded frame *which* source frame it is."""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import pytest
from PIL import Image

from runner.errors import ShotgraphError
from runner.media import (
    CONFORM_RULE,
    FIRST,
    LAST,
    FrameAt,
    MediaError,
    StitchReport,
    extract_frame,
    fit_inside,
    parse_frame_at,
    probe,
    stitch,
)

RGB = tuple[int, int, int]
_LEVELS = (32, 96, 160, 224)


def colour(index: int) -> RGB:
    """Frame ``index``'s colour: 64 colours 64 levels apart, far more than codec error."""
    return (_LEVELS[index // 16 % 4], _LEVELS[index // 4 % 4], _LEVELS[index % 4])


def nearest_index(rgb: RGB) -> int:
    return min(
        range(64), key=lambda i: sum((a - b) ** 2 for a, b in zip(colour(i), rgb, strict=True))
    )


def make_clip(
    path: Path,
    indices: Sequence[int],
    size: tuple[int, int] = (64, 36),
    rate: int = 24,
    *,
    audio: bool = False,
) -> Path:
    """Encode one solid-colour frame per index (H.264, yuv420p, near-lossless), and with
    ``audio`` a silent AAC track beside it."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.options = {"crf": "4", "preset": "ultrafast"}
        if audio:
            sound = container.add_stream("aac", rate=48000)
            for k in range(10):
                silence = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
                for plane in silence.planes:
                    plane.update(bytes(plane.buffer_size))
                silence.sample_rate, silence.pts = 48000, k * 1024
                container.mux(sound.encode(silence))
            container.mux(sound.encode(None))
        for pts, index in enumerate(indices):
            image = Image.new("RGB", size, colour(index))
            frame = av.VideoFrame.from_bytes(
                image.convert("RGBA").tobytes(), size[0], size[1], format="rgba"
            )
            frame = frame.reformat(format="yuv420p")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def pixel(frame: av.VideoFrame, x: int, y: int) -> RGB:
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    data = bytes(plane)
    offset = y * plane.line_size + 3 * x
    return (data[offset], data[offset + 1], data[offset + 2])


def decoded_indices(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [
            nearest_index(pixel(f, f.width // 2, f.height // 2)) for f in container.decode(video=0)
        ]


def png_index(path: Path) -> int:
    with Image.open(path) as image:
        rgb = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    assert isinstance(rgb, tuple)
    return nearest_index((int(rgb[0]), int(rgb[1]), int(rgb[2])))


@pytest.fixture
def twelve(tmp_path: Path) -> Path:
    """12 frames at 24 fps (0.5 s); frame i has colour(i)."""
    return make_clip(tmp_path / "twelve.mp4", range(12))


# -- probe ---------------------------------------------------------------------------------


def test_probe_video(twelve: Path) -> None:
    info = probe(twelve)
    assert (info.kind, info.width, info.height) == ("video", 64, 36)
    assert info.num_frames == 12
    assert info.frame_rate == Fraction(24) and info.fps == 24.0
    assert info.duration_seconds == pytest.approx(0.5)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")
    assert probe(twelve, count_frames=True) == info


def test_probe_image(tmp_path: Path) -> None:
    path = tmp_path / "key.png"
    Image.new("RGB", (768, 432), (10, 20, 30)).save(path)
    info = probe(path)
    assert (info.kind, info.width, info.height, info.codec) == ("image", 768, 432, "png")
    assert info.pixel_format == "rgb24"
    assert info.num_frames is None and info.frame_rate is None and info.fps is None


@pytest.mark.parametrize("damage", ["garbage", "truncated_video", "truncated_png", "empty"])
def test_probe_corrupt_files_raise_media_error(tmp_path: Path, twelve: Path, damage: str) -> None:
    if damage == "garbage":
        path = tmp_path / "bad.mp4"
        path.write_bytes(b"not a video at all " * 100)
    elif damage == "truncated_video":
        path = tmp_path / "cut.mp4"
        path.write_bytes(twelve.read_bytes()[:600])
    elif damage == "truncated_png":
        good = tmp_path / "good.png"
        Image.effect_noise((200, 200), 50).save(good)
        path = tmp_path / "cut.png"
        path.write_bytes(good.read_bytes()[:2000])
    else:
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    with pytest.raises(MediaError) as caught:
        probe(path)
    assert isinstance(caught.value, ShotgraphError)
    assert str(path) in caught.value.message
    assert caught.value.hint


def test_truncated_video_with_its_index_up_front_is_caught(tmp_path: Path, twelve: Path) -> None:
    """FFmpeg decodes such a file quietly up to the cut; the index gives the truncation away."""
    whole = tmp_path / "whole.mp4"
    stitch([twelve, twelve, twelve], whole)  # stitch writes the index first (faststart)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    for read in (
        lambda: probe(cut),
        lambda: probe(cut, count_frames=True),
        lambda: extract_frame(cut, tmp_path / "last.png", "last"),
        lambda: stitch([twelve, cut], tmp_path / "again.mp4"),
    ):
        with pytest.raises(MediaError, match="truncated"):
            read()
    assert not (tmp_path / "last.png").exists() and not (tmp_path / "again.mp4").exists()


def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        probe(tmp_path / "nope.mp4")


# -- frame positions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("first", FIRST),
        ("last", LAST),
        (" Last ", LAST),
        (7, FrameAt(index=7)),
        ("-3", FrameAt(index=-3)),
        (2.5, FrameAt(seconds=2.5)),
        ("2.5s", FrameAt(seconds=2.5)),
        ("0.75 s", FrameAt(seconds=0.75)),
        ("3s", FrameAt(seconds=3.0)),
    ],
)
def test_parse_frame_at(value: object, expected: FrameAt) -> None:
    assert parse_frame_at(value) == expected
    assert parse_frame_at(str(expected)) == expected


@pytest.mark.parametrize("value", ["2.5", "middle", "", True, None, [1], "-1s", -0.5, math.nan])
def test_parse_frame_at_rejects(value: object) -> None:
    with pytest.raises(MediaError) as caught:
        parse_frame_at(value)
    assert caught.value.hint


# -- extract_frame -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("first", 0),
        ("last", 11),
        (5, 5),
        (-1, 11),
        (-3, 9),
        (0.0, 0),
        (0.25, 6),  # exactly on frame 6's timestamp
        ("0.2s", 4),  # frame 4 is on screen from 0.1667 s to 0.2083 s
        (0.49, 11),  # inside the last frame
    ],
)
def test_extract_frame_picks_the_right_frame(
    tmp_path: Path, twelve: Path, at: int | float | str, expected: int
) -> None:
    out = tmp_path / "out" / "frame.png"
    info = extract_frame(twelve, out, at)
    assert (info.kind, info.width, info.height, info.codec) == ("image", 64, 36, "png")
    assert png_index(out) == expected
    assert probe(out).width == 64


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (12, "12 frames"),
        (-13, "12 frames"),
        (0.5, "0.500 s"),
        ("10s", "12 frames at 24 fps"),
    ],
)
def test_extract_frame_out_of_range(tmp_path: Path, twelve: Path, at: object, message: str) -> None:
    out = tmp_path / "frame.png"
    with pytest.raises(MediaError, match=message):
        extract_frame(twelve, out, at)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [twelve]


def test_extract_frame_is_deterministic(tmp_path: Path, twelve: Path) -> None:
    extract_frame(twelve, tmp_path / "a.png", "last")
    extract_frame(twelve, tmp_path / "b.png", -1)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_extract_frame_refuses_an_image(tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    Image.new("RGB", (32, 32)).save(path)
    with pytest.raises(MediaError, match="is an image"):
        extract_frame(path, tmp_path / "out.png", "first")


# -- stitch --------------------------------------------------------------------------------


def test_stitch_same_size_keeps_every_frame_in_order(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", [0, 1, 2, 3, 4])
    b = make_clip(tmp_path / "b.mp4", [20, 21, 22, 23], audio=True)  # its sound is carried
    c = make_clip(tmp_path / "c.mp4", [40, 41, 42])
    out = tmp_path / "cut.mp4"
    report = stitch([a, b, c], out)
    assert decoded_indices(out) == [0, 1, 2, 3, 4, 20, 21, 22, 23, 40, 41, 42]
    info = probe(out, count_frames=True)
    assert (info.width, info.height, info.frame_rate, info.num_frames) == (64, 36, Fraction(24), 12)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")
    assert report.num_frames == 12
    assert [(c.frames_in, c.frames_out, c.conformed) for c in report.clips] == [
        (5, 5, False),
        (4, 4, False),
        (3, 3, False),
    ]


def _expected_retime(n_in: int, src_rate: int, out_rate: int) -> list[int]:
    """The documented rule for a constant-rate clip: ceil(duration * out_rate) ticks, each
    showing the nearest source frame, ties to the earlier one."""
    n_out = math.ceil(Fraction(n_in, src_rate) * out_rate)
    return [
        min(n_in - 1, math.ceil(Fraction(k * src_rate, out_rate) - Fraction(1, 2)))
        for k in range(n_out)
    ]


def _stitch_mixed(tmp_path: Path, out: Path) -> tuple[list[Path], StitchReport]:
    clips = [
        make_clip(tmp_path / "first.mp4", range(12), (96, 54), 24),  # sets 96x54 @ 24
        make_clip(tmp_path / "square12.mp4", range(20, 26), (48, 48), 12),  # pillarbox, x2
        make_clip(tmp_path / "wide48.mp4", [32 + i % 8 for i in range(24)], (128, 36), 48),
        make_clip(tmp_path / "thirty.mp4", range(40, 55), (96, 54), 30),  # 15 -> 12 frames
    ]
    return clips, stitch(clips, out)


def test_stitch_conforms_size_and_rate_to_the_first_clip(tmp_path: Path) -> None:
    out = tmp_path / "cut.mp4"
    _, report = _stitch_mixed(tmp_path, out)
    info = probe(out, count_frames=True)
    assert (info.width, info.height, info.frame_rate) == (96, 54, Fraction(24))

    expected = list(range(12))
    expected += [20 + j for j in _expected_retime(6, 12, 24)]
    expected += [32 + j % 8 for j in _expected_retime(24, 48, 24)]
    expected += [40 + j for j in _expected_retime(15, 30, 24)]
    assert decoded_indices(out) == expected
    assert info.num_frames == len(expected) == 48
    # 12 fps shows every frame twice; 30 fps drops 3 of 15 (1.25 source frames per tick).
    assert _expected_retime(6, 12, 24) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert _expected_retime(15, 30, 24) == [0, 1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14]

    assert report.rule == CONFORM_RULE
    assert [(c.frames_in, c.frames_out) for c in report.clips] == [
        (12, 12),
        (6, 12),
        (24, 12),
        (15, 12),
    ]
    assert [c.conformed for c in report.clips] == [False, True, True, True]
    assert report.clips[1].placement == fit_inside(48, 48, 96, 54)
    assert report.as_json()["num_frames"] == 48

    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    square, wide = frames[12], frames[24]
    # Pillarbox: 48x48 scaled to 54x54 and centred, black left and right.
    assert max(pixel(square, 2, 27)) < 24 and max(pixel(square, 93, 27)) < 24
    assert nearest_index(pixel(square, 48, 27)) == 20
    # Letterbox: 128x36 scaled to 96x28 (even), black above and below.
    assert max(pixel(wide, 48, 2)) < 24 and max(pixel(wide, 48, 51)) < 24
    assert nearest_index(pixel(wide, 48, 27)) == 32


def test_stitch_is_deterministic(tmp_path: Path) -> None:
    clips, _ = _stitch_mixed(tmp_path, tmp_path / "one.mp4")
    stitch(clips, tmp_path / "two.mp4")
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "two.mp4").read_bytes()


def test_stitch_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    good = make_clip(tmp_path / "good.mp4", range(6))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(good.read_bytes()[:700])
    out = tmp_path / "renders" / "cut.mp4"
    out.parent.mkdir()
    out.write_bytes(b"previous render")
    with pytest.raises(MediaError, match=r"bad\.mp4"):
        stitch([good, good, bad], out)
    assert out.read_bytes() == b"previous render"
    assert [p.name for p in out.parent.iterdir()] == ["cut.mp4"]


def test_stitch_rejects_empty_and_non_video(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="at least one clip"):
        stitch([], tmp_path / "cut.mp4")
    still = tmp_path / "still.png"
    Image.new("RGB", (32, 32)).save(still)
    with pytest.raises(MediaError, match="is an image"):
        stitch([still], tmp_path / "cut.mp4")
    assert not (tmp_path / "cut.mp4").exists()


def test_fit_inside() -> None:
    assert fit_inside(1280, 720, 1280, 720).letterboxed is False
    box = fit_inside(1920, 800, 1280, 720)  # 2.4:1 into 16:9: bars above and below
    assert (box.width, box.x) == (1280, 0) and box.y > 0 and box.height % 2 == 0
    box = fit_inside(720, 1280, 1280, 720)  # portrait: bars left and right
    assert (box.height, box.y) == (720, 0) and box.x > 0 and box.width % 2 == 0


# -- the example asset script ---------------------------------------------------------------


@pytest.fixture(scope="module")
def assets_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "make_example_assets.py"
    spec = importlib.util.spec_from_file_location("make_example_assets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_asset_keyframe_is_a_small_deterministic_png(assets_script: ModuleType) -> None:
    shot = assets_script.KEYFRAMES["characters/jun/three_quarter.png"]
    image = shot.render()
    assert image.size == (768, 432)
    data = assets_script.png_bytes(image)
    assert data == assets_script.png_bytes(shot.render())
    assert len(data) < 60_000


def test_asset_motion_clip_encodes_at_24_fps(assets_script: ModuleType, tmp_path: Path) -> None:
    assert 2 <= assets_script.CLIP_FRAMES / assets_script.CLIP_FPS <= 3
    for name, frames in assets_script.MOTIONS.items():
        first = next(frames())
        assert first.size == assets_script.CLIP_SIZE and first.mode == "RGB", name
    out = tmp_path / "turn.mp4"
    frames = itertools.islice(assets_script.turn_to_camera_frames(), 12)
    assert assets_script.write_motion(out, frames) is True
    info = probe(out, count_frames=True)
    assert (info.width, info.height, info.num_frames, info.fps) == (640, 360, 12, 24.0)
    assert (info.codec, info.pixel_format) == ("h264", "yuv420p")


def test_generated_assets_are_in_place(assets_script: ModuleType, repo_root: Path) -> None:
    """The files the example pipelines reference exist and match what the script makes."""
    assets = repo_root / "pipelines" / "assets"
    for name in assets_script.KEYFRAMES:
        info = probe(assets / name)
        assert (info.kind, info.width, info.height, info.codec) == ("image", 768, 432, "png")
        assert (assets / name).stat().st_size < 60_000, name
    for name in assets_script.MOTIONS:
        info = probe(assets / name)
        assert (info.kind, info.width, info.height) == ("video", 640, 360), name
        assert (info.num_frames, info.frame_rate) == (72, Fraction(24)), name
        assert (assets / name).stat().st_size < 150_000, name
