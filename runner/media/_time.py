"""Frame timestamps as exact fractions of a second."""

from __future__ import annotations

from fractions import Fraction

from av.video.frame import VideoFrame


def relative_time(frame: VideoFrame, first_pts: int | None, index: int, rate: Fraction) -> Fraction:
    """When ``frame`` is shown, in seconds after the clip's first frame."""
    if frame.pts is not None and first_pts is not None and frame.time_base:
        return (frame.pts - first_pts) * frame.time_base
    # No timestamps (some raw streams): assume a constant rate.
    return index / rate


def frame_period(frame: VideoFrame, rate: Fraction) -> Fraction:
    """How long ``frame`` stays on screen: its own duration if the stream records one."""
    if frame.duration and frame.time_base:
        return frame.duration * frame.time_base
    return 1 / rate
