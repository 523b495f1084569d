"""Extract one frame of a video as a PNG: the ``frame`` node (workflow C's "best frame").

Which frame is said with :class:`FrameAt`: ``first``, ``last``, a 0-based index (negative
counts from the end, so ``-1`` is ``last``) or a time in seconds. Frames are counted as
they decode, so ``last`` is the last frame a player shows, whatever the container's index
claims. A time picks the frame on screen at that instant: the last frame whose timestamp,
measured from the first frame, is not after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from av.video.frame import VideoFrame

from runner import atomic
from runner.errors import MediaError
from runner.frame_at import FrameAt, FrameSpec, parse_frame_at
from runner.media._files import (
    StrPath,
    decode_checked,
    open_video,
    require_file,
    stream_rate,
    writing,
)
from runner.media._time import frame_period, relative_time
from runner.media.convert import frame_to_image
from runner.media.probe import MediaInfo


def extract_frame(video: StrPath, out_png: StrPath, at: FrameSpec) -> MediaInfo:
    """Write the frame of ``video`` chosen by ``at`` to ``out_png``; describe the PNG.

    The PNG is RGB, deterministic (the same input gives the same bytes: bit-exact colour
    conversion, no metadata) and written atomically. A position outside the clip raises
    :class:`MediaError` naming the clip's frame count and duration.
    """
    where = parse_frame_at(at)
    src = require_file(video)
    out = Path(out_png)
    with open_video(src) as (container, stream):
        rate = stream_rate(stream, src)
        frames = decode_checked(container, stream, src)
        if where.index is not None:
            frame = _by_index(frames, where.index, src)
        else:
            frame = _by_time(frames, where, src, rate)
        image = frame_to_image(frame)
    with writing(out, "frame"), atomic.replacing(out, ".png") as tmp:
        image.save(tmp, format="PNG")
    return MediaInfo(
        kind="image", width=image.width, height=image.height, codec="png", pixel_format="rgb24"
    )


def _by_index(frames: Iterator[VideoFrame], index: int, src: Path) -> VideoFrame:
    count = 0
    if index >= 0:
        for frame in frames:
            if count == index:
                return frame
            count += 1
    else:
        # Only the last |index| frames are kept: memory stays bounded by the request,
        # not by the clip's length.
        tail: deque[VideoFrame] = deque(maxlen=-index)
        for frame in frames:
            tail.append(frame)
            count += 1
        if count >= -index:
            return tail[0]
    raise MediaError(
        f"frame {FrameAt(index=index)} is out of range: {src} has {count} frames "
        f"(0..{count - 1}, or -{count}..-1 counting from the end)",
        hint='use "last" for the final frame',
    )


def _by_time(frames: Iterator[VideoFrame], where: FrameAt, src: Path, rate: Fraction) -> VideoFrame:
    target = where.exact_seconds
    assert target is not None
    chosen: VideoFrame | None = None
    chosen_time = Fraction(0)
    first_pts: int | None = None
    count = 0
    for frame in frames:
        if first_pts is None:
            first_pts = frame.pts
        time = relative_time(frame, first_pts, count, rate)
        if chosen is not None and time > target:
            return chosen
        chosen, chosen_time = frame, time
        count += 1
    if chosen is None:
        raise MediaError(f"{src} has no video frames", hint="re-render or re-export it")
    duration = chosen_time + frame_period(chosen, rate)
    if target < duration:
        return chosen
    raise MediaError(
        f"frame time {where} is past the end of {src}: the clip is {float(duration):.3f} s "
        f"long ({count} frames at {float(rate):g} fps)",
        hint=f'use a time below {float(duration):.3f}s, or "last"',
    )
