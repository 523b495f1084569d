"""The renderer: an LTX request becomes a real MP4 animatic of the requested shape.

It runs in a worker process (:func:`render` is the picklable entry point). What each kind
films, with the camera its prompt's camera words ask for (:mod:`runner.emulator.camera`;
without any, a gentle default):

- t2v: a title card (the prompt's first sentence on a seed-coloured field); default push-in;
- i2v: the keyframe, starting on its exact framing; default push-in;
- extend: the input video's last frame, starting on it; default a sway in and back out, so a
  chain of extends does not keep zooming;
- multicondition: the image, moving as the reference video does (its pan, tilt, zoom or
  orbit, estimated from its pixels, each at the reference's own pace); a still reference
  leaves the prompt's words to decide, timed by the reference's motion. Without a reference
  video it behaves like i2v;
- v2v and retake (LTX-2): made from the input clip's own frames (:mod:`.footage`).

Any animatic may be drawn at ``scale`` of its size, then scaled up to it (a test aid).
LTX-2 animatics have the size their request fixes and sound (:mod:`.sound`), written frame
by frame beside the pictures.

Below the picture, the band: the node's name (when the local backend says it), the label,
the camera, the whole prompt a page at a time, and the frame counter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageOps, UnidentifiedImageError

from runner.emulator import camera, drawing, footage, lens, reference_motion, video_io
from runner.emulator.camera import MOVES, Camera, Pose
from runner.emulator.geometry import frame_size, scaled
from runner.emulator.sound import SAMPLE_RATE, Sound, samples_at
from runner.media.encode import EncodeSettings, VideoWriter

Frame = Callable[[int], Image.Image]
Loc = tuple[str | int, ...]

# What the camera does when the prompt says nothing about it.
_DEFAULT_PUSH = 0.6  # of a push-in: about the slow push-in the emulator always drew
_DRIFT = 0.06  # an extend's sway: 6 % closer and aside, then back


@dataclass(frozen=True)
class RenderSpec:
    """Everything the renderer needs, resolved from a request by the model layer."""

    kind: str
    resolution: str | None
    aspect_ratio: str | None
    num_frames: int
    frame_rate: int | Fraction
    prompt: str
    seed: int
    label: str
    reverse: bool = False
    # The output's quality. (constant_rate_factor in a request is how fal compresses the
    # *inputs* it conditions on; it does not set the output's quality.)
    crf: int = 22
    image: Path | None = None
    image_url: str | None = None
    image_loc: Loc = ()
    video: Path | None = None
    video_url: str | None = None
    video_loc: Loc = ()
    # The pipeline node this renders, as the local backend says (fal never hears of it):
    # written in the band and in the file's title.
    node: str | None = None
    # LTX-2: the output's size when the request fixes it in pixels (else resolution and
    # aspect ratio say), its sound, and a retake's section and what it replaces.
    size: tuple[int, int] | None = None
    sound: Sound | None = None
    section: tuple[float, float] | None = None
    retake_video: bool = True
    retake_audio: bool = True
    # A test aid (EmulatorConfig.render_scale): draw at this share of the size, then scale
    # up to it, so large frames cost less to draw; the output keeps the requested size.
    scale: float = 1.0


@dataclass(frozen=True)
class RenderOutcome:
    """A finished render: the file's size and shape, or the model error that stopped it."""

    file_size: int = 0
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    error: dict[str, Any] | None = None


class _InputError(Exception):
    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__(item["msg"])
        self.item = item


def render(spec: RenderSpec, out_path: Path) -> RenderOutcome:
    """Render ``spec`` into ``out_path`` atomically (a crash leaves no partial file)."""
    started = time.perf_counter()
    try:
        size, drawn, source, filmed_as = _frames(spec)
    except _InputError as exc:
        return RenderOutcome(error=exc.item)
    label = f"{spec.label} · camera: {filmed_as}"
    pages = drawing.band_pages(drawn, spec.prompt, label, spec.node)
    # Fast and small: an animatic is a placeholder. One thread: the pool already runs one
    # render per core, and x264's output stays identical only for a fixed thread count.
    settings = EncodeSettings(crf=spec.crf, preset="ultrafast", threads=1)
    tags = {"comment": label, **({"title": spec.node} if spec.node else {})}
    fps = float(spec.frame_rate)
    sound = None
    if spec.sound is not None or spec.section is not None:
        sound = footage.soundtrack(spec, samples_at(SAMPLE_RATE, spec.num_frames, fps))
    rate = sound.rate if sound is not None else None
    with VideoWriter(
        out_path, size[0], size[1], spec.frame_rate, settings, rate, metadata=tags
    ) as out:
        last = spec.num_frames - 1
        for i in range(spec.num_frames):
            frame = source(last - i if spec.reverse else i)
            # The band follows the output's own clock: pages in reading order, reversed or not.
            pages[drawing.page_at(i, spec.num_frames, len(pages))].apply(frame)
            drawing.frame_counter(frame, i, spec.num_frames)
            out.write(frame)  # drawn at `drawn`, scaled by the writer to `size`
            if sound is not None:  # the sound under this frame, so both end together
                end = samples_at(sound.rate, i + 1, fps)
                out.write_audio(sound.between(out.audio_samples, end))
    return RenderOutcome(
        file_size=out_path.stat().st_size,
        width=size[0],
        height=size[1],
        seconds=time.perf_counter() - started,
    )


