"""Draw the example pipelines' keyframes and motion clips into pipelines/assets/, offline.

They are stylised stand-ins for real keyframes and motion references, so the example
pipelines run against the emulator without downloads: Mara (short black bob, yellow
raincoat) on a rainy street at night, Jun (grey scarf, round glasses) in a lamp-lit room,
and four short clips whose motion matches their names. Output is deterministic (seeded
randomness, bit-exact H.264), so a rerun leaves every file byte-identical.

    python scripts/make_example_assets.py [--out pipelines/assets]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from runner.media import EncodeSettings, VideoWriter, probe

RGB = tuple[int, int, int]
Size = tuple[int, int]
Point = tuple[float, float]
KEY_SIZE: Size = (768, 432)
CLIP_SIZE: Size = (640, 360)
CLIP_FPS = 24
CLIP_FRAMES = 72  # 3 s
CLIP_ENCODING = EncodeSettings(crf=27, preset="slow", threads=2)
SS = 2  # draw at twice the size, then reduce: smooth edges, which ImageDraw lacks
WINDOW_LIGHTS: tuple[RGB, ...] = ((255, 196, 110), (250, 222, 150), (255, 168, 92))
BOOK_COLOURS: tuple[RGB, ...] = (
    (150, 60, 50),
    (60, 90, 120),
    (190, 160, 90),
    (80, 110, 70),
    (200, 190, 170),
)


@dataclass(frozen=True, slots=True)
class Look:
    """A character's colours and the few shape choices that tell characters apart."""

    skin: RGB
    hair: RGB
    coat: RGB
    coat_shade: RGB
    bob: bool = False  # chin-length bob (Mara) rather than short hair
    scarf: RGB | None = None
    glasses: bool = False
    glossy: bool = False  # a raincoat's sheen


MARA = Look((232, 184, 150), (22, 20, 28), (246, 196, 38), (204, 148, 20), bob=True, glossy=True)
JUN = Look(
    (214, 166, 128), (38, 32, 30), (50, 62, 86), (34, 42, 60), scarf=(150, 152, 158), glasses=True
)
WALKER = Look((200, 156, 124), (50, 40, 36), (92, 104, 84), (66, 76, 60))  # motion clips' stand-in


def shade(c: RGB, factor: float) -> RGB:
    """Darker below 1, lighter (towards white) above 1."""
    if factor <= 1:
        return (round(c[0] * factor), round(c[1] * factor), round(c[2] * factor))
    t = factor - 1
    lighter = [round(v + (255 - v) * t) for v in c]
    return (lighter[0], lighter[1], lighter[2])


# -- drawing helpers ------------------------------------------------------------------------


def gradient(size: Size, top: RGB, bottom: RGB) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def glow(img: Image.Image, x: float, y: float, radius: float, colour: RGB, strength: float) -> None:
    """A soft round light: a lamp, or a window out of focus."""
    d = max(2, int(radius * 2))
    # radial_gradient reaches 255 in its corners; 181 (255/√2) is the inscribed circle.
    ramp = [int(255 * strength * max(0.0, 1 - v / 181) ** 2) for v in range(256)]
    falloff = Image.radial_gradient("L").resize((d, d)).point(ramp)
    img.paste(colour, (int(x - radius), int(y - radius)), falloff)


def finish(img: Image.Image, size: Size) -> Image.Image:
    return img.resize(size, Image.Resampling.LANCZOS) if img.size != size else img


class Pen:
    """Draws in a figure's own units: head radii from the centre of its head."""

    def __init__(self, img: Image.Image, x: float, y: float, r: float) -> None:
        self.draw = ImageDraw.Draw(img)
        self.x, self.y, self.r = x, y, r

    def p(self, u: float, v: float) -> Point:
        return (self.x + u * self.r, self.y + v * self.r)

    def oval(self, u: float, v: float, ru: float, rv: float, fill: RGB) -> None:
        self.draw.ellipse((*self.p(u - ru, v - rv), *self.p(u + ru, v + rv)), fill=fill)

    def poly(self, points: Sequence[Point], fill: RGB) -> None:
        self.draw.polygon([self.p(u, v) for u, v in points], fill=fill)

    def line(self, a: Point, b: Point, fill: RGB, width: float) -> None:
        self.draw.line((self.p(*a), self.p(*b)), fill=fill, width=max(1, round(width * self.r)))

    def limb(self, a: Point, b: Point, width: float, fill: RGB) -> None:
        """A thick line with rounded ends: an arm or a leg."""
        self.line(a, b, fill, width)
        for u, v in (a, b):
            self.oval(u, v, width / 2, width / 2, fill)


