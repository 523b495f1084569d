"""Frame sizes of LTX outputs: resolution and aspect ratio to pixels, and ``auto``."""

from __future__ import annotations

import math

# What fal's LTX endpoints render for each resolution and aspect ratio (all even, as the
# yuv420p output needs).
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "720p": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)},
    "480p": {"16:9": (848, 480), "9:16": (480, 848), "1:1": (480, 480)},
}

# The original fal-ai/ltx-video takes neither resolution nor aspect ratio.
DEFAULT_SIZE = (848, 480)

_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}


def nearest_aspect(width: int, height: int) -> str:
    """The one of 16:9, 9:16 and 1:1 closest to ``width`` x ``height`` (on a log scale, so
    that 2:1 and 1:2 are equally far from square)."""
    ratio = math.log(width / height)
    return min(_RATIOS, key=lambda name: abs(math.log(_RATIOS[name]) - ratio))


def frame_size(
    resolution: str | None, aspect_ratio: str | None, source: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Output size for a request. ``auto`` follows ``source`` (the input image or video);
    without a source it falls back to 16:9."""
    if resolution is None:
        return DEFAULT_SIZE
    table = SIZES[resolution]
    if aspect_ratio is None or aspect_ratio == "auto":
        aspect_ratio = nearest_aspect(*source) if source else "16:9"
    return table[aspect_ratio]


def scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """``size`` times ``scale``, even (yuv420p), at least 2x2; ``size`` itself at 1."""
    if scale >= 1.0:
        return size
    return (max(2, round(size[0] * scale / 2) * 2), max(2, round(size[1] * scale / 2) * 2))


def cover_box(
    source: tuple[int, int], target: tuple[int, int], zoom: float = 1.0
) -> tuple[float, float, float, float]:
    """The centred crop of ``source`` that fills ``target``'s aspect ratio, shrunk by
    ``zoom`` (> 1 crops tighter), as a Pillow box (left, top, right, bottom)."""
    sw, sh = source
    tw, th = target
    scale = max(tw / sw, th / sh) * zoom
    cw, ch = tw / scale, th / scale
    left, top = (sw - cw) / 2, (sh - ch) / 2
    return (left, top, left + cw, top + ch)