def _frames(spec: RenderSpec) -> tuple[tuple[int, int], tuple[int, int], Frame, str]:
    """The output's size, the size frames are drawn at, the frames, and the camera."""
    if spec.kind in ("v2v", "retake"):
        assert spec.size is not None  # LTX-2: the request or its input fixes it
        drawn = scaled(spec.size, spec.scale)
        try:
            make = footage.restyle if spec.kind == "v2v" else footage.retake
            frames = make(spec, drawn, float(spec.frame_rate))
        except (av.FFmpegError, IndexError, ValueError, OSError) as exc:
            raise _InputError(_load_error(spec.video_loc, spec.video_url, "video")) from exc
        return spec.size, drawn, frames, "the input clip's"
    size, picture, shot = _shot(spec)
    drawn = scaled(size, spec.scale)
    return size, drawn, _filmed(picture, shot, drawn), shot.description


def _filmed(picture: Image.Image, shot: Camera, size: tuple[int, int]) -> Frame:
    scene = lens.stage(picture, size)
    if shot.path is None:
        still = lens.shoot(scene, camera.STILL, size)
        return lambda i: still.copy()  # locked off: one framing, drawn once
    return lambda i: lens.shoot(scene, shot.pose(i), size)


def _shot(spec: RenderSpec) -> tuple[tuple[int, int], Image.Image, Camera]:
    """The frame size, the picture to film and the camera that films it."""
    if spec.kind == "t2v":
        size = spec.size or frame_size(spec.resolution, spec.aspect_ratio)
        staged = lens.staged_size(scaled(size, spec.scale))
        return size, drawing.title_card(staged, spec.prompt, spec.seed), _prompted(spec)
    if spec.kind == "extend":
        still = _last_frame(spec)
        size = spec.size or frame_size(spec.resolution, spec.aspect_ratio, still.size)
        return size, still, _prompted(spec, extend=True)
    image = _image(spec)
    size = spec.size or frame_size(spec.resolution, spec.aspect_ratio, image.size)
    if spec.kind == "multicondition" and spec.video is not None:
        return size, image, _following(spec)
    return size, image, _prompted(spec)


def _prompted(spec: RenderSpec, *, extend: bool = False) -> Camera:
    """The camera the prompt's words ask for, or the kind's default."""
    total = spec.num_frames
    words = camera.read_camera(spec.prompt, spec.seed)
    if words.said:
        return camera.from_words(words, camera.ease(total), _sway(spec))
    if extend:
        side = 1 if spec.seed % 2 == 0 else -1
        drift = Pose(zoom=1 + _DRIFT, x=side * _DRIFT)
        return camera.moving(
            "drift (no camera words)", [(drift, camera.there_and_back(total))], None
        )
    push = MOVES["push-in"].end.toward(_DEFAULT_PUSH)
    return camera.moving("push-in (no camera words)", [(push, camera.ease(total))], None)


def _following(spec: RenderSpec) -> Camera:
    """A multicondition's camera: the reference's own moves, each advancing as that motion
    does in the reference; a still reference leaves it to the prompt's words, timed by
    whatever moves in the reference."""
    assert spec.video is not None
    try:
        motion = reference_motion.estimate(spec.video)
    except (av.FFmpegError, IndexError, ValueError, OSError) as exc:
        raise _InputError(_load_error(spec.video_loc, spec.video_url, "video")) from exc
    count = len(motion.steps)

    def at(i: int) -> int:
        # Output frame i shows the reference at the same moment in time.
        return _ping_pong(round(i / spec.frame_rate * motion.frame_rate), count)

    def timed(component: str) -> camera.Curve:
        shares = motion.progress(component)
        return lambda i: shares[at(i)]

    followed = reference_motion.camera_moves(motion)
    if followed.moves or followed.handheld:
        moves = [(move.end, timed(component)) for move, component in followed.moves]
        sway = _sway(spec) if followed.handheld else None
        return camera.moving(f"{followed.describe()}, from the reference", moves, sway)
    words = camera.read_camera(spec.prompt, spec.seed)
    if not words.said:
        return camera.Camera("locked-off, as the reference")
    pace = timed("energy") if motion.total("energy") > 0 else camera.ease(spec.num_frames)
    shot = camera.from_words(words, pace, _sway(spec))
    return camera.Camera(f"{shot.description}, at the reference's pace", shot.path)


def _sway(spec: RenderSpec) -> camera.Path:
    return camera.handheld_sway(spec.seed, float(spec.frame_rate))


def _ping_pong(index: int, length: int) -> int:
    """A reference shorter than the shot plays forwards, then backwards, and so on: the image
    keeps moving with it instead of freezing when the reference ends."""
    if length <= 1:
        return 0
    period = 2 * length - 2
    k = index % period
    return k if k < length else period - k


def _image(spec: RenderSpec) -> Image.Image:
    if spec.image is None:
        raise _InputError(_load_error(spec.image_loc, spec.image_url, "image"))
    try:
        with Image.open(spec.image) as opened:
            return drawing.without_band(ImageOps.exif_transpose(opened).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _InputError(_load_error(spec.image_loc, spec.image_url, "image")) from exc


def _last_frame(spec: RenderSpec) -> Image.Image:
    if spec.video is None:
        raise _InputError(_load_error(spec.video_loc, spec.video_url, "video"))
    try:
        return drawing.without_band(video_io.last_frame(spec.video))
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise _InputError(_load_error(spec.video_loc, spec.video_url, "video")) from exc


def _load_error(loc: Loc, url: str | None, what: str) -> dict[str, Any]:
    # fal documents image_load_error; for a video that cannot be decoded it documents
    # nothing, so the emulator answers in the same shape with its own type name.
    kind = f"{what}_load_error"
    return {
        "loc": ["body", *loc],
        "msg": f"{what.capitalize()} load error",
        "type": kind,
        "url": f"https://docs.fal.ai/errors/#{kind}",
        "input": url,
    }