# -- backgrounds ------------------------------------------------------------------------------


def rainy_street(size: Size, seed: int, *, rain: bool = True) -> Image.Image:
    """A street at night: dusk sky, blocks with warm windows, two lamps, wet ground."""
    rng = random.Random(seed)
    w, h = size
    img = gradient(size, (20, 28, 56), (60, 68, 100))
    draw = ImageDraw.Draw(img)
    horizon = int(h * 0.74)
    step = max(4, w // 56)
    x = -rng.randint(0, w // 10)
    while x < w:
        bw, bh = rng.randint(w // 9, w // 5), rng.randint(h // 3, int(h * 0.64))
        tone = rng.randint(26, 42)
        draw.rectangle((x, horizon - bh, x + bw, horizon), fill=(tone, tone + 4, tone + 18))
        for wy in range(horizon - bh + step, horizon - 2 * step, step * 2):
            for wx in range(x + step, x + bw - step, step * 2):
                if rng.random() < 0.4:
                    draw.rectangle(
                        (wx, wy, wx + step, wy + step * 1.3), fill=rng.choice(WINDOW_LIGHTS)
                    )
        x += bw + rng.randint(0, w // 40)
    img.paste(gradient((w, h - horizon), (48, 52, 72), (16, 18, 28)), (0, horizon))
    for lamp_x in (w * 0.16, w * 0.86):
        draw.rectangle(
            (lamp_x - w * 0.004, h * 0.3, lamp_x + w * 0.004, horizon), fill=(16, 18, 26)
        )
        glow(img, lamp_x, h * 0.3, h * 0.2, (255, 210, 140), 0.6)
        glow(img, lamp_x, horizon + (h - horizon) * 0.45, h * 0.12, (255, 196, 120), 0.35)
    if rain:
        overlay = Image.new("RGBA", size, (0, 0, 0, 0))
        odraw = ImageDraw.Draw(overlay)
        for _ in range(w * h // 5000):
            rx, ry, length = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.06) * h
            streak = (rx, ry, rx - length * 0.2, ry + length)
            odraw.line(streak, fill=(190, 205, 235, 120), width=max(1, w // 600))
        img = Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")
    return img


def lamp_lit_room(size: Size, seed: int) -> Image.Image:
    """A room in the evening: warm wall, a rainy blue window, a bookshelf and a lamp."""
    rng = random.Random(seed)
    w, h = size
    img = gradient(size, (120, 92, 70), (84, 62, 48))
    draw = ImageDraw.Draw(img)
    frame_colour, rim = (56, 40, 32), w * 0.012
    draw.rectangle((0, h * 0.84, w, h), fill=(70, 50, 40))  # floor
    wx0, wy0, wx1, wy1 = int(w * 0.56), int(h * 0.12), int(w * 0.9), int(h * 0.62)  # window
    draw.rectangle((wx0 - rim, wy0 - rim, wx1 + rim, wy1 + rim), fill=frame_colour)
    img.paste(gradient((wx1 - wx0, wy1 - wy0), (34, 52, 92), (70, 92, 128)), (wx0, wy0))
    for _ in range(40):
        rx, ry = rng.uniform(wx0, wx1), rng.uniform(wy0, wy1 - h * 0.04)
        draw.line(
            (rx, ry, rx - h * 0.006, ry + h * 0.035), fill=(150, 172, 210), width=max(1, w // 700)
        )
    draw.line(
        (((wx0 + wx1) / 2, wy0), ((wx0 + wx1) / 2, wy1)), fill=frame_colour, width=max(2, w // 150)
    )
    sx0, sx1 = w * 0.04, w * 0.3  # bookshelf
    draw.rectangle((sx0, h * 0.18, sx1, h * 0.84), fill=(74, 50, 36))
    for shelf in range(4):
        top, bottom = h * (0.2 + shelf * 0.16), h * (0.33 + shelf * 0.16)
        bx = sx0 + w * 0.01
        while bx < sx1 - w * 0.03:
            bw = rng.uniform(0.008, 0.018) * w
            draw.rectangle(
                (bx, top + rng.uniform(0, 0.03) * h, bx + bw, bottom), fill=rng.choice(BOOK_COLOURS)
            )
            bx += bw + w * 0.002
        draw.rectangle((sx0, bottom, sx1, bottom + h * 0.012), fill=(56, 38, 28))
    lx = w * 0.42  # a floor lamp
    draw.rectangle((lx - w * 0.003, h * 0.3, lx + w * 0.003, h * 0.84), fill=(40, 30, 24))
    shade_top, shade_bottom = w * 0.028, w * 0.04
    lampshade = [(lx - shade_bottom, h * 0.3), (lx + shade_bottom, h * 0.3)]
    lampshade += [(lx + shade_top, h * 0.2), (lx - shade_top, h * 0.2)]
    draw.polygon(lampshade, fill=(240, 214, 160))
    glow(img, lx, h * 0.27, h * 0.3, (255, 200, 130), 0.45)
    return img


def perspective_street(size: Size, seed: int) -> Image.Image:
    """A street seen down its length: façades and a road converging on a vanishing point."""
    rng = random.Random(seed)
    w, h = size
    vx, vy = w * 0.5, h * 0.5
    img = gradient(size, (22, 30, 58), (64, 70, 100))
    draw = ImageDraw.Draw(img)
    draw.polygon(((0, h), (w, h), (vx + w * 0.04, vy), (vx - w * 0.04, vy)), fill=(40, 44, 60))
    for side in (-1, 1):
        near, far = vx + side * w * 0.5, vx + side * w * 0.06
        facade = ((near, 0), (far, vy - h * 0.2), (far, vy + h * 0.02), (near, h * 0.86))
        draw.polygon(facade, fill=(34, 38, 58))

        def row_top(t: float, row: int) -> float:
            """Window row ``row``'s top edge, ``t`` of the way from the frame to the far end."""
            return (1 - t) * h * (0.08 + row * 0.15) + t * (vy - h * 0.18 + row * h * 0.035)

        for k in range(9):  # window columns, squeezed by distance
            t0, t1 = (k / 9) ** 0.7, ((k + 0.5) / 9) ** 0.7
            x0, x1 = near + (far - near) * t0, near + (far - near) * t1
            for row in range(5):
                if rng.random() < 0.55:
                    y0, y1 = row_top(t0, row), row_top(t1, row)
                    tall0, tall1 = (1 - t0) * h * 0.08, (1 - t1) * h * 0.08
                    pane = ((x0, y0), (x1, y1), (x1, y1 + tall1), (x0, y0 + tall0))
                    draw.polygon(pane, fill=(250, 204, 130))
    for k in range(10):  # the road's centre dashes
        t0, t1 = (k / 10) ** 2, ((k + 0.45) / 10) ** 2
        dash = max(1, round(w * 0.012 * t1))
        draw.line(
            ((vx, vy + (h - vy) * t0), (vx, vy + (h - vy) * t1)), fill=(200, 196, 170), width=dash
        )
    glow(img, vx, vy - h * 0.05, h * 0.3, (140, 150, 190), 0.35)
    return img


def studio(size: Size) -> Image.Image:
    """A plain backdrop: a soft grey-blue sweep and a floor."""
    w, h = size
    img = gradient(size, (70, 80, 100), (130, 136, 150))
    img.paste(gradient((w, h - int(h * 0.8)), (96, 100, 112), (60, 62, 72)), (0, int(h * 0.8)))
    glow(img, w * 0.5, h * 0.45, h * 0.5, (200, 205, 220), 0.35)
    return img


# -- figures ----------------------------------------------------------------------------------


def draw_figure(
    img: Image.Image,
    look: Look,
    x: float,
    y: float,
    r: float,
    yaw: float = 0.0,
    *,
    legs: bool = False,
    stride: float = 0.0,
) -> None:
    """Draw a person whose head (radius ``r`` px) is centred at (x, y), turned by ``yaw``.

    ``yaw`` is in radians: 0 faces the camera, π/2 is a profile facing screen right, π is
    the back. Features sit on the head as on a sphere, so a turn slides them across the
    face and hides them past its edge. With ``legs`` the full figure is drawn, and
    ``stride`` (radians) is the phase of its walk; without, the coat runs out of frame.
    """
    front, side = math.cos(yaw), math.sin(yaw)
    n = 0.72 + 0.28 * abs(front)  # the torso is narrower seen from the side
    swing = math.sin(stride) if legs else 0.0
    pen = Pen(img, x, y - (abs(math.cos(stride)) * 0.12 * r if legs else 0.0), r)
    if legs:  # trousers and shoes; the forward foot is lower, nearer the camera
        for sign in (-1, 1):
            foot = (sign * 0.6 * n, 13.2 - sign * swing * 0.45)
            pen.limb((sign * 0.5 * n, 7.6), foot, 0.62, (36, 36, 46))
            pen.oval(foot[0], foot[1] + 0.15, 0.42, 0.2, (22, 22, 26))
    for sign in (-1, 1):  # arms behind the coat's edges, swinging against the legs
        hand = (sign * 1.9 * n, 6.1 + sign * swing * 0.4)
        pen.limb((sign * 1.55 * n, 2.0), hand, 0.72, look.coat_shade)
        pen.oval(hand[0], hand[1] + 0.35, 0.28, 0.32, look.skin)
    hem = 9.2 if legs else 14.0
    coat = [(-0.5, 1.35), (0.5, 1.35), (1.7, 1.85), (1.55, hem), (-1.55, hem), (-1.7, 1.85)]
    pen.poly([(u * n, v) for u, v in coat], look.coat)
    if front > -0.2:  # the coat's front: a placket and toggles
        cu = side * 0.9 * n
        pen.line((cu, 1.9), (cu, hem), look.coat_shade, 0.08)
        for k in range(4):
            pen.oval(cu + 0.2, 2.7 + k * 1.3, 0.12, 0.07, (60, 44, 30))
    if look.glossy:  # a highlight down one side reads as a waterproof coat
        pen.oval(-1.05 * n, 2.8, 0.16, 0.9, shade(look.coat, 1.25))
    pen.oval(0, 1.45, 0.95 * n, 0.45, look.coat_shade)  # hood or collar
    neck = shade(look.skin, 0.85)
    pen.poly([(-0.3, 0.6), (0.3, 0.6), (0.3, 1.2), (-0.3, 1.2)], neck)
    if front > -0.2:  # the open collar: a V of throat
        nu = side * 0.5
        pen.poly([(nu - 0.3, 1.15), (nu + 0.3, 1.15), (nu, 1.8)], neck)
    if look.scarf is not None:
        _scarf(pen, look.scarf, n, side if front > -0.2 else None)
    if look.bob:  # the hair's mass; the face is laid over it
        pen.oval(0, 0.05, 1.08, 1.12, look.hair)
        pen.poly([(-1.08, 0), (1.08, 0), (1.08, 0.95), (-1.08, 0.95)], look.hair)
    else:
        pen.oval(0, 0, 0.95, 1.1, look.skin)
        pen.oval(0, -0.18, 1.0, 0.98, look.hair)
    if front > -0.25:
        _face(img, pen, look, yaw)


def _scarf(pen: Pen, colour: RGB, n: float, side: float | None) -> None:
    stripe = shade(colour, 0.75)
    pen.oval(0, 1.45, 0.82 * n, 0.38, colour)
    for v in (1.33, 1.57):
        pen.line((-0.7 * n, v), (0.7 * n, v), stripe, 0.05)
    if side is not None:  # the hanging end, seen from the front
        eu = (side * 0.7 + 0.35) * n
        pen.poly([(eu - 0.24, 1.6), (eu + 0.24, 1.6), (eu + 0.24, 4.6), (eu - 0.24, 4.6)], colour)
        for k in range(3):
            pen.line((eu - 0.24, 3.6 + k * 0.25), (eu + 0.24, 3.6 + k * 0.25), stripe, 0.05)


def _face(img: Image.Image, pen: Pen, look: Look, yaw: float) -> None:
    def at(longitude: float) -> tuple[float, float]:
        """Where a point of the head at ``longitude`` lands (u), and how much it faces us."""
        return 0.86 * math.sin(longitude + yaw), math.cos(longitude + yaw)

    # The face is the part of the head between longitudes ±1.25 as it turns. Its edges are
    # meridians, which project to half-ellipses: clipping the face oval to them leaves a
    # curved hairline where the hair shows, as on a real head turning.
    lo, hi = max(-math.pi / 2, -1.25 + yaw), min(math.pi / 2, 1.25 + yaw)
    if hi - lo < 0.05:
        return
    mask = Image.new("L", img.size, 0)
    mdraw = ImageDraw.Draw(mask)
    top = -0.55 if look.bob else -0.72
    mdraw.ellipse((*pen.p(-0.86, top), *pen.p(0.86, 1.1)), fill=255)
    for longitude, far in ((lo, -2.0), (hi, 2.0)):
        vs = [k / 12 for k in range(-12, 13)]
        edge = [pen.p(0.86 * math.sin(longitude) * math.sqrt(1 - v * v), 1.15 * v) for v in vs]
        mdraw.polygon([pen.p(far, -2), *edge, pen.p(far, 2)], fill=0)
    img.paste(look.skin, (0, 0), mask)
    ink, rim = (30, 24, 26), (28, 26, 30)
    if not look.bob:  # ears, on the sides that face us
        for lon in (-math.pi / 2, math.pi / 2):
            eu, facing = at(lon)
            if facing > -0.3:
                pen.oval(eu * 1.1, 0.1, 0.16 * max(0.4, abs(facing)), 0.26, shade(look.skin, 0.92))
    for lon in (-0.4, 0.4):  # eyes, brows and glasses
        eu, facing = at(lon)
        if facing < 0.15:
            continue
        pen.oval(eu, 0.12, 0.1 * facing, 0.13, ink)
        pen.oval(eu + 0.03, 0.07, 0.03 * facing, 0.03, (240, 240, 240))
        pen.line((eu - 0.17 * facing, -0.16), (eu + 0.17 * facing, -0.19), look.hair, 0.06)
        if look.glasses:
            box = (*pen.p(eu - 0.22 * facing, -0.1), *pen.p(eu + 0.22 * facing, 0.34))
            pen.draw.ellipse(box, outline=rim, width=max(1, round(0.05 * pen.r)))
    nose, facing = at(0.0)
    if facing > 0:
        tip = nose * 1.08 + math.sin(yaw) * 0.1
        pen.poly([(nose, 0.15), (tip, 0.45), (nose - 0.06, 0.47)], shade(look.skin, 0.84))
        (left, f1), (right, f2) = at(-0.4), at(0.4)
        if look.glasses and min(f1, f2) > 0.15:
            pen.line((left + 0.22 * f1, 0.1), (right - 0.22 * f2, 0.1), rim, 0.05)
        mouth = 0.2 * facing
        arc = (*pen.p(nose - mouth, 0.52), *pen.p(nose + mouth, 0.76))
        pen.draw.arc(arc, 20, 160, fill=(150, 70, 70), width=max(1, round(0.05 * pen.r)))
    if look.bob:  # a straight fringe, clipped to the hair's outline, turning with the head
        shift = 0.4 * math.sin(yaw)
        fringe = Image.new("L", img.size, 0)
        chord = (*pen.p(-1 + shift, -1.12), *pen.p(1 + shift, -0.1))
        ImageDraw.Draw(fringe).chord(chord, 180, 360, fill=255)
        outline = Image.new("L", img.size, 0)
        ImageDraw.Draw(outline).ellipse((*pen.p(-1.08, -1.07), *pen.p(1.08, 1.17)), fill=255)
        img.paste(look.hair, (0, 0), ImageChops.multiply(fringe, outline))


# -- keyframes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shot:
    """A keyframe's framing, in fractions of the frame: head centre, head radius, turn."""

    look: Look
    backdrop: Callable[[Size], Image.Image]
    x: float
    y: float
    r: float
    yaw: float
    blur: float  # background blur in px at the output size: depth of field

    def render(self) -> Image.Image:
        big = (KEY_SIZE[0] * SS, KEY_SIZE[1] * SS)
        img = self.backdrop(big)
        if self.blur:
            img = img.filter(ImageFilter.GaussianBlur(self.blur * SS))
        draw_figure(img, self.look, self.x * big[0], self.y * big[1], self.r * big[1], self.yaw)
        return finish(img, KEY_SIZE)


def _street(size: Size) -> Image.Image:
    return rainy_street(size, seed=11)


def _room(size: Size) -> Image.Image:
    return lamp_lit_room(size, seed=21)


KEYFRAMES: dict[str, Shot] = {
    "characters/mara/front_closeup.png": Shot(MARA, _street, 0.5, 0.42, 0.2, 0.0, 5),
    "characters/mara/three_quarter.png": Shot(MARA, _street, 0.4, 0.4, 0.15, 0.6, 3),
    "characters/mara/medium_shot.png": Shot(MARA, _street, 0.5, 0.25, 0.1, 0.15, 1.5),
    "characters/jun/front_closeup.png": Shot(JUN, _room, 0.5, 0.42, 0.2, 0.0, 5),
    "characters/jun/three_quarter.png": Shot(JUN, _room, 0.6, 0.4, 0.15, -0.6, 3),
}


# -- motion clips -----------------------------------------------------------------------------


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, t)))


def orbit_frames() -> Iterator[Image.Image]:
    """The camera arcs around a standing figure: the street behind slides one way, the
    bollards in front the other, the ground's lines pivot and the figure turns."""
    w, h = CLIP_SIZE[0] * SS, CLIP_SIZE[1] * SS
    far = rainy_street((w * 2, h), seed=31, rain=False)
    for i in range(CLIP_FRAMES):
        angle = -0.5 + _ease(i / (CLIP_FRAMES - 1))  # radians, -0.5 .. 0.5
        left = int(w / 2 + angle * w * 0.5)
        frame = far.crop((left, 0, left + w, h))
        draw = ImageDraw.Draw(frame)
        vx = w / 2 - angle * w * 1.2
        for k in range(-8, 9):
            foot = w / 2 + k * w * 0.16 - angle * w * 0.4
            draw.line(((vx + k * w * 0.02, h * 0.74), (foot, h)), fill=(70, 74, 96), width=SS)
        draw_figure(frame, WALKER, w / 2, h * 0.2, h * 0.055, yaw=angle * 1.4, legs=True)
        for k in range(-3, 4):
            px = w / 2 + (k + 0.5) * w * 0.4 - angle * w * 1.6
            bollard = (px - w * 0.02, h * 0.84, px + w * 0.02, h * 1.05)
            draw.rounded_rectangle(bollard, radius=w * 0.02, fill=(18, 18, 24))
            draw.rectangle((px - w * 0.02, h * 0.88, px + w * 0.02, h * 0.9), fill=(210, 170, 60))
        yield finish(frame, CLIP_SIZE)


def slow_walk_frames() -> Iterator[Image.Image]:
    """A figure walks slowly down the middle of the street toward the camera, growing."""
    w, h = CLIP_SIZE[0] * SS, CLIP_SIZE[1] * SS
    street = perspective_street((w, h), seed=41)
    for i in range(CLIP_FRAMES):
        t = i / (CLIP_FRAMES - 1)
        distance = 1.0 - 0.6 * t  # a steady pace: apparent size goes as 1 / distance
        r = h * 0.026 / distance
        feet = h * 0.5 + 7.0 * r  # the feet stay on the road as it nears the camera
        frame = street.copy()
        stride = 2 * math.pi * 0.8 * i / CLIP_FPS  # 0.8 strides a second
        draw_figure(frame, WALKER, w / 2, feet - 13.4 * r, r, legs=True, stride=stride)
        yield finish(frame, CLIP_SIZE)


def handheld_sway_frames() -> Iterator[Image.Image]:
    """A held camera drifting over a still scene. A few slow sines with seeded frequencies
    and phases look random, yet every run draws the same path."""
    w, h = CLIP_SIZE[0] * SS, CLIP_SIZE[1] * SS
    big = (int(w * 1.12), int(h * 1.12))  # room to move without showing an edge
    scene = lamp_lit_room(big, seed=51)
    draw_figure(scene, JUN, big[0] * 0.5, big[1] * 0.4, big[1] * 0.13, yaw=-0.25)
    rng = random.Random(52)
    waves = [
        [(rng.uniform(0.3, 1.4), rng.uniform(0, 2 * math.pi), amp) for amp in (0.6, 0.3, 0.1)]
        for _axis in ("x", "y", "roll")
    ]

    def drift(axis: int, seconds: float) -> float:
        return sum(a * math.sin(2 * math.pi * f * seconds + p) for f, p, a in waves[axis])

    for i in range(CLIP_FRAMES):
        s = i / CLIP_FPS
        cx = big[0] / 2 + drift(0, s) * w * 0.025  # the scene point at the output's centre
        cy = big[1] / 2 + drift(1, s) * h * 0.025
        turn = math.radians(0.8 * drift(2, s))
        c, sn = math.cos(turn), math.sin(turn)
        matrix = (c, -sn, cx - c * w / 2 + sn * h / 2, sn, c, cy - sn * w / 2 - c * h / 2)
        frame = scene.transform((w, h), Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR)
        yield finish(frame, CLIP_SIZE)


def turn_to_camera_frames() -> Iterator[Image.Image]:
    """A figure seen from behind turns round to face the camera, then holds."""
    w, h = CLIP_SIZE[0] * SS, CLIP_SIZE[1] * SS
    backdrop = studio((w, h))
    for i in range(CLIP_FRAMES):
        yaw = math.pi * (1 - _ease((i / CLIP_FPS - 0.4) / 2.0))  # turns from 0.4 s to 2.4 s
        frame = backdrop.copy()
        draw_figure(frame, MARA, w / 2, h * 0.3, h * 0.12, yaw)
        yield finish(frame, CLIP_SIZE)


MOTIONS: dict[str, Callable[[], Iterator[Image.Image]]] = {
    "motion/orbit.mp4": orbit_frames,
    "motion/slow_walk.mp4": slow_walk_frames,
    "motion/handheld_sway.mp4": handheld_sway_frames,
    "motion/turn_to_camera.mp4": turn_to_camera_frames,
}


# -- writing ----------------------------------------------------------------------------------


def png_bytes(image: Image.Image) -> bytes:
    """A small, deterministic PNG: 128 colours without dithering, zlib at its best."""
    out = io.BytesIO()
    image.quantize(colors=128, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_keyframe(path: Path, image: Image.Image) -> bool:
    """Write ``image`` as a PNG unless those bytes are already there; True if written."""
    data = png_bytes(image)
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def write_motion(path: Path, frames: Iterator[Image.Image]) -> bool:
    """Encode ``frames`` as a 24 fps H.264 MP4; True if the file's bytes changed."""
    before = _digest(path)
    with VideoWriter(path, *CLIP_SIZE, CLIP_FPS, CLIP_ENCODING) as writer:
        for frame in frames:
            writer.write(frame)
    return _digest(path) != before


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _report(path: Path, changed: bool) -> None:
    info = probe(path)
    what = f"{info.width}x{info.height}"
    if info.kind == "video":
        what += f", {info.num_frames} frames at {info.fps:g} fps"
    status = "wrote" if changed else "unchanged"
    print(f"{status:9}  {path}  {path.stat().st_size / 1024:5.1f} KB  ({what})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the example keyframes and motion clips.")
    default = Path(__file__).resolve().parent.parent / "pipelines" / "assets"
    parser.add_argument("--out", type=Path, default=default, help=f"default: {default}")
    out: Path = parser.parse_args(argv).out
    for name, shot in KEYFRAMES.items():
        _report(out / name, write_keyframe(out / name, shot.render()))
    for name, frames in MOTIONS.items():
        _report(out / name, write_motion(out / name, frames()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
