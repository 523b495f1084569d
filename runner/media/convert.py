"""Pixel conversions: scaling, letterboxing and pixel formats, bit-exact.

Conversions run through an FFmpeg filter graph rather than ``VideoFrame.reformat`` because
the graph lets us pass swscale's ``bitexact`` and ``accurate_rnd`` flags: without them
swscale may take CPU-specific SIMD paths whose rounding differs from machine to machine,
and outputs must be byte-identical for the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from math import floor

import av
from av.video.frame import VideoFrame
from PIL import Image

SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int+bitexact"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a scaled picture sits inside a target frame; the rest is black bars."""

    width: int
    height: int
    x: int
    y: int

    @property
    def letterboxed(self) -> bool:
        """True when the picture does not fill the frame (there are bars)."""
        return self.x > 0 or self.y > 0


def _even_round(value: Fraction) -> int:
    # yuv420p stores chroma at half resolution, so picture sizes and offsets must be even.
    return max(2, 2 * floor(value / 2 + Fraction(1, 2)))


def fit_inside(src_width: int, src_height: int, width: int, height: int) -> Placement:
    """Scale ``src`` to the largest size that fits ``width`` x ``height`` keeping its aspect
    ratio, centred: the rule behind letterboxing (bars above and below) and pillarboxing
    (bars left and right). ``width`` and ``height`` must be even."""
    if src_width * height == src_height * width:
        return Placement(width, height, 0, 0)
    scale = min(Fraction(width, src_width), Fraction(height, src_height))
    w = min(width, _even_round(src_width * scale))
    h = min(height, _even_round(src_height * scale))
    x = (width - w) // 2 // 2 * 2
    y = (height - h) // 2 // 2 * 2
    return Placement(w, h, x, y)


class FrameConverter:
    """Converts decoded frames to one pixel format and, optionally, one frame size.

    With ``size`` given, every frame is scaled to fit and centred on black (see
    :func:`fit_inside`). Frames that already match pass through untouched, so a clip that
    needs no conforming costs nothing. The graph is built from the first frame that needs
    it and rebuilt only if the input geometry changes mid-stream.
    """

    def __init__(self, pix_fmt: str, size: tuple[int, int] | None = None) -> None:
        self.pix_fmt = pix_fmt
        self.size = size
        self._graph: av.filter.Graph | None = None
        self._graph_input: tuple[int, int, str] | None = None

    def needs_conversion(self, frame: VideoFrame) -> bool:
        if frame.format.name != self.pix_fmt:
            return True
        return self.size is not None and (frame.width, frame.height) != self.size

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        if not self.needs_conversion(frame):
            return frame
        geometry = (frame.width, frame.height, frame.format.name)
        if self._graph is None or self._graph_input != geometry:
            self._graph = self._build(frame)
            self._graph_input = geometry
        self._graph.vpush(frame)
        return self._graph.vpull()

    def _build(self, frame: VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        # One filter thread: slice threading cannot change the result, but a fixed count
        # keeps the work identical on every machine.
        graph.threads = 1
        chain = [
            graph.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format,
                time_base=frame.time_base or Fraction(1, 90000),
            )
        ]
        if self.size is None:
            chain.append(graph.add("scale", f"w=iw:h=ih:flags={SWS_FLAGS}"))
        else:
            place = fit_inside(frame.width, frame.height, *self.size)
            chain.append(graph.add("scale", f"w={place.width}:h={place.height}:flags={SWS_FLAGS}"))
            # Bars of two pixels in all sit at offset 0 (offsets are even): not "letterboxed",
            # but the frame still needs them to reach its size.
            if place.letterboxed or (place.width, place.height) != self.size:
                w, h = self.size
                chain.append(graph.add("pad", f"w={w}:h={h}:x={place.x}:y={place.y}:color=black"))
            chain.append(graph.add("setsar", "1"))
        chain.append(graph.add("format", f"pix_fmts={self.pix_fmt}"))
        chain.append(graph.add("buffersink"))
        for upstream, downstream in pairwise(chain):
            upstream.link_to(downstream)
        graph.configure()
        return graph


def frame_to_image(frame: VideoFrame) -> Image.Image:
    """An RGB Pillow image of ``frame``, converted bit-exactly."""
    return rgb_to_image(FrameConverter("rgb24")(frame))


def rgb_to_image(rgb: VideoFrame) -> Image.Image:
    """A Pillow image of an ``rgb24`` frame, as it is."""
    plane = rgb.planes[0]
    # Rows may be padded for alignment: hand Pillow the stride instead of copying row by row.
    return Image.frombuffer(
        "RGB", (rgb.width, rgb.height), bytes(plane), "raw", "RGB", plane.line_size, 1
    )


def image_to_frame(image: Image.Image) -> VideoFrame:
    """A video frame holding a Pillow image (as rgba: the layout ``from_bytes`` copies
    directly)."""
    rgba = image.convert("RGBA")
    return VideoFrame.from_bytes(rgba.tobytes(), rgba.width, rgba.height, format="rgba")
