"""Animatics made from an input clip's own frames, and every animatic's sound.

- video-to-video (LTX-2 19B): the input clip replayed on the output's clock, tinted with the
  seed's accent colour: the same motion, restyled;
- retake (LTX-2): the input clip as it is (its own frames; at a render scale below 1 they
  too pass through the smaller size), except the section it makes again: when
  ``retake_mode`` replaces the video, the section's first frame drifts, tinted with the
  seed's accent, so a reviewer sees what was retaken; at the input's own
  size, rate and length.

The sound (:func:`soundtrack`): the seed's tones for the whole clip; for a retake, the input's
own sound (read exactly, :mod:`runner.media.audio`) with the section's tones in place of it
when ``retake_mode`` replaces the audio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import av
from PIL import Image

from runner.emulator import drawing, lens, video_io
from runner.emulator.camera import Pose
from runner.emulator.sound import SAMPLE_RATE, Sound, tones
from runner.media.audio import Pcm, read_audio
from runner.media.convert import FrameConverter, frame_to_image

Frame = Callable[[int], Image.Image]
_TINT = 0.35
_DRIFT = 0.06


class Footage(Protocol):
    """What these animatics need of a render's spec (see :class:`RenderSpec`)."""

    @property
    def num_frames(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def video(self) -> Path | None: ...
    @property
    def section(self) -> tuple[float, float] | None: ...
    @property
    def retake_video(self) -> bool: ...
    @property
    def retake_audio(self) -> bool: ...
    @property
    def sound(self) -> Sound | None: ...


class _Clip:
    """The input clip at ``size``, read once, forwards (frames are asked for in order) and
    scaled bit-exactly, so the animatic is the same file on every machine."""

    def __init__(self, path: Path, size: tuple[int, int]) -> None:
        info = video_io.probe(path)
        self.rate, self.frames = info.frame_rate, max(1, info.frames)
        self._iter = _pictures(path, size)
        self._index = -1
        self._current: Image.Image | None = None

    def at(self, index: int) -> Image.Image:
        index = min(index, self.frames - 1)
        while self._index < index or self._current is None:
            picture = next(self._iter, None)
            if picture is None:
                break
            self._current, self._index = picture, self._index + 1
        if self._current is None:
            raise ValueError("the input clip has no frames")
        return self._current


def _pictures(path: Path, size: tuple[int, int]) -> Iterator[Image.Image]:
    convert = FrameConverter("rgb24", size)
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame_to_image(convert(frame))


def restyle(spec: Footage, size: tuple[int, int], rate: float) -> Frame:
    """Video-to-video: the input's motion at the output's clock, tinted (the renderer's band
    carries the prompt)."""
    assert spec.video is not None
    clip = _Clip(spec.video, size)
    tint = Image.new("RGB", size, drawing.seed_palette(spec.seed)[2])

    def frame(i: int) -> Image.Image:
        source = drawing.without_band(clip.at(math.floor(i * clip.rate / rate + 1e-9)))
        return Image.blend(source, tint, _TINT)

    return frame


def retake(spec: Footage, size: tuple[int, int], rate: float) -> Frame:
    """Retake: the input, with its section made again when the video is replaced."""
    assert spec.video is not None and spec.section is not None
    clip = _Clip(spec.video, size)
    start, length = spec.section
    first = math.ceil(start * rate - 1e-9)
    count = max(1, math.ceil(length * rate - 1e-9))
    tint = Image.new("RGB", size, drawing.seed_palette(spec.seed)[2])
    still: list[lens.Stage] = []

    def frame(i: int) -> Image.Image:
        source = clip.at(i)
        if not spec.retake_video or not first <= i < first + count:
            return source.copy()
        if not still:
            still.append(lens.stage(Image.blend(drawing.without_band(source), tint, _TINT), size))
        # In and aside, then back: the section starts and ends on its first frame's framing.
        p = math.sin(math.pi * (i - first) / max(1, count - 1))
        return lens.shoot(still[0], Pose(zoom=1 + _DRIFT * p, x=_DRIFT * p), size)

    return frame


def soundtrack(spec: Footage, samples: int) -> Pcm | None:
    """The clip's sound, ``samples`` long, or None for a silent clip."""
    if spec.section is None or spec.video is None:
        return tones(spec.sound, samples) if spec.sound is not None else None
    original = read_audio(spec.video, SAMPLE_RATE)
    if not spec.retake_audio or spec.sound is None:
        return original.fitted(samples) if original is not None else None
    base = (original or Pcm(SAMPLE_RATE)).fitted(samples)
    start = min(samples, round(spec.section[0] * SAMPLE_RATE))
    stop = min(samples, start + round(spec.section[1] * SAMPLE_RATE))
    section = tones(spec.sound, stop - start, offset=start)
    data = base.between(0, start).data + section.data + base.between(stop, samples).data
    return Pcm(SAMPLE_RATE, data)
