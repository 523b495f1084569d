"""Reading the videos a request gives the emulator: their shape, last frame and motion.

(Writing goes through :class:`runner.media.encode.VideoWriter`, deterministic like every
other video shotgraph makes.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image, ImageChops, ImageStat

# Small enough to decode references quickly, large enough to see where things move.
_PROBE_SIZE = (32, 18)


@dataclass(frozen=True)
class VideoInfo:
    """What a video input looks like: its size, rate and frame count."""

    width: int
    height: int
    frame_rate: float
    frames: int


def probe(path: Path) -> VideoInfo:
    """Size, rate and frame count of the first video stream (decoding when the container
    does not say how many frames it holds)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 24)
        frames = stream.frames or sum(1 for _ in container.decode(stream))
        return VideoInfo(stream.width, stream.height, rate, frames)


def frames(path: Path) -> Iterator[Image.Image]:
    """Every frame of the first video stream, as RGB images."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_image()  # type: ignore[no-untyped-call]  # PyAV's stubs


def last_frame(path: Path) -> Image.Image:
    """The final frame of a video (decoded in order: a seek could land on a keyframe)."""
    last: Image.Image | None = None
    for last in frames(path):  # noqa: B007 - we want the loop's final value
        pass
    if last is None:
        raise ValueError(f"{path} has no video frames")
    return last


@dataclass(frozen=True)
class MotionSample:
    """How much a reference frame changed from the previous one, and where."""

    energy: float  # mean absolute difference, 0..255
    cx: float  # centroid of the change, 0..1 across
    cy: float  # centroid of the change, 0..1 down


def motion_profile(path: Path) -> list[MotionSample]:
    """One sample per frame of ``path`` describing its frame-to-frame motion."""
    samples: list[MotionSample] = []
    previous: Image.Image | None = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            small = frame.reformat(width=_PROBE_SIZE[0], height=_PROBE_SIZE[1])
            gray = small.to_image().convert("L")  # type: ignore[no-untyped-call]  # PyAV stubs
            if previous is None:
                samples.append(MotionSample(0.0, 0.5, 0.5))
            else:
                samples.append(_change(previous, gray))
            previous = gray
    return samples


def _change(before: Image.Image, after: Image.Image) -> MotionSample:
    diff = ImageChops.difference(before, after)
    energy = ImageStat.Stat(diff).mean[0]
    columns = list(diff.resize((diff.width, 1), Image.Resampling.BOX).getdata())
    rows = list(diff.resize((1, diff.height), Image.Resampling.BOX).getdata())
    return MotionSample(energy, _centroid(columns), _centroid(rows))


def _centroid(weights: list[int]) -> float:
    total = sum(weights)
    if total == 0:
        return 0.5
    return sum((i + 0.5) * w for i, w in enumerate(weights)) / (total * len(weights))
