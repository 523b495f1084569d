"""Pillow drawing for animatics: seed colours, gradient fields, wrapped text, overlays.

Everything here is deterministic: the same arguments draw the same pixels. Text uses
Pillow's built-in font, so no system font can change a render.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font(size: int) -> Font:
    """Pillow's bundled font at ``size`` pixels."""
    return ImageFont.load_default(size=max(8, size))


def pixels(face: Font) -> int:
    """A font's size in pixels (Pillow without FreeType has only an 11-pixel bitmap font)."""
    return round(face.size) if isinstance(face, ImageFont.FreeTypeFont) else 11


def seed_palette(seed: int) -> tuple[Color, Color, Color]:
    """Three colours derived from ``seed``: two for the field, one accent."""
    digest = hashlib.sha256(f"shotgraph-palette:{seed}".encode()).digest()

    def pick(offset: int, lo: int, hi: int) -> Color:
        r, g, b = digest[offset : offset + 3]
        return (lo + r * (hi - lo) // 255, lo + g * (hi - lo) // 255, lo + b * (hi - lo) // 255)

    # Mid-dark field colours keep white text legible; the accent is bright.
    return pick(0, 20, 170), pick(3, 20, 170), pick(6, 150, 255)


def gradient_field(size: tuple[int, int], first: Color, second: Color) -> Image.Image:
    """A horizontal blend from ``first`` to ``second`` darkened towards the bottom."""
    width, height = size
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    field = Image.composite(Image.new("RGB", size, first), Image.new("RGB", size, second), across)
    shade = Image.linear_gradient("L").resize((width, height)).point(lambda v: v * 2 // 5)
    return Image.composite(Image.new("RGB", size, (0, 0, 0)), field, shade)


def wrap(text: str, face: Font, max_width: float) -> list[str]:
    """Greedy word wrap of ``text`` to ``max_width`` pixels, every word kept (one too long
    for a line is broken where it must be)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if face.getlength(trial) <= max_width:
            current = trial
            continue
        if current:
            lines.append(current)
        while face.getlength(word) > max_width and len(word) > 1:
            cut = max(1, len(word) - 1)
            while cut > 1 and face.getlength(word[:cut]) > max_width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def clipped(lines: list[str], face: Font, max_width: float, max_lines: int) -> list[str]:
    """At most ``max_lines`` of ``lines``, the last ending in an ellipsis if any were left."""
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and face.getlength(last + " …") > max_width:
        last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
    return [*lines[: max_lines - 1], last + " …"]


@dataclass(frozen=True)
class Overlay:
    """A pre-rendered RGBA patch and where it goes, pasted onto every frame."""

    image: Image.Image
    position: tuple[int, int]

    def apply(self, frame: Image.Image) -> None:
        frame.paste(self.image, self.position, self.image)


def title_card(size: tuple[int, int], prompt: str, seed: int) -> Image.Image:
    """A t2v's picture: the prompt's first sentence as a centred title over a translucent
    panel, on a field coloured from ``seed``. (The band below carries the whole prompt.)"""
    width, height = size
    first, second, accent = seed_palette(seed)
    card = gradient_field(size, first, second)
    face = font(min(width, height) // 14)
    title = re.split(r"(?<=[.!?])\s|\n", prompt.strip(), maxsplit=1)[0] or "(empty prompt)"
    lines = clipped(wrap(title, face, width * 0.8), face, width * 0.8, 4)
    line_height = round(pixels(face) * 1.3)
    text_width = max(int(face.getlength(line)) for line in lines)
    pad = height // 30
    panel = Image.new("RGBA", (text_width + 2 * pad, line_height * len(lines) + 2 * pad))
    draw = ImageDraw.Draw(panel)
    draw.rounded_rectangle(
        (0, 0, panel.width - 1, panel.height - 1), radius=pad, fill=(0, 0, 0, 110)
    )
    for i, line in enumerate(lines):
        x = (panel.width - face.getlength(line)) / 2
        draw.text((x, pad + i * line_height), line, font=face, fill=(255, 255, 255, 255))
    draw.line(
        (pad, panel.height - pad // 2, panel.width - pad, panel.height - pad // 2),
        fill=(*accent, 255),
        width=max(2, pad // 6),
    )
    above_band = height - band_height(size)
    Overlay(panel, ((width - panel.width) // 2, (above_band - panel.height) // 2)).apply(card)
    return card


# The band every animatic frame carries along its bottom edge: the label, the caption and
# the frame counter live there, never on the picture. Its top rows are this colour, so that
# when an animatic's own frame comes back as an input (an extend's last frame, a frame node's
# still), the emulator recognises the band and continues from the picture alone, instead of
# filming its old captions again.
BAND_MARK: Color = (255, 0, 170)
BAND_SHARE = 0.14


def band_height(size: tuple[int, int]) -> int:
    # Even, like the mark: 4:2:0 video shares colour between pairs of rows, so an edge on an
    # odd row would smear the mark into the picture.
    return max(24, round(size[1] * BAND_SHARE / 2) * 2)


def mark_height(size: tuple[int, int]) -> int:
    return max(6, band_height(size) // 20 // 2 * 2)


@dataclass(frozen=True)
class BandLayout:
    """Where the band's text goes, for one frame size: the heading row (the node's name,
    then the label) and the prompt's lines below it, ``lines`` to a page."""

    top: int  # the band's first row in the frame
    pad: int
    heading_y: int
    name_face: Font
    small: Font
    text: Font
    text_y: int
    line_height: int
    lines: int


@cache  # asked for every frame (frame_counter): one layout per frame size
def band_layout(size: tuple[int, int]) -> BandLayout:
    width, height = size
    unit = min(width, height)  # a portrait frame's band is taller, not its letters larger
    band, mark = band_height(size), mark_height(size)
    pad = max(4, unit // 120)
    name_face, small, text = font(unit // 36), font(unit // 40), font(unit // 32)
    text_y = mark + 2 * pad + pixels(name_face)
    line_height = round(pixels(text) * 1.25)
    lines = max(1, (band - text_y - pad // 2) // line_height)
    return BandLayout(
        height - band, pad, mark + pad, name_face, small, text, text_y, line_height, lines
    )


def _name(layout: BandLayout, node: str, width: int) -> str:
    """``node`` as the heading shows it: at most two fifths of the band's width."""
    return clipped(wrap(node, layout.name_face, width * 0.4), layout.name_face, width * 0.4, 1)[0]


def name_box(size: tuple[int, int], node: str) -> tuple[int, int, int, int]:
    """Where ``node``'s name is written in a frame of ``size`` (left, top, right, bottom)."""
    layout = band_layout(size)
    left, top, right, bottom = layout.name_face.getbbox(_name(layout, node, size[0]))
    y = layout.top + layout.heading_y
    return (layout.pad + int(left), y + int(top), layout.pad + int(right) + 1, y + int(bottom) + 1)


def band_pages(
    size: tuple[int, int], prompt: str, label: str, node: str | None = None
) -> list[Overlay]:
    """The band, one version per page of the prompt: the mark, ``node``'s name in white and
    ``label`` in grey, then the whole prompt, wrapped, a few lines to a page (the page's
    number at the right). Nothing is cut: a long prompt takes more pages."""
    width, _ = size
    layout = band_layout(size)
    lines = wrap(prompt, layout.text, width * 0.92) if prompt else []
    pages = [lines[k : k + layout.lines] for k in range(0, len(lines), layout.lines)] or [[]]
    return [
        Overlay(_band(size, layout, page, f"{k + 1}/{len(pages)}", label, node), (0, layout.top))
        for k, page in enumerate(pages)
    ]


def page_at(index: int, total: int, pages: int) -> int:
    """The page frame ``index`` of ``total`` shows: equal shares, in reading order."""
    return min(pages - 1, index * pages // max(1, total))


def _band(
    size: tuple[int, int],
    layout: BandLayout,
    page: list[str],
    number: str,
    label: str,
    node: str | None,
) -> Image.Image:
    width, _ = size
    band = Image.new("RGBA", (width, band_height(size)), (0, 0, 0, 255))
    draw = ImageDraw.Draw(band)
    draw.rectangle((0, 0, width - 1, mark_height(size) - 1), fill=(*BAND_MARK, 255))
    x, y = layout.pad, layout.heading_y
    if node:
        name = _name(layout, node, width)
        draw.text((x, y), name, font=layout.name_face, fill=(255, 255, 255, 255))
        x += round(layout.name_face.getlength(name + "  "))
    # The small text sits on the name's baseline; the right of the row holds the page
    # number, then the frame counter.
    small_y = y + pixels(layout.name_face) - pixels(layout.small)
    counter = layout.small.getlength(_counter(9998, 9999)) + 2 * layout.pad
    paging = f"prompt {number}" if number != "1/1" else ""
    right = width - counter - layout.small.getlength(paging) - layout.pad
    grey = (190, 190, 190, 255)
    draw.text((right, small_y), paging, font=layout.small, fill=grey)
    room = right - x - layout.pad
    if label and room > 0:
        shown = clipped(wrap(label, layout.small, room), layout.small, room, 1)[0]
        draw.text((x, small_y), shown, font=layout.small, fill=grey)
    for i, line in enumerate(page):
        left = (width - layout.text.getlength(line)) / 2
        top = layout.text_y + i * layout.line_height
        draw.text((left, top), line, font=layout.text, fill=(255, 255, 255, 255))
    return band


def _counter(index: int, total: int) -> str:
    return f"{index + 1:04d}/{total:04d}"


def frame_counter(frame: Image.Image, index: int, total: int) -> None:
    """``index+1/total`` at the right of the band's heading row, drawn straight onto ``frame``."""
    layout = band_layout(frame.size)
    text = _counter(index, total)
    x = frame.width - layout.small.getlength(text) - layout.pad
    y = layout.top + layout.heading_y + pixels(layout.name_face) - pixels(layout.small)
    ImageDraw.Draw(frame).text((x, y), text, font=layout.small, fill=(190, 190, 190))


def _close(color: object, target: Color, tolerance: int = 48) -> bool:
    # Video compression moves colours a little; the mark is far from anything natural.
    return (
        isinstance(color, tuple)
        and len(color) == 3
        and all(abs(int(a) - b) <= tolerance for a, b in zip(color, target, strict=True))
    )


def _mark_share(image: Image.Image, first_row: int, end_row: int) -> float:
    """How much of rows [first_row, end_row) is the mark's colour, 0 to 1."""
    rows = image.crop((0, first_row, image.width, end_row)).convert("RGB")
    colors = rows.getcolors(rows.width * rows.height) or []
    return sum(n for n, c in colors if _close(c, BAND_MARK)) / (rows.width * rows.height)


def without_band(image: Image.Image) -> Image.Image:
    """``image`` with an animatic's band painted over by the picture, if it has one (else
    ``image`` itself)."""
    height = band_height(image.size)
    top = image.height - height
    if top <= 0:
        return image
    # The mark is a thin stripe: its inner rows are the mark's colour (its edges blur into the
    # picture and the band when encoded) and the black rows just under it are not.
    mark = mark_height(image.size)
    if _mark_share(image, top + 2, top + mark - 2) < 0.9:
        return image
    if _mark_share(image, top + mark + 2, top + mark + 4) > 0.1:
        return image
    # The band's rows become a mirror of the picture above them: the frame keeps its size and
    # framing (cropping would zoom a little further with every continuation).
    height = min(height, top)
    mirror = image.crop((0, top - height, image.width, top)).transpose(
        Image.Transpose.FLIP_TOP_BOTTOM
    )
    clean = image.copy()
    clean.paste(mirror, (0, top))
    return clean
