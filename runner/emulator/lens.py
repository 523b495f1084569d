"""Filming a still picture with a moving camera: a :class:`Pose` becomes a frame.

The picture is prepared once (:func:`stage`): cropped to the output's aspect, scaled to a
little more than the output (so closer framings stay sharp) and surrounded by a mirrored
margin, so that a pull-out, a pan or an orbit that looks past the picture's edge shows a
continuation of it rather than black. Each frame is then one resampling of a box of that
stage, or, for an orbit, of a few dozen narrow strips, each scaled by its own height: the
picture's plane turning about its vertical axis, in perspective. Both cost about the same
as the plain push-in the emulator always drew.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from PIL import Image

from runner.emulator.camera import Pose
from runner.emulator.geometry import cover_box

# The picture at frame 0 is this much larger than the output, so a push-in stays sharp.
_OVERSCAN = 1.2
# The mirrored margin, as a share of the picture on each side: room for any move's edge.
_MARGIN = 0.3
# How far the camera is from the picture's plane, in half-widths of the frame: the
# perspective of an orbit (nearer is stronger).
_DISTANCE = 2.5
_STRIPS = 48


@dataclass(frozen=True)
class Stage:
    """The prepared picture and where frame 0's framing sits on it (left, top, width,
    height, in its pixels)."""

    image: Image.Image
    home: tuple[float, float, float, float]


def staged_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size a picture is staged at to be filmed at ``size``: drawing one at this size
    (a title card) spares it a resampling."""
    return round(size[0] * _OVERSCAN), round(size[1] * _OVERSCAN)


def stage(picture: Image.Image, size: tuple[int, int]) -> Stage:
    """``picture`` ready to film at ``size``: frame 0 shows exactly its cover crop."""
    width, height = staged_size(size)
    if picture.size == (width, height):
        base = picture
    else:
        box = cover_box(picture.size, size)
        base = picture.resize((width, height), Image.Resampling.LANCZOS, box=box)
    mx, my = round(width * _MARGIN), round(height * _MARGIN)
    padded = Image.new("RGB", (width + 2 * mx, height + 2 * my))
    # The picture, its mirror images beside it, and their mirror images above and below.
    across = Image.new("RGB", (width + 2 * mx, height))
    across.paste(base, (mx, 0))
    flipped = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    across.paste(flipped.crop((width - mx, 0, width, height)), (0, 0))
    across.paste(flipped.crop((0, 0, mx, height)), (mx + width, 0))
    padded.paste(across, (0, my))
    upside = across.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    padded.paste(upside.crop((0, height - my, across.width, height)), (0, 0))
    padded.paste(upside.crop((0, 0, across.width, my)), (0, my + height))
    return Stage(padded, (mx, my, width, height))


def shoot(scene: Stage, pose: Pose, size: tuple[int, int]) -> Image.Image:
    """The frame the camera at ``pose`` sees of ``scene``, at ``size``."""
    left, top, width, height = scene.home
    w, h = width / pose.zoom, height / pose.zoom
    # The view never looks past the stage's margin: past it there is nothing to show.
    fit = min(1.0, scene.image.width / w, scene.image.height / h)
    w, h = w * fit, h * fit
    cx = _clamp(left + width / 2 + pose.x * width, w / 2, scene.image.width - w / 2)
    cy = _clamp(top + height / 2 + pose.y * height, h / 2, scene.image.height - h / 2)
    if abs(pose.turn) < 1e-4:
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        return scene.image.resize(size, Image.Resampling.BILINEAR, box=box)
    return _turned(scene.image, (cx, cy, w, h), pose.turn, size)


def _turned(
    image: Image.Image, view: tuple[float, float, float, float], turn: float, size: tuple[int, int]
) -> Image.Image:
    """The view of ``image`` with its plane turned by ``turn`` radians about the view's
    vertical centre line. A point ``u`` half-widths from that line lands at
    ``u cos t / (1 - u sin t / d)`` on screen and its height is scaled by
    ``1 / (1 - u sin t / d)``: every screen column shows one column of the picture, so
    narrow strips, each resized on its own, draw the perspective exactly enough."""
    cx, cy, w, h = view
    cos, sin = math.cos(turn), math.sin(turn) / _DISTANCE
    frame = Image.new("RGB", size)
    edges = [round(size[0] * k / _STRIPS) for k in range(_STRIPS + 1)]
    for x0, x1 in itertools.pairwise(edges):
        # screen position (-1..1) to the picture's own, inverting the projection above
        u0, u1 = (_source(2 * x / size[0] - 1, cos, sin) for x in (x0, x1))
        depth = 1 - (u0 + u1) / 2 * sin
        half = h / 2 * depth
        box = (cx + u0 * w / 2, cy - half, cx + u1 * w / 2, cy + half)
        box = _inside(box, image.size)
        frame.paste(image.resize((x1 - x0, size[1]), Image.Resampling.BILINEAR, box=box), (x0, 0))
    return frame


def _source(screen: float, cos: float, sin: float) -> float:
    return screen / (cos + screen * sin)


def _inside(
    box: tuple[float, float, float, float], bounds: tuple[int, int]
) -> tuple[float, float, float, float]:
    left, top, right, bottom = box
    return (
        _clamp(left, 0, bounds[0] - 1),
        _clamp(top, 0, bounds[1] - 1),
        _clamp(right, 1, bounds[0]),
        _clamp(bottom, 1, bounds[1]),
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)
