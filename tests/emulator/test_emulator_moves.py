"""Camera moves, measured on the pixels of rendered animatics.

The keyframe is four white dots on dark grey, so every frame can be measured by where the
dots are: their centroid (the picture sliding), their spread around it (its scale) and the
height of the left pair against the right pair (a turn in perspective).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from runner.emulator import drawing, video_io
from runner.emulator.animatic import RenderSpec, render
from runner.media.encode import VideoWriter

SIZE = (848, 480)  # 480p 16:9
FRAMES = 13


@dataclass(frozen=True)
class Dots:
    """Where the dots of one frame are: centroid (x, y) in pixels, mean distance from it,
    and the vertical distance between the upper and lower dot on the left and on the
    right."""

    x: float
    y: float
    spread: float
    left_height: float
    right_height: float


@pytest.fixture(scope="module")
def keyframe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("moves") / "dots.png"
    image = Image.new("RGB", (640, 360), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    for x in (240, 400):
        for y in (110, 230):
            draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(255, 255, 255))
    image.save(path)
    return path


def film(
    tmp_path: Path, prompt: str, kind: str = "i2v", frames: int = FRAMES, **extra: object
) -> list[Image.Image]:
    spec = RenderSpec(
        kind=kind,
        resolution="480p",
        aspect_ratio="16:9",
        num_frames=frames,
        frame_rate=12,
        prompt=prompt,
        seed=3,
        label=f"animatic · {kind}",
        **extra,  # type: ignore[arg-type]
    )
    out = tmp_path / f"{hashlib.sha256(repr(spec).encode()).hexdigest()[:12]}.mp4"
    outcome = render(spec, out)
    assert outcome.error is None
    return list(video_io.frames(out))


def picture(frame: Image.Image) -> np.ndarray:
    """The frame above its band, grey, 0..255."""
    top = frame.height - drawing.band_height(frame.size)
    return np.asarray(frame.crop((0, 0, frame.width, top)).convert("L"), dtype=np.float64)


def dots(frame: Image.Image) -> Dots:
    grey = picture(frame)
    ys, xs = np.nonzero(grey > 150)
    x, y = float(xs.mean()), float(ys.mean())
    spread = float(np.hypot(xs - x, ys - y).mean())
    heights = []
    for side in (xs < x, xs >= x):
        upper, lower = ys[side & (ys < y)], ys[side & (ys >= y)]
        heights.append(float(lower.mean() - upper.mean()))
    return Dots(x, y, spread, heights[0], heights[1])


def motion(one: Image.Image, other: Image.Image) -> float:
    """Mean absolute difference of two frames' pictures, 0..255."""
    return float(np.abs(picture(one) - picture(other)).mean())


def test_a_locked_off_shot_does_not_move(tmp_path: Path, keyframe: Path) -> None:
    frames = film(tmp_path, "Locked-off tripod shot of four lights.", image=keyframe)
    assert max(motion(frames[0], frame) for frame in frames) < 0.5
    first, last = dots(frames[0]), dots(frames[-1])
    assert abs(last.x - first.x) < 0.5 and abs(last.spread - first.spread) < 0.5


def test_the_first_frame_is_the_keyframe_whatever_the_move(tmp_path: Path, keyframe: Path) -> None:
    still = film(tmp_path, "static", image=keyframe)[0]
    for prompt in ("push in", "pull out", "pan left", "tilt up", "orbit right", "handheld"):
        assert motion(film(tmp_path, prompt, image=keyframe)[0], still) < 0.5, prompt


def test_a_push_in_grows_and_a_pull_out_shrinks(tmp_path: Path, keyframe: Path) -> None:
    pushed = [dots(frame).spread for frame in film(tmp_path, "Push in.", image=keyframe)]
    assert pushed == sorted(pushed)  # it grows all the way
    assert pushed[-1] / pushed[0] == pytest.approx(1.2, abs=0.03)
    pulled = [dots(frame).spread for frame in film(tmp_path, "Pull out.", image=keyframe)]
    assert pulled == sorted(pulled, reverse=True)
    assert pulled[-1] / pulled[0] == pytest.approx(1 / 1.2, abs=0.03)
    # a slow one moves less, a dolly further
    slow = dots(film(tmp_path, "Slow push-in.", image=keyframe)[-1]).spread / pushed[0]
    dolly = dots(film(tmp_path, "Dolly in.", image=keyframe)[-1]).spread / pushed[0]
    assert 1.05 < slow < 1.15 and dolly == pytest.approx(1.35, abs=0.04)


