"""What a request renders: the length, frame rate and frame size of its clip.

The one place that reads them from a request, for the plan (prices per second and per
megapixel, lint, the frames a ``frame`` node may take) and for the local emulator (what it
renders). Each family says it differently:

- LTX-Video 0.9.x: ``num_frames`` at ``frame_rate``;
- LTX-2 Pro and Fast: ``duration`` seconds at ``fps``, ``resolution`` 1080p/1440p/2160p (16:9);
- LTX-2 19B: ``num_frames`` at ``fps``, ``video_size`` (a preset, ``{width, height}`` or
  ``auto``: the input's size); extend and video-to-video take the input's rate
  (``match_input_fps``) and video-to-video its length (``match_video_length``);
- retake: the input clip, with a section of it made again.

What depends on an input (``source``) is known when the input is another node's output of
known shape (at run time, in the emulator, always); otherwise it is assumed, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from runner.ltx.registry import Endpoint

# LTX-2 Pro and Fast render 16:9 at these sizes.
RESOLUTIONS: Mapping[str, tuple[int, int]] = {
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}
# fal's named sizes (the table of its image endpoints; LTX-2 19B's schema takes the same
# names, and we assume the same pixels).
SIZE_PRESETS: Mapping[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# `video_size: auto` follows the input; when the plan cannot know the input's size, it
# assumes this one (and marks the estimate as assumed).
ASSUMED_AUTO_SIZE = (1280, 720)


@dataclass(frozen=True)
class Timing:
    """A clip's shape: frames, rate and (when known) size. ``assumed`` when part of it could
    not be read from the request (see the data, and the module docstring)."""

    num_frames: int | None
    frame_rate: float | None
    assumed: bool = False
    width: int | None = None
    height: int | None = None

    @property
    def seconds(self) -> float | None:
        if not self.num_frames or not self.frame_rate:
            return None
        return self.num_frames / self.frame_rate

    @property
    def size(self) -> tuple[int, int] | None:
        if self.width is None or self.height is None:
            return None
        return self.width, self.height


def timing(endpoint: Endpoint, body: Mapping[str, Any], source: Timing | None = None) -> Timing:
    """The clip ``body`` makes on ``endpoint``; ``source`` is the shape of its input (a
    video for extend, video-to-video and retake; an image for image-to-video), if known."""
    if endpoint.kind == "retake":
        if source is None or source.num_frames is None:
            return Timing(None, None, assumed=True)
        return source
    if "duration" in body and "resolution" in body and "num_frames" not in body:
        return _hosted(body)
    if "fps" in body and "num_frames" in body:
        return _open_weights(endpoint, body, source)
    frames, rate = body.get("num_frames"), body.get("frame_rate")
    if isinstance(frames, int) and _number(rate):
        return Timing(frames, float(rate))
    assumed = endpoint.assumed_output or {}
    return Timing(assumed.get("num_frames"), assumed.get("frame_rate"), assumed=True)


def _hosted(body: Mapping[str, Any]) -> Timing:
    duration, rate = body.get("duration"), body.get("fps")
    size = RESOLUTIONS.get(str(body.get("resolution")))
    if not _number(duration) or not _number(rate) or size is None:
        return Timing(None, None, assumed=True)
    if body.get("aspect_ratio") == "9:16":
        size = (size[1], size[0])
    return Timing(round(duration * rate), float(rate), width=size[0], height=size[1])


def _open_weights(endpoint: Endpoint, body: Mapping[str, Any], source: Timing | None) -> Timing:
    frames, rate = body["num_frames"], body["fps"]
    if not isinstance(frames, int) or not _number(rate):
        return Timing(None, None, assumed=True)
    assumed = False
    follows_input = endpoint.kind in ("extend", "v2v")
    if follows_input and body.get("match_input_fps", True):
        if source is not None and source.frame_rate:
            rate, assumed = source.frame_rate, source.assumed
        else:
            assumed = True
    if endpoint.kind == "v2v" and body.get("match_video_length", True):
        if source is not None and source.seconds:
            frames, assumed = round(source.seconds * rate), assumed or source.assumed
        else:
            assumed = True
    size, size_assumed = video_size(body.get("video_size"), source)
    return Timing(frames, float(rate), assumed or size_assumed, width=size[0], height=size[1])


def video_size(value: Any, source: Timing | None) -> tuple[tuple[int, int], bool]:
    """The pixels of a ``video_size`` value, and whether they are assumed (``auto`` with an
    input of unknown, or itself assumed, size)."""
    if isinstance(value, Mapping):
        width, height = value.get("width", 512), value.get("height", 512)
        if isinstance(width, int) and isinstance(height, int):
            return (width, height), False
    if isinstance(value, str) and value in SIZE_PRESETS:
        return SIZE_PRESETS[value], False
    if source is not None and source.size is not None:
        return source.size, source.assumed
    return ASSUMED_AUTO_SIZE, True


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
