"""The renderer: an LTX request becomes a real MP4 animatic of the requested shape.

It runs in a worker process (:func:`render` is the picklable entry point). What each kind
shows:

- t2v: the prompt as a title card over a seed-coloured field that pans slowly;
- i2v: the keyframe with a slow push-in (Ken Burns) and the prompt as a caption;
- extend: the input video's last frame drifting on, as a continuation, with a caption;
- multicondition: the image moving with the timing of the reference video (its zoom follows
  the reference's accumulated motion energy, its offset the centroid of that motion); without
  a reference video it behaves like i2v;
- v2v and retake (LTX-2): made from the input clip's own frames (:mod:`.footage`).

LTX-2 animatics have sound (:mod:`.sound`), written frame by frame beside the pictures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageOps, UnidentifiedImageError

from runner.emulator import drawing, footage, video_io
from runner.emulator.geometry import cover_box, frame_size, scaled, shift_box
from runner.emulator.sound import SAMPLE_RATE, Sound, samples_at
from runner.media.audio import Pcm
from runner.media.encode import EncodeSettings, VideoWriter

Frame = Callable[[int], Image.Image]
Loc = tuple[str | int, ...]

# How far the camera moves over a whole clip: gentle, so it reads as a placeholder shot.
_PUSH_IN = 0.12
_DRIFT = 0.06
_OVERSCAN = 1.2


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
        size, source = _frames(spec)
    except _InputError as exc:
        return RenderOutcome(error=exc.item)
    # Fast and small: an animatic is a placeholder. One thread: the pool already runs one
    # render per core, and x264's output stays identical only for a fixed thread count.
    settings = EncodeSettings(crf=spec.crf, preset="ultrafast", threads=1)
    fps = float(spec.frame_rate)
    sound = None
    if spec.sound is not None or spec.section is not None:
        sound = footage.soundtrack(spec, samples_at(SAMPLE_RATE, spec.num_frames, fps))
    rate = sound.rate if sound is not None else None
    with VideoWriter(out_path, size[0], size[1], spec.frame_rate, settings, rate) as writer:
        last = spec.num_frames - 1
        for i in range(spec.num_frames):
            picture = source(last - i if spec.reverse else i)
            drawing.frame_counter(picture, i, spec.num_frames)
            writer.write(picture)
            if sound is not None:  # the sound under this frame, so both end together
                end = samples_at(sound.rate, i + 1, fps) * 4
                writer.write_audio(Pcm(sound.rate, sound.data[writer.audio_samples * 4 : end]))
    return RenderOutcome(
        file_size=out_path.stat().st_size,
        width=size[0],
        height=size[1],
        seconds=time.perf_counter() - started,
    )


def _frames(spec: RenderSpec) -> tuple[tuple[int, int], Frame]:
    if spec.size is not None:
        return spec.size, _fixed_size(spec, spec.size)
    if spec.kind == "t2v":
        size = frame_size(spec.resolution, spec.aspect_ratio)
        return size, _title_card(spec, size)
    if spec.kind == "extend":
        still = _last_frame(spec)
        size = frame_size(spec.resolution, spec.aspect_ratio, still.size)
        return size, _drift(spec, still, size)
    image = _image(spec)
    size = frame_size(spec.resolution, spec.aspect_ratio, image.size)
    if spec.kind == "multicondition" and spec.video is not None:
        return size, _follow(spec, image, size)
    return size, _push_in(spec, image, size)


def _fixed_size(spec: RenderSpec, size: tuple[int, int]) -> Frame:
    """LTX-2: the request (or its input) fixes the size; drawn at ``spec.scale`` of it."""
    drawn = scaled(size, spec.scale)
    if spec.kind == "t2v":
        return _title_card(spec, drawn)
    if spec.kind in ("v2v", "retake"):
        try:
            make = footage.restyle if spec.kind == "v2v" else footage.retake
            return make(spec, drawn, float(spec.frame_rate))
        except (av.FFmpegError, IndexError, ValueError, OSError) as exc:
            raise _InputError(_load_error(spec.video_loc, spec.video_url, "video")) from exc
    if spec.kind == "extend":
        return _drift(spec, _last_frame(spec), drawn)
    image = _image(spec)
    if spec.kind == "multicondition" and spec.video is not None:
        return _follow(spec, image, drawn)
    return _push_in(spec, image, drawn)


def _ease(i: int, total: int) -> float:
    """0 -> 1 over the clip, slow at both ends."""
    p = i / max(1, total - 1)
    return 0.5 - 0.5 * math.cos(math.pi * p)


def _title_card(spec: RenderSpec, size: tuple[int, int]) -> Frame:
    first, second, accent = drawing.seed_palette(spec.seed)
    travel = size[0] // 3
    field = drawing.gradient_field((size[0] + travel, size[1]), first, second)
    overlays = drawing.title_card(size, spec.prompt, spec.label, accent)

    def frame(i: int) -> Image.Image:
        x = round(travel * _ease(i, spec.num_frames))
        picture = field.crop((x, 0, x + size[0], size[1]))
        for overlay in overlays:
            overlay.apply(picture)
        return picture

    return frame


def _prepared(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` cropped to the output's aspect and scaled once to a little more than the
    output, so per-frame crops never upscale and never touch a huge original."""
    box = cover_box(image.size, size)
    target = (round(size[0] * _OVERSCAN), round(size[1] * _OVERSCAN))
    return image.resize(target, Image.Resampling.LANCZOS, box=box)


