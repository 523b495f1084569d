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
    position = ((width - panel.width) // 2, (height - panel.height) // 2)
    return [Overlay(panel, position), label_overlay(size, label)]


def caption(size: tuple[int, int], prompt: str, label: str) -> list[Overlay]:
    """The prompt in a band along the bottom edge, and a small label."""
    width, height = size
    face = font(height // 26)
    lines = wrap(prompt, face, width * 0.9, 2) if prompt else []
    overlays = [label_overlay(size, label)]
    if not lines:
        return overlays
    line_height = int(face.size * 1.3) if isinstance(face, ImageFont.FreeTypeFont) else 14
    pad = height // 40
    band = Image.new("RGBA", (width, line_height * len(lines) + 2 * pad), (0, 0, 0, 120))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        x = (width - face.getlength(line)) / 2
        draw.text((x, pad + i * line_height), line, font=face, fill=(255, 255, 255, 255))
    overlays.append(Overlay(band, (0, height - band.height)))
    return overlays


def label_overlay(size: tuple[int, int], label: str) -> Overlay:
    """A small tag in the top-left corner saying this is an emulator animatic."""
    face = font(size[1] // 36)
    pad = max(4, size[1] // 90)
    box = Image.new("RGBA", (int(face.getlength(label)) + 2 * pad, size[1] // 36 + 2 * pad))
    draw = ImageDraw.Draw(box)
    draw.rectangle((0, 0, box.width - 1, box.height - 1), fill=(0, 0, 0, 140))
    draw.text((pad, pad), label, font=face, fill=(255, 255, 255, 230))
    return Overlay(box, (pad, pad))


def frame_counter(frame: Image.Image, index: int, total: int) -> None:
    """``index+1/total`` in the top-right corner, drawn straight onto ``frame``."""
    face = font(frame.height // 36)
    text = f"{index + 1:04d}/{total:04d}"
    pad = max(4, frame.height // 90)
    x = frame.width - face.getlength(text) - 2 * pad
    draw = ImageDraw.Draw(frame)
    draw.rectangle((x - pad, pad, frame.width - pad, pad + frame.height // 36 + 2 * pad), fill=0)
    draw.text((x, 2 * pad), text, font=face, fill=(255, 255, 255))