@pytest.mark.parametrize(
    ("prompt", "dx", "dy"),
    [("Pan left.", 1, 0), ("Pan right.", -1, 0), ("Tilt up.", 0, 1), ("Tilt down.", 0, -1)],
)
def test_pans_and_tilts_slide_the_picture_the_other_way(
    tmp_path: Path, keyframe: Path, prompt: str, dx: int, dy: int
) -> None:
    frames = film(tmp_path, prompt, image=keyframe)
    first, last = dots(frames[0]), dots(frames[-1])
    # the camera turns left: what it sees slides right, by 15 % of the frame
    assert last.x - first.x == pytest.approx(dx * 0.15 * SIZE[0], abs=3)
    assert last.y - first.y == pytest.approx(dy * 0.15 * SIZE[1], abs=3)
    assert last.spread == pytest.approx(first.spread, abs=1)  # no zoom


def test_an_orbit_turns_the_picture_in_perspective(tmp_path: Path, keyframe: Path) -> None:
    first = dots(film(tmp_path, "static", image=keyframe)[0])
    assert first.right_height == pytest.approx(first.left_height, abs=0.5)
    right = dots(film(tmp_path, "Orbit right around them.", image=keyframe)[-1])
    left = dots(film(tmp_path, "Orbit left around them.", image=keyframe)[-1])
    # the side the camera circles towards comes nearer, taller (by 9 % this near the
    # centre; 40 % at the frame's edges); the scene slides that way
    assert right.right_height / right.left_height > 1.07
    assert left.left_height / left.right_height > 1.07
    assert right.x > first.x > left.x


def test_handheld_wanders_a_little(tmp_path: Path, keyframe: Path) -> None:
    frames = [dots(frame) for frame in film(tmp_path, "Handheld.", image=keyframe)]
    offsets = [np.hypot(f.x - frames[0].x, f.y - frames[0].y) for f in frames]
    assert 1 < max(offsets) < 0.04 * SIZE[0]
    assert len({round(o) for o in offsets}) > 3  # it keeps moving, not one jump


def test_a_t2v_card_moves_as_its_prompt_says(tmp_path: Path) -> None:
    def title(frame: Image.Image) -> tuple[float, float]:
        ys, xs = np.nonzero(picture(frame) > 200)  # the title's white letters
        return float(xs.mean()), float(np.hypot(xs - xs.mean(), ys - ys.mean()).mean())

    prompt = "A title card for the storm. Camera: {}."
    still = film(tmp_path, prompt.format("locked off"), "t2v")
    assert max(motion(still[0], frame) for frame in still) < 0.5
    pushed = [title(frame)[1] for frame in film(tmp_path, prompt.format("slow push-in"), "t2v")]
    assert all(b > a - 0.5 for a, b in itertools.pairwise(pushed))  # grows
    assert pushed[-1] / pushed[0] > 1.08
    panned = film(tmp_path, prompt.format("pan left"), "t2v")
    assert title(panned[-1])[0] - title(panned[0])[0] > 0.1 * SIZE[0]


def test_an_extend_starts_on_the_clip_it_continues(tmp_path: Path, keyframe: Path) -> None:
    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, *SIZE, 12) as writer:
        writer.write(Image.open(keyframe).convert("RGB").resize(SIZE), repeat=3)
    for prompt in ("pan right", "pull out", "Camera: stable, no zoom."):
        frames = film(tmp_path, prompt, "extend", video=clip)
        assert motion(frames[0], Image.open(keyframe).convert("RGB").resize(SIZE)) < 2, prompt
    # locked off: it stays on that frame
    frames = film(tmp_path, "Camera: stable, no zoom.", "extend", video=clip)
    assert motion(frames[0], frames[-1]) < 0.5


def test_a_multicondition_follows_its_references_orbit(tmp_path: Path, keyframe: Path) -> None:
    reference = Path(__file__).resolve().parents[2] / "pipelines/assets/motion/orbit.mp4"
    # 3 s at 12 fps: as long as the reference, so the last frame is its end
    frames = film(tmp_path, "A calm look.", "multicondition", 36, image=keyframe, video=reference)
    start, middle, end = (dots(frames[k]) for k in (0, 18, 35))
    # the reference's scene slides left past its subject: the camera circles left
    assert end.left_height / end.right_height > 1.07
    assert end.x < middle.x < start.x


def test_moving_renders_are_byte_identical(tmp_path: Path, keyframe: Path) -> None:
    def bytes_of(folder: str) -> bytes:
        spec = RenderSpec(
            "i2v",
            "480p",
            "16:9",
            FRAMES,
            12,
            "Orbit left, handheld.",
            9,
            "animatic · i2v",
            image=keyframe,
            node="intro",
        )
        out = tmp_path / folder / "clip.mp4"
        out.parent.mkdir()
        assert render(spec, out).error is None
        return out.read_bytes()

    assert bytes_of("a") == bytes_of("b")
