"""Pillow drawing for animatics: seed colours, gradient fields, wrapped text, overlays.

Everything here is deterministic: the same arguments draw the same pixels. Text uses
Pillow's built-in font, so no system font can change a render.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font(size: int) -> Font:
    """Pillow's bundled font at ``size`` pixels."""
    return ImageFont.load_default(size=max(8, size))


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


def wrap(text: str, face: Font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap of ``text`` to ``max_width`` pixels; overflow ends in an ellipsis."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if current and face.getlength(trial) > max_width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and face.getlength(last + " …") > max_width:
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
        lines[-1] = last + " …"
    return lines


@dataclass(frozen=True)
class Overlay:
    """A pre-rendered RGBA patch and where it goes, pasted onto every frame."""

    image: Image.Image
    position: tuple[int, int]

    def apply(self, frame: Image.Image) -> None:
        frame.paste(self.image, self.position, self.image)


def title_card(size: tuple[int, int], prompt: str, label: str, accent: Color) -> list[Overlay]:
    """The prompt as a centred title over a translucent panel, and a small label."""
    width, height = size
    face = font(height // 16)
    lines = wrap(prompt or "(empty prompt)", face, width * 0.8, 6)
    line_height = int(face.size * 1.3) if isinstance(face, ImageFont.FreeTypeFont) else 14
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
    position = ((width - panel.width) // 2, (height - band_height(size) - panel.height) // 2)
    return [Overlay(panel, position), *caption(size, "", label)]


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


def caption(size: tuple[int, int], prompt: str, label: str) -> list[Overlay]:
    """The band: the label, then the prompt (two lines at most), on black."""
    width, height = size
    band = Image.new("RGBA", (width, band_height(size)), (0, 0, 0, 255))
    draw = ImageDraw.Draw(band)
    mark = mark_height(size)
    draw.rectangle((0, 0, width - 1, mark - 1), fill=(*BAND_MARK, 255))
    small = font(height // 40)
    pad = max(4, height // 120)
    draw.text((pad, mark + pad), label, font=small, fill=(190, 190, 190, 255))
    face = font(height // 30)
    lines = wrap(prompt, face, width * 0.92, 2) if prompt else []
    line_height = int(face.size * 1.25) if isinstance(face, ImageFont.FreeTypeFont) else 14
    top = mark + 2 * pad + height // 40
    for i, line in enumerate(lines):
        x = (width - face.getlength(line)) / 2
        draw.text((x, top + i * line_height), line, font=face, fill=(255, 255, 255, 255))
    return [Overlay(band, (0, height - band.height))]


def frame_counter(frame: Image.Image, index: int, total: int) -> None:
    """``index+1/total`` at the right of the band, drawn straight onto ``frame``."""
    face = font(frame.height // 40)
    text = f"{index + 1:04d}/{total:04d}"
    pad = max(4, frame.height // 120)
    mark = mark_height(frame.size)
    x = frame.width - face.getlength(text) - pad
    y = frame.height - band_height(frame.size) + mark + pad
    ImageDraw.Draw(frame).text((x, y), text, font=face, fill=(190, 190, 190))


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