def _push_in(spec: RenderSpec, image: Image.Image, size: tuple[int, int]) -> Frame:
    base = _prepared(image, size)
    overlays = drawing.caption(size, spec.prompt, spec.label)

    def frame(i: int) -> Image.Image:
        box = cover_box(base.size, size, 1 + _PUSH_IN * _ease(i, spec.num_frames))
        picture = base.resize(size, Image.Resampling.BILINEAR, box=box)
        for overlay in overlays:
            overlay.apply(picture)
        return picture

    return frame


def _drift(spec: RenderSpec, still: Image.Image, size: tuple[int, int]) -> Frame:
    base = _prepared(still, size)
    overlays = drawing.caption(size, spec.prompt, spec.label)
    direction = 1 if spec.seed % 2 == 0 else -1

    def frame(i: int) -> Image.Image:
        # A slow sway in and back: it starts exactly on the input's last frame and ends on the
        # same framing, so a chain of extends does not zoom further with every hop.
        p = math.sin(math.pi * _ease(i, spec.num_frames))
        box = cover_box(base.size, size, 1 + _DRIFT * p)
        box = shift_box(box, direction * _DRIFT * base.width * p, 0, base.size)
        picture = base.resize(size, Image.Resampling.BILINEAR, box=box)
        for overlay in overlays:
            overlay.apply(picture)
        return picture

    return frame


def _follow(spec: RenderSpec, image: Image.Image, size: tuple[int, int]) -> Frame:
    assert spec.video is not None
    try:
        info = video_io.probe(spec.video)
        motion = video_io.motion_profile(spec.video)
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise _InputError(_load_error(spec.video_loc, spec.video_url, "video")) from exc
    base = _prepared(image, size)
    overlays = drawing.caption(size, spec.prompt, spec.label)
    track = _motion_track(motion)

    def frame(i: int) -> Image.Image:
        # Output frame i shows the reference at the same moment in time.
        k = _ping_pong(round(i / spec.frame_rate * info.frame_rate), len(track)) if track else 0
        zoom, ox, oy = track[k] if track else (0.0, 0.0, 0.0)
        box = cover_box(base.size, size, 1 + _DRIFT + _PUSH_IN * zoom)
        box = shift_box(box, ox * base.width * _DRIFT, oy * base.height * _DRIFT, base.size)
        picture = base.resize(size, Image.Resampling.BILINEAR, box=box)
        for overlay in overlays:
            overlay.apply(picture)
        return picture

    return frame


def _ping_pong(index: int, length: int) -> int:
    """A reference shorter than the shot plays forwards, then backwards, and so on: the image
    keeps moving with it instead of freezing when the reference ends."""
    if length <= 1:
        return 0
    period = 2 * length - 2
    k = index % period
    return k if k < length else period - k


def _motion_track(samples: list[video_io.MotionSample]) -> list[tuple[float, float, float]]:
    """Per reference frame: zoom (share of the total motion so far, 0..1) and an offset
    (-1..1) that eases towards where the motion is, weighted by how much there is."""
    total = sum(s.energy for s in samples) or 1.0
    peak = max((s.energy for s in samples), default=0.0) or 1.0
    track: list[tuple[float, float, float]] = []
    done, ox, oy = 0.0, 0.0, 0.0
    for s in samples:
        done += s.energy
        weight = 0.3 * s.energy / peak
        ox += weight * ((s.cx - 0.5) * 2 - ox)
        oy += weight * ((s.cy - 0.5) * 2 - oy)
        track.append((done / total, ox, oy))
    return track


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
