"""Reading the videos a request gives the emulator: their shape and last frame.

(Writing goes through :class:`runner.media.encode.VideoWriter`, deterministic like every
other video shotgraph makes; their motion is :mod:`runner.emulator.reference_motion`'s.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image


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
