"""The camera words of a prompt, and the camera moves read from a reference video."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from runner.emulator import reference_motion
from runner.emulator.animatic import RenderSpec, render
from runner.emulator.camera import MOVES, read_camera
from runner.emulator.reference_motion import camera_moves, estimate
from runner.media.encode import VideoWriter

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("prompt", "camera"),
    [
        ("Camera: slow push-in.", "push-in"),
        ("the camera pushes in on her face", "push-in"),
        ("Zoom in slowly", "push-in"),
        ("pull back to reveal the street", "pull-out"),
        ("Zooming out.", "pull-out"),
        ("Dolly in toward the door", "dolly-in"),
        ("dolly back", "dolly-out"),
        ("Pan left across the skyline", "pan-left"),
        ("the camera pans to the right", "pan-right"),
        ("Tilt up to the sky", "tilt-up"),
        ("tilting down to her shoes", "tilt-down"),
        ("Orbit left around the statue", "orbit-left"),
        ("the camera orbits clockwise", "orbit-right"),
        ("Locked-off tripod shot", "locked-off"),
        ("Camera: static.", "locked-off"),
        ("no camera movement at all", "locked-off"),
        ("Handheld, following her", "handheld"),
        ("slow push-in, handheld", "push-in + handheld"),
        ("A fast pan left and a tilt up", "pan-left + tilt-up"),
        # negated words do not count, in their own clause only
        ("Camera: steady framing, no sudden zoom.", "locked-off"),
        ("Camera: stable, no zoom, no cut.", "locked-off"),
        ("no pan, push in", "push-in"),
        # a named move beats a locked-off camera; a locked-off camera is not handheld
        ("locked-off, slow pan right", "pan-right"),
        ("locked-off, handheld", "locked-off"),
        # one move per axis: the first named wins
        ("push in, then pull out", "push-in"),
        # words that are not camera moves
        ("She tilts her head and smiles", "locked-off"),
        ("Japan, a panorama of static-free skies", "locked-off"),
    ],
)
def test_camera_words_become_moves(prompt: str, camera: str) -> None:
    words = read_camera(prompt, seed=4)
    assert words.describe() == camera
    assert words.said or camera == "locked-off"


def test_a_move_without_a_direction_takes_one_from_the_seed() -> None:
    assert {read_camera("a slow pan", seed).describe() for seed in (1, 2)} == {
        "pan-left",
        "pan-right",
    }
    assert read_camera("orbit around her", 7).describe() == read_camera("orbit", 7).describe()


def test_speed_words_scale_the_moves_of_their_clause() -> None:
    (slow, speed), *_ = read_camera("slow push-in, pan left", 0).moves
    assert slow is MOVES["push-in"] and speed == pytest.approx(0.6)
    assert read_camera("slow push-in, pan left", 0).moves[1][1] == 1.0
    assert read_camera("a fast pan left", 0).moves[0][1] == pytest.approx(1.6)


def test_the_shipped_templates_read_as_their_camera_lines_say() -> None:
    # the defaults of templates/*.j2: a steady new shot, a stable extend, a pushing-in t2v
    assert read_camera("Camera: steady framing, no sudden zoom.", 1).describe() == "locked-off"
    assert read_camera("Camera: stable, no zoom, no cut.", 1).describe() == "locked-off"
    assert read_camera("Camera: locked off on a tripod.", 1).describe() == "locked-off"
    assert read_camera("Camera: slow push-in.", 1).describe() == "push-in"
    nothing = read_camera("The character of the reference image. Action: a calm look.", 1)
    assert not nothing.said


# -- the reference video's motion ------------------------------------------------------------

SIZE = (192, 108)


def scene(size: tuple[int, int], seed: int) -> Image.Image:
    """A textured backdrop: bright blocks scattered on dark grey, something to track
    everywhere (scattered at random: a regular pattern matches itself at many shifts)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (30, 30, 36))
    draw = ImageDraw.Draw(image)
    for _ in range(size[0] * size[1] // 250):
        x, y = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        w, h, shade = rng.uniform(3, 12), rng.uniform(3, 10), rng.randint(90, 250)
        draw.rectangle((x, y, x + w, y + h), fill=(shade, 255 - shade // 2, 120))
    return image


def write_clip(path: Path, frames: list[Image.Image]) -> Path:
    with VideoWriter(path, SIZE[0], SIZE[1], 12) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def panning(path: Path, step: int) -> Path:
    wide = scene((SIZE[0] + 24 * abs(step) + 8, SIZE[1]), 1)
    lefts = [i * abs(step) for i in range(24)]
    if step < 0:
        lefts.reverse()
    return write_clip(path, [wide.crop((x, 0, x + SIZE[0], SIZE[1])) for x in lefts])


def orbiting(path: Path) -> Path:
    """The scene behind slides left while a figure in the centre holds still."""
    wide = scene((SIZE[0] + 24 * 3, SIZE[1]), 2)
    frames = []
    for i in range(24):
        frame = wide.crop((i * 3, 0, i * 3 + SIZE[0], SIZE[1]))
        ImageDraw.Draw(frame).rectangle((76, 10, 116, 100), fill=(230, 200, 40))
        frames.append(frame)
    return write_clip(path, frames)


def zooming(path: Path) -> Path:
    base = scene((SIZE[0] * 2, SIZE[1] * 2), 3)
    frames = []
    for i in range(24):
        zoom = 1 + 0.02 * i
        w, h = base.width / zoom, base.height / zoom
        box = (
            (base.width - w) / 2,
            (base.height - h) / 2,
            (base.width + w) / 2,
            (base.height + h) / 2,
        )
        frames.append(base.resize(SIZE, Image.Resampling.BILINEAR, box=box))
    return write_clip(path, frames)


def swaying(path: Path) -> Path:
    big = scene((SIZE[0] + 20, SIZE[1] + 20), 4)
    frames = []
    for i in range(24):
        turn = 2 * math.pi * i / 23  # two sways across and three up and down, back home
        x, y = 10 + round(8 * math.sin(2 * turn)), 10 + round(6 * math.sin(3 * turn))
        frames.append(big.crop((x, y, x + SIZE[0], y + SIZE[1])))
    return write_clip(path, frames)


def test_a_reference_that_slides_reads_as_a_pan(tmp_path: Path) -> None:
    # content sliding left: the camera panned right, and the other way round
    assert camera_moves(estimate(panning(tmp_path / "r.mp4", 3))).describe() == "pan-right"
    assert camera_moves(estimate(panning(tmp_path / "l.mp4", -3))).describe() == "pan-left"
    motion = estimate(panning(tmp_path / "r.mp4", 3))
    # 23 steps of 3 pixels across 192: measured to within a few per cent
    assert motion.total("dx") == pytest.approx(-69 / 192, rel=0.05)
    shares = motion.progress("dx")
    assert shares[0] == 0 and shares[-1] == pytest.approx(1) and shares == sorted(shares)


def test_sides_sliding_past_a_still_centre_read_as_an_orbit(tmp_path: Path) -> None:
    moves = camera_moves(estimate(orbiting(tmp_path / "o.mp4")))
    assert moves.describe() == "orbit-left"  # the scene behind slides left


def test_a_spreading_reference_reads_as_a_push_in(tmp_path: Path) -> None:
    motion = estimate(zooming(tmp_path / "z.mp4"))
    assert camera_moves(motion).describe() == "push-in"
    assert math.exp(motion.total("zoom")) == pytest.approx(1 + 0.02 * 23, rel=0.1)


def test_a_wandering_reference_reads_as_handheld_and_a_still_one_as_still(
    tmp_path: Path,
) -> None:
    assert camera_moves(estimate(swaying(tmp_path / "s.mp4"))).describe() == "handheld"
    still = write_clip(tmp_path / "still.mp4", [scene(SIZE, 5)] * 12)
    assert camera_moves(estimate(still)).describe() == "still"


def test_the_example_motion_clips_read_as_their_names(tmp_path: Path) -> None:
    motion = ROOT / "pipelines" / "assets" / "motion"
    read = {
        name: camera_moves(estimate(motion / f"{name}.mp4")).describe()
        for name in ("orbit", "slow_walk", "handheld_sway", "turn_to_camera")
    }
    # the walker nearing the camera and the figure turning move in a still frame
    assert read == {
        "orbit": "orbit-left",
        "slow_walk": "still",
        "handheld_sway": "handheld",
        "turn_to_camera": "still",
    }


def test_a_clip_is_measured_once_by_its_bytes_not_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[Path] = []
    measure = reference_motion._measure

    def counted(path: Path) -> reference_motion.ReferenceMotion:
        measured.append(path)
        return measure(path)

    monkeypatch.setattr(reference_motion, "_measure", counted)
    monkeypatch.setattr(reference_motion, "_MEASURED", OrderedDict())  # none measured yet
    right = panning(tmp_path / "r.mp4", 3)
    first = estimate(right)
    # the same bytes under another name (another job's download): not measured again
    copy = tmp_path / "job" / "reference.mp4"
    copy.parent.mkdir()
    copy.write_bytes(right.read_bytes())
    assert estimate(copy) is first
    # other bytes at the first name: measured, and read as what they show
    panning(right, -3)
    assert camera_moves(estimate(right)).describe() == "pan-left"
    assert measured == [right, right]


def test_a_reference_that_cannot_be_read_is_fals_video_load_error(tmp_path: Path) -> None:
    picture = tmp_path / "k.png"
    scene(SIZE, 6).save(picture)
    spec = RenderSpec(
        "multicondition", "480p", "16:9", 9, 24, "a shot", 1, "a label",
        image=picture, image_url="https://files.example/k.png", image_loc=("images", 0),
        video=tmp_path / "gone.mp4", video_url="https://files.example/r.mp4",
        video_loc=("videos", 0, "video_url"),
    )  # fmt: skip
    outcome = render(spec, tmp_path / "out.mp4")
    assert outcome.error is not None and outcome.error["type"] == "video_load_error"
    assert outcome.error["loc"] == ["body", "videos", 0, "video_url"]
    assert not (tmp_path / "out.mp4").exists()
